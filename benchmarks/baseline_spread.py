"""Do the offline baselines spread on the default benchmark, as models do on the paper's data?

Builds the captioning benchmark at the default difficulty (or reads `--data`), runs every offline baseline
through the real `lmms_eval` command (in this process, as the console script would) with the rule judge, and
prints per bucket each baseline's Acc+ / Acc− / recognition F1, its overall Acc+ and Acc− (micro over
questions, pooled over buckets) and the slope of its Acc+ over the number of positive concepts; then how alike
the distractors are to their positives (`covip-data stats`).

Anchor: the targets of the benchmark at the default difficulty with at least 25 samples per bucket: oracle
>= 95 Acc+ and Acc− in every bucket; the colour-histogram retrieval baseline at most 70 overall Acc+, falling
with the number of concepts; the structure baseline between it and the oracle; blind Acc+ <= 10; shortcut
Acc− <= 40. The script measures and prints; it checks nothing.

    .venv/bin/python benchmarks/baseline_spread.py                      # seed 0, 25 per bucket: the demo build
    .venv/bin/python benchmarks/baseline_spread.py --data ~/.cache/covip/benchmark
    .venv/bin/python benchmarks/baseline_spread.py --smoke              # 1 sample per bucket, for CI
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from covip.tasks.builder.build import BuildConfig, build
from covip.tasks.builder.difficulty import Difficulty
from covip.tasks.cli.data import lookalike_table
from covip.tasks.cli.lmms_eval import main as lmms_eval
from covip.tasks.data.canonical import load_caption_dataset
from covip.tasks.data.schema import QAS_PER_CONCEPT

MODELS = ("covip_oracle", "covip_structure", "covip_retrieval", "covip_shortcut", "covip_blind")
BUCKETS = (1, 2, 3, 4)
DISTRACTORS_PER_POSITIVE = 2


def evaluate(model: str, data: Path, out: Path) -> dict:
    """`lmms_eval --model MODEL --tasks covip_caption` on the data with the rule judge; its results JSON."""
    env = {"COVIP_DATA": str(data), "COVIP_JUDGE": "rule", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    log = io.StringIO()
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            code = lmms_eval(
                [
                    "--model",
                    model,
                    "--tasks",
                    "covip_caption",
                    "--output_path",
                    str(out / model),
                    "--verbosity",
                    "WARNING",
                ]
            )
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key)
            else:
                os.environ[key] = value
    if code:
        raise SystemExit(f"{log.getvalue()[-3000:]}\nlmms_eval failed for {model} (exit status {code})")
    [path] = sorted((out / model).rglob("*_results.json"))
    return json.loads(path.read_text(encoding="utf-8"))["results"]


def row(model: str, results: dict, samples: dict[int, int]) -> dict:
    """Per bucket Acc+, Acc−, F1; pooled Acc+ and Acc− weighted by each bucket's number of questions."""
    buckets = {b: results[f"covip_caption_{b}c"] for b in BUCKETS if samples.get(b)}
    cells = {b: (r["acc_pos,none"], r["acc_neg,none"], r["recognition_f1,none"]) for b, r in buckets.items()}
    positive_q = {b: QAS_PER_CONCEPT * b * samples[b] for b in cells}
    negative_q = {b: DISTRACTORS_PER_POSITIVE * q for b, q in positive_q.items()}
    pooled_pos = sum(cells[b][0] * positive_q[b] for b in cells) / sum(positive_q.values())
    pooled_neg = sum(cells[b][1] * negative_q[b] for b in cells) / sum(negative_q.values())
    slope = float(np.polyfit(list(cells), [c[0] for c in cells.values()], 1)[0]) if len(cells) > 1 else float("nan")
    return {"model": model, "buckets": cells, "acc_pos": pooled_pos, "acc_neg": pooled_neg, "slope": slope}


def table(rows: list[dict]) -> str:
    head = "| model | " + " | ".join(f"{b}c Acc+ / Acc− / F1" for b in BUCKETS) + " | Acc+ | Acc− | Acc+ slope |"
    lines = [head, "|---" * (len(BUCKETS) + 4) + "|"]
    for r in rows:
        cells = ["{:.1f} / {:.1f} / {:.2f}".format(*r["buckets"][b]) if b in r["buckets"] else "–" for b in BUCKETS]
        lines.append(
            f"| {r['model']} | "
            + " | ".join(cells)
            + f" | {r['acc_pos']:.1f} | {r['acc_neg']:.1f} | {r['slope']:+.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="an existing benchmark directory (default: build one into --out)")
    p.add_argument("--out", help="where the build and the runs go (default: a temporary directory)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--per-bucket", type=int, default=25)
    p.add_argument("--difficulty", default="paper", help="easy, paper, hard or a number in [0, 1]")
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated (default: every offline baseline)")
    p.add_argument("--smoke", action="store_true", help="1 sample per bucket: checks the script, measures nothing")
    args = p.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="baseline_spread_"))
    data = Path(args.data) if args.data else out / "data"
    if not args.data:
        build(
            BuildConfig(
                data,
                seed=args.seed,
                per_bucket=1 if args.smoke else args.per_bucket,
                tasks=("caption",),
                force=True,
                workers=os.cpu_count() or 1,
                difficulty=Difficulty.parse(args.difficulty),
            )
        )
    manifest = json.loads((data / "manifest.json").read_text(encoding="utf-8"))["splits"]["test"]
    samples = {b: sum(s.bucket == b for s in load_caption_dataset(data, open_images=False).samples) for b in BUCKETS}
    rows, seconds = [], {}
    for model in args.models.split(","):
        started = time.monotonic()
        rows.append(row(model, evaluate(model, data, out / "runs"), samples))
        seconds[model] = time.monotonic() - started
    difficulty = Difficulty(**manifest["difficulty"]).label
    print(f"\n{data}: seed {manifest['seed']}, difficulty {difficulty}, samples per bucket {samples}, rule judge")
    print("Acc+ / Acc− in %, micro over questions; F1: recognition F1; slope: Acc+ points per added positive\n")
    print(table(rows))
    print("\nHow alike the distractors are to their positives (covip-data stats):\n")
    print(lookalike_table(data, "test"))
    print("\nlmms_eval seconds per model: " + ", ".join(f"{m} {s:.0f}" for m, s in seconds.items()))
    (out / "spread.json").write_text(json.dumps({"rows": rows, "seconds": seconds}, indent=1), encoding="utf-8")
    print(f"wrote {out / 'spread.json'}")


if __name__ == "__main__":
    main()
