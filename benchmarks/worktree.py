"""Import `covip.*` from this working tree, the same way on the GPU machine (nothing installed) and here.

The package map comes from `pyproject.toml` (`tool.setuptools.package-dir`), the one place that says which
folder is which `covip.` package, so a new package cannot be missed. The finder goes first on
`sys.meta_path`: where covip is installed too (an editable install here), it still does not answer, so a
CPU smoke run takes exactly the GPU run's import path, and `check_working_tree` proves it after the run.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
MARK = "covip-working-tree"


def package_dirs() -> dict[str, Path]:
    """`covip.X` package name -> its folder in this working tree, from pyproject.toml."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        mapping = tomllib.load(f)["tool"]["setuptools"]["package-dir"]
    return {name: ROOT / folder for name, folder in mapping.items()}


class WorkingTreeFinder(importlib.abc.MetaPathFinder):
    """Finds `covip.X[.Y...]` modules under the folders of `package_dirs`."""

    def __init__(self, dirs: dict[str, Path]) -> None:
        self.dirs = dirs

    def find_spec(self, fullname: str, path=None, target=None) -> importlib.machinery.ModuleSpec | None:
        for package, folder in self.dirs.items():
            if fullname != package and not fullname.startswith(package + "."):
                continue
            location = folder.joinpath(*fullname[len(package) :].split(".")[1:])
            if (location / "__init__.py").is_file():
                spec = importlib.util.spec_from_file_location(
                    fullname, location / "__init__.py", submodule_search_locations=[str(location)]
                )
            elif location.with_suffix(".py").is_file():
                spec = importlib.util.spec_from_file_location(fullname, location.with_suffix(".py"))
            elif location.is_dir():  # a data folder without __init__.py (task YAMLs): a namespace package
                spec = importlib.machinery.ModuleSpec(fullname, None, is_package=True)
                spec.submodule_search_locations = [str(location)]
            else:
                return None
            spec.loader_state = MARK
            return spec
        return None


def use_working_tree() -> None:
    """Serve every `covip.*` import from this working tree (call before importing any of them)."""
    if any(isinstance(f, WorkingTreeFinder) for f in sys.meta_path):
        return
    if any(name == "covip" or name.startswith("covip.") for name in sys.modules):
        raise RuntimeError("covip was imported before use_working_tree(); call it first")
    covip = types.ModuleType("covip")
    covip.__path__ = []  # a namespace: its subpackages come from the finder alone
    sys.modules["covip"] = covip
    sys.meta_path.insert(0, WorkingTreeFinder(package_dirs()))


def check_working_tree() -> list[str]:
    """The `covip.*` modules loaded, after checking that each came from this working tree through the finder."""
    loaded = sorted(n for n in sys.modules if n.startswith("covip."))
    stray = [n for n in loaded if getattr(sys.modules[n].__spec__, "loader_state", None) != MARK]
    if stray:
        raise RuntimeError(f"modules not loaded from the working tree (missing from pyproject's package-dir?): {stray}")
    return loaded


def stub_lmms_eval_if_missing() -> bool:
    """Where lmms-eval is not installed (the vLLM CPU venv), stand in for the three names our adapter base class
    imports; none of them touches generation. Returns whether the stub was needed. Benchmarks that compare
    against lmms-eval's own models import the real package and fail loudly without it."""
    try:
        import lmms_eval.api.instance  # noqa: F401

        return False
    except ImportError:
        pass
    from dataclasses import dataclass

    @dataclass
    class TokenCounts:
        input_tokens: int | None = None
        output_tokens: int | None = None
        reasoning_tokens: int | None = None

    @dataclass
    class GenerationResult:
        text: str
        token_counts: TokenCounts | None = None

    class lmms:  # noqa: N801 - lmms-eval's name
        def __init__(self) -> None:
            self.task_dict: dict = {}
            self._rank, self._world_size = 0, 1

    for mod in ("lmms_eval", "lmms_eval.api"):
        sys.modules[mod] = types.ModuleType(mod)
    sys.modules["lmms_eval.api.instance"] = types.SimpleNamespace(
        GenerationResult=GenerationResult, Instance=object, TokenCounts=TokenCounts
    )
    sys.modules["lmms_eval.api.model"] = types.SimpleNamespace(lmms=lmms)
    return True
