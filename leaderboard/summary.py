"""`covip-leaderboard summary RUNS`: one table of every model's CoViP captioning scores.

Reads lmms-eval output directories (results JSON plus `--log_samples` JSONL), recomputes every
number from the per-sample judged records with `covip.tasks.scoring.metrics` (so the table and the
run agree by construction, and intervals can be computed), and writes `summary.md` and
`summary.json` beside the runs. The static site of the leaderboard issue builds on this.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from covip.leaderboard.aggregate import caption_score
from covip.tasks.scoring.metrics import RECORD_KEY

TASK = re.compile(r"^covip_caption_(?P<bucket>[1-4])c(?:_(?P<control>blind|noctx))?$")


def load_runs(root: Path) -> dict[str, dict[str, list[dict]]]:
    """{model: {task: judged records}} from every results file under root."""
    runs: dict[str, dict[str, list[dict]]] = defaultdict(dict)
    results_files = sorted(root.rglob("*_results.json"))
    if not results_files:
        raise FileNotFoundError(f"no lmms-eval results (*_results.json) under {root}")
    for path in results_files:
        results = json.loads(path.read_text(encoding="utf-8"))
        model = results.get("config", {}).get("model") or path.parent.name
        stamp = path.name.removesuffix("_results.json")
        for task in results.get("results", {}):
            if not TASK.match(task):
                continue
            samples = path.parent / f"{stamp}_samples_{task}.jsonl"
            if not samples.is_file():
                raise FileNotFoundError(
                    f"{path}: task {task} has no per-sample log {samples.name} (run with --log_samples)"
                )
            records = []
            with open(samples, encoding="utf-8") as fh:
                for lineno, line in enumerate(fh, start=1):
                    row = json.loads(line)
                    if RECORD_KEY not in row or "verdicts" not in row[RECORD_KEY]:
                        raise ValueError(f"{samples}: line {lineno}: field '{RECORD_KEY}.verdicts' missing")
                    records.append(row[RECORD_KEY])
            runs[model][task] = records
    return dict(runs)


def summarise(runs: dict[str, dict[str, list[dict]]]) -> dict[str, dict[str, Any]]:
    """Per model: per bucket, overall (pooled over buckets) and per control."""
    table: dict[str, dict[str, Any]] = {}
    for model, tasks in sorted(runs.items()):
        by_control: dict[str, list[dict]] = defaultdict(list)
        entry: dict[str, Any] = {}
        for task, records in sorted(tasks.items()):
            m = TASK.match(task)
            control = m["control"] or "none"
            by_control[control].extend(records)
            if control == "none":
                entry[f"{m['bucket']}c"] = caption_score(records)
        for control, records in by_control.items():
            entry["overall" if control == "none" else control] = caption_score(records)
        table[model] = entry
    return table


def _fmt(value: float, digits: int = 1) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def to_markdown(table: dict[str, dict[str, Any]], judge: str) -> str:
    head = (
        ["model"]
        + [f"{b}c Acc+ / Acc−" for b in range(1, 5)]
        + ["overall Acc+ [95% CI]", "overall Acc−", "recog. F1", "invalid", "blind Acc+ / Acc−", "noctx Acc+ / Acc−"]
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for model, e in table.items():

        def pair(key: str, e: dict = e) -> str:
            return f"{_fmt(e[key]['acc_pos'])} / {_fmt(e[key]['acc_neg'])}" if key in e else "–"

        o = e.get("overall", {})
        ci = o.get("acc_pos_ci95", [math.nan, math.nan])
        row = (
            [model]
            + [pair(f"{b}c") for b in range(1, 5)]
            + [
                f"{_fmt(o.get('acc_pos', math.nan))} [{_fmt(ci[0])}, {_fmt(ci[1])}]",
                _fmt(o.get("acc_neg", math.nan)),
                _fmt(o.get("recognition_f1", math.nan), 2),
                str(o.get("judge_invalid", "–")),
                pair("blind"),
                pair("noctx"),
            ]
        )
        lines.append("| " + " | ".join(row) + " |")
    note = (
        f"\nAcc+ and Acc− in percent, micro-averaged over questions (as the paper); 95% CI clustered by "
        f"sample. Judge: {judge}.\n"
    )
    return "\n".join(lines) + "\n" + note


def _judges(runs: dict[str, dict[str, list[dict]]]) -> str:
    ids = {r["judge"]["id"] for tasks in runs.values() for records in tasks.values() for r in records}
    return ", ".join(sorted(ids)) or "none"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="covip-leaderboard", description="CoViP leaderboard tools.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("summary", help="table of every model's scores under RUNS (writes summary.md/.json there)")
    s.add_argument("runs", help="directory holding lmms-eval output directories (with --log_samples)")
    args = p.parse_args(argv)
    root = Path(args.runs)
    try:
        runs = load_runs(root)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    table = summarise(runs)
    markdown = to_markdown(table, _judges(runs))
    (root / "summary.md").write_text(markdown, encoding="utf-8")
    (root / "summary.json").write_text(json.dumps(table, indent=2, allow_nan=True) + "\n", encoding="utf-8")
    print(markdown)
    print(f"wrote {root / 'summary.md'} and {root / 'summary.json'}")
    return 0


def entry() -> None:
    """Kept for the console script's old target: every subcommand (summary, validate, build) is in cli.py."""
    from covip.leaderboard.cli import main as cli_main

    sys.exit(cli_main())
