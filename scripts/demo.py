"""`make demo`: build the offline benchmark, evaluate the four baselines through lmms_eval, summarise.

Every step is a real command a user could type (printed before it runs); a failing step stops
the demo with its exit status, so a half-finished demo never prints a table.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from covip.tasks.sources import default_data_dir

MODELS = ("covip_oracle", "covip_retrieval", "covip_shortcut", "covip_blind")
TASKS = "covip_caption,covip_caption_blind,covip_caption_noctx"


def run(cmd: list[str], env: dict[str, str]) -> None:
    print(f"\n$ {shlex.join(cmd)}", flush=True)
    started = time.monotonic()
    code = subprocess.run(cmd, env=env).returncode
    if code:
        sys.exit(f"demo: step failed with exit status {code}: {shlex.join(cmd)}")
    print(f"  ({time.monotonic() - started:.1f} s)", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", default="runs/demo", help="where lmms-eval results go (default: %(default)s)")
    p.add_argument("--data", default=str(default_data_dir()), help="benchmark directory (default: %(default)s)")
    p.add_argument("--per-bucket", type=int, default=25, help="samples per bucket (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "COVIP_DATA": args.data}
    started = time.monotonic()
    run(
        [
            str(bin_dir / "covip-data"),
            "build",
            "--out",
            args.data,
            "--seed",
            str(args.seed),
            "--per-bucket",
            str(args.per_bucket),
            "--force",
        ],
        env,
    )
    run([str(bin_dir / "covip-data"), "validate", args.data], env)
    for model in MODELS:
        run(
            [
                str(bin_dir / "lmms_eval"),
                "--model",
                model,
                "--tasks",
                TASKS,
                "--output_path",
                f"{args.runs}/{model}",
                "--log_samples",
                "--verbosity",
                "WARNING",
            ],
            env,
        )
    run([str(bin_dir / "covip-leaderboard"), "summary", args.runs], env)
    print(f"\ndemo finished in {time.monotonic() - started:.0f} s; results under {args.runs}/")


if __name__ == "__main__":
    main()
