"""Helpers of the leaderboard tests: make a real `lmms_eval` run, copy one, and tamper with the copy the way a
dishonest submitter would (and, where a case says so, make it self-consistent, as a careful cheat would)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lmms_runner import run_lmms_eval


def lmms_run(args: list[str], data: Path, out: Path, log_samples: bool = True, **env: str | None) -> Path:
    """A real `lmms_eval` run into `out`; returns the directory holding its results file."""
    if log_samples:
        run = run_lmms_eval(args, data, out, **env)
    else:
        run = run_lmms_eval([*args, "--output_path", str(out)], data, None, **env)
        run.out = out
    assert run.code == 0, run.output[-3000:]
    return run.run_dir


def copy_run(src: Path, dst: Path, card: dict[str, Any] | None = None) -> Path:
    """A copy of a run directory (to tamper with), with a model card when given."""
    shutil.copytree(src, dst)
    if card is not None:
        import yaml

        (dst / "card.yaml").write_text(yaml.safe_dump(card), encoding="utf-8")
    return dst


def results_file(run: Path) -> Path:
    [path] = run.glob("*_results.json")
    return path


def samples_file(run: Path, task: str) -> Path:
    [path] = run.glob(f"*_samples_{task}.jsonl")
    return path


def edit_results(run: Path, change: Callable[[dict], Any]) -> None:
    path = results_file(run)
    doc = json.loads(path.read_text(encoding="utf-8"))
    change(doc)
    path.write_text(json.dumps(doc), encoding="utf-8")


def read_rows(run: Path, task: str) -> list[dict]:
    return [json.loads(line) for line in samples_file(run, task).read_text(encoding="utf-8").splitlines()]


def write_rows(run: Path, task: str, rows: list[dict]) -> None:
    samples_file(run, task).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def edit_rows(run: Path, task: str, change: Callable[[dict], Any]) -> None:
    rows = read_rows(run, task)
    for row in rows:
        change(row)
    write_rows(run, task, rows)


def consistent(run: Path, task: str) -> None:
    """Make a tampered task self-consistent, as a careful cheat would: every logged per-sample value and every
    reported aggregate recomputed from the (tampered) records with the package's own metrics."""
    from covip.tasks.catalogue import catalogue
    from covip.tasks.results.records import RECORD_KEY, CaptionRecord, DiagnosticRecord
    from covip.tasks.scoring import metrics

    info = catalogue().tasks[task]
    kind = CaptionRecord if info.family == "caption" else DiagnosticRecord
    rows = read_rows(run, task)
    values = []
    for row in rows:
        value = metrics.sample_values(kind.model_validate(row[RECORD_KEY]))
        row.update({m: value[m] for m in info.metrics})
        values.append(value)
    write_rows(run, task, rows)

    def report(doc: dict) -> None:
        for metric in info.metrics:
            doc["results"][task][f"{metric},none"] = info.aggregation(metric)([v[metric] for v in values])

    edit_results(run, report)


def rejudged(run: Path, task: str, change: Callable[[dict], Any]) -> None:
    """Change the records of a caption task, then judge them again with the rule judge and recompute every number:
    the change is then one the rule judge and the recomputation agree with (the response lmms-eval logged is changed
    alike, so that the record stays tied to it)."""
    from covip.judges.registry import make_judge
    from covip.tasks.results.records import CaptionRecord
    from covip.tasks.scoring.judging import judge_captions

    rows = read_rows(run, task)
    for row in rows:
        change(row["covip_record"])
        row["filtered_resps"] = [row["covip_record"]["caption"]]
    records = [CaptionRecord.model_validate(row["covip_record"]) for row in rows]
    for row, record in zip(rows, judge_captions(records, make_judge("rule")), strict=True):
        row["covip_record"] = record.model_dump(mode="json")
    write_rows(run, task, rows)
    consistent(run, task)
