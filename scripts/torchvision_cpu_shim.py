"""Make PyPI's CUDA torchvision importable next to a CPU-only torch (the CPU machines' setup).

torchvision's `_meta_registrations` registers fake kernels for `torchvision::nms`, an operator
the CUDA wheel's C++ library cannot provide to a CPU torch, so `import torchvision` fails.
Pre-registering an empty module under that name skips it; everything we use still works.
A `.pth` file applies it to every Python process of the environment, child processes included.
Run with the environment's interpreter; does nothing when torchvision already imports.
"""

import site
import subprocess
import sys
from pathlib import Path

LINE = (
    "import sys, types; sys.modules.setdefault('torchvision._meta_registrations', "
    "types.ModuleType('torchvision._meta_registrations'))\n"
)


def main() -> int:
    if subprocess.run([sys.executable, "-c", "import torchvision"], capture_output=True).returncode == 0:
        print("torchvision imports; no shim needed")
        return 0
    target = Path(site.getsitepackages()[0]) / "covip_torchvision_cpu_shim.pth"
    target.write_text(LINE)
    check = subprocess.run([sys.executable, "-c", "import torchvision"], capture_output=True, text=True)
    if check.returncode != 0:
        print(check.stderr, file=sys.stderr)
        return 1
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
