"""Build time of the demo benchmark at the default difficulty, against the easy level (target: <= 1.5x).

The anchor is the easy level: it runs builder version 1's code path and writes its bytes (the tests check
them), so it is the builder as it was before the difficulty knob. The two levels are built alternately,
`--rounds` times each, exactly as `make demo` builds (`covip-data build`, every task, seed 0, 25 samples per
bucket, one process per CPU), and the script prints the wall and CPU seconds of each build and the ratio
of the medians. Every build of a level must write the same bytes, which the script checks too.

    .venv/bin/python benchmarks/build_time.py [--rounds 3] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LEVELS = ("easy", "paper")


def build(level: str, out: Path, per_bucket: int, diag_samples: int) -> tuple[float, float, str]:
    """One `covip-data build` into `out`: (wall seconds, CPU seconds of its processes, manifest's file hashes)."""
    command = [str(Path(sys.executable).parent / "covip-data"), "build", "--out", str(out), "--force"]
    command += ["--difficulty", level, "--per-bucket", str(per_bucket), "--diag-samples", str(diag_samples)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    subprocess.run(command, check=True, capture_output=True)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    files = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["files"]
    return wall, cpu, json.dumps({k: v for k, v in files.items() if k not in ("README.md", "manifest.json")})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--smoke", action="store_true", help="1 sample per bucket and task, 1 round: checks the script")
    args = p.parse_args()
    rounds, per_bucket, diag = (1, 1, 1) if args.smoke else (args.rounds, 25, 50)
    times: dict[str, list[tuple[float, float]]] = {level: [] for level in LEVELS}
    outputs: dict[str, set[str]] = {level: set() for level in LEVELS}
    with tempfile.TemporaryDirectory(prefix="build_time_") as tmp:
        for r in range(rounds):
            for level in LEVELS:
                wall, cpu, files = build(level, Path(tmp) / level, per_bucket, diag)
                times[level].append((wall, cpu))
                outputs[level].add(files)
                print(f"round {r + 1} {level}: {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)
    for level, seen in outputs.items():
        if len(seen) != 1:
            raise SystemExit(f"{level}: the builds wrote different bytes; the builder is not deterministic")
    wall = {level: statistics.median(t[0] for t in runs) for level, runs in times.items()}
    cpu = {level: statistics.median(t[1] for t in runs) for level, runs in times.items()}
    print(f"\n{os.cpu_count()} CPUs; medians over {rounds} round(s); same bytes in every build of a level")
    for level in LEVELS:
        print(f"{level}: {wall[level]:.1f} s wall, {cpu[level]:.1f} s CPU")
    print(f"paper / easy: {wall['paper'] / wall['easy']:.2f}x wall, {cpu['paper'] / cpu['easy']:.2f}x CPU")


if __name__ == "__main__":
    main()
