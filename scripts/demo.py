"""`make demo`: build the offline benchmark, evaluate the five offline baselines through lmms_eval, summarise,
and build the static leaderboard site (`<runs>/site/index.html`).

Every step is a real command a user could type (printed before it runs); a failing step stops
the demo with its exit status, so a half-finished demo never prints a table.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from covip.tasks.data.sources import default_data_dir

MODELS = ("covip_oracle", "covip_structure", "covip_retrieval", "covip_shortcut", "covip_blind")
TASKS = "covip_caption,covip_caption_blind,covip_caption_noctx,covip_diag,covip_diag_controls"
# Model cards for the leaderboard (`card.yaml` beside each run): what each baseline is.
CARDS = {
    "covip_oracle": (
        "Oracle (reads the answer key)",
        "captions from the positive concepts' dialogues: the judge's ceiling",
    ),
    "covip_structure": (
        "Structure-matching baseline",
        "local features, geometric alignment and a pixel check of each context image in the query, no training",
    ),
    "covip_retrieval": ("Retrieval baseline", "colour-histogram matching of query and context images, no training"),
    "covip_shortcut": ("Shortcut (text only)", "recites every context dialogue without looking at the query"),
    "covip_blind": ("Blind (generic caption)", "one generic caption, no memory"),
}


def write_card(run_dir: Path, model: str) -> None:
    """The baseline's model card, read by `covip-leaderboard build` from the run directory."""
    name, method = CARDS[model]
    card = {
        "name": name,
        "parameters": "none (no neural network)",
        "base_model": "none",
        "method": method,
        "training_data": "none",
        "access": "open",
        "notes": "offline baseline shipped with CoViP bench",
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False), encoding="utf-8")


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
        # A fresh directory per model: an earlier demo's results beside the new ones would give the
        # leaderboard two runs of the same task, which it rejects as ambiguous.
        shutil.rmtree(Path(args.runs) / model, ignore_errors=True)
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
        write_card(Path(args.runs) / model, model)
    run([str(bin_dir / "covip-leaderboard"), "summary", args.runs], env)
    site = Path(args.runs) / "site"
    run(
        [str(bin_dir / "covip-leaderboard"), "build", *(f"{args.runs}/{m}" for m in MODELS), "--out", str(site)]
        + ["--data", args.data],
        env,
    )
    print(f"\ndemo finished in {time.monotonic() - started:.0f} s; results under {args.runs}/")
    print(f"leaderboard site: {(site / 'index.html').resolve()}")


if __name__ == "__main__":
    main()
