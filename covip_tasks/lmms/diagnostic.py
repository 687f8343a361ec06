"""lmms-eval glue for the diagnostics `covip_{lsd,lar,itr}[_cag|_blind|_noctx]` (covip_protocol.md §4).

- LSD (last-seen detection): token F1 of the extracted answer against the place of the target's
  latest encounter; counts of exact, partial and zero answers.
- LAR (last-action recall): accuracy of a binary Correct/Wrong judge on the response against
  the last action (offline default: the rule judge; an LLM judge through COVIP_JUDGE).
- ITR (instruction-triggered recall): share of responses that say the planted trigger word.

The preset (`COVIP_PRESET`: `covip`, the default, or `paper`) selects prompts and metric
details (see prompts.py and metrics.py) and is recorded in every sample. Every record keeps a
per-sample `score` in percent, for confidence intervals and the leaderboard. A response that
was blocked or failed (`model_blocked`) scores 0, is counted, and never reaches a judge.
"""

from __future__ import annotations

import os
from typing import Any

from covip.judges.binary import BinaryQuestion
from covip.tasks.data.schema import DIAGNOSTIC_TARGET
from covip.tasks.data.sources import load_diagnostic_source
from covip.tasks.lmms.task import CovipTask, RecordRef, blank_image, open_rgb
from covip.tasks.prompts import CONTROLS, DIAGNOSTIC_QUESTIONS, PRESETS, diagnostic_messages
from covip.tasks.scoring import metrics
from covip.tasks.scoring.judging import ALLOW_ERRORS, ENV_JUDGE_OPTIONS, JudgeErrors, errors_allowed, run_binary_judge
from covip.tasks.scoring.metrics import BLOCKED, RECORD_KEY

ENV_PRESET = "COVIP_PRESET"
MODES = ("direct", "cag")


def preset() -> str:
    value = os.environ.get(ENV_PRESET, "covip").strip() or "covip"
    if value not in PRESETS:
        raise ValueError(f"{ENV_PRESET} must be one of {PRESETS}, got {value!r}")
    return value


class DiagnosticTask(CovipTask):
    """One diagnostic task's samples (`dataset_kwargs`: task, mode, control)."""

    def rows(self, options: dict[str, Any], split: str) -> list[dict[str, Any]]:
        task = self.option(options, "task", tuple(DIAGNOSTIC_TARGET))
        mode = self.option(options, "mode", MODES, "direct")
        control = self.option(options, "control", CONTROLS, "none")
        source = load_diagnostic_source(task, self.config.dataset_path, split)
        common = {
            "task": task,
            "mode": mode,
            "control": control,
            "preset": preset(),
            "data_location": source.location,
            "manifest_sha256": source.manifest_sha256,
        }
        rows = []
        for sample in source.samples:
            row = {**sample.to_dict(), **common}
            row["images_context"] = [str(source.root / p) for p in sample.images_context]
            row["query_image"] = str(source.root / sample.query_image)
            rows.append(row)
        return rows


def diag_doc_to_messages(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> list[dict]:
    no_context = doc["control"] == "noctx"
    images = [] if no_context else [open_rgb(p) for p in doc["images_context"]]
    dialogues = [] if no_context else list(doc["dialogues_context"])
    query = blank_image() if doc["control"] == "blind" else open_rgb(doc["query_image"])
    return diagnostic_messages(doc["task"], doc["mode"], doc["preset"], images, dialogues, query)


def diag_doc_to_text(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> str:
    """lmms-eval's text-only view (`ctx`): the question; chat models use the messages."""
    return DIAGNOSTIC_QUESTIONS[doc["preset"]][doc["task"]]


def diag_doc_to_target(doc: dict) -> str:
    return doc[DIAGNOSTIC_TARGET[doc["task"]]]


def diag_process_results(doc: dict, results: list[str]) -> dict[str, Any]:
    """A per-sample record with its score (LAR's is set when the aggregation judges it)."""
    if len(results) != 1 or not isinstance(results[0], str):
        raise TypeError(f"sample {doc['sample_id']}: expected one response string, got {results!r:.200}")
    response, task, chosen = results[0], doc["task"], doc["preset"]
    record = {
        key: doc[key] for key in ("sample_id", "task", "mode", "control", "preset", "data_location", "manifest_sha256")
    }
    record["response"] = response
    record["model_blocked"] = getattr(results[0], "reason", None)  # refused or failed call (model_adapters/chat.py)
    record["reference"] = doc[DIAGNOSTIC_TARGET[task]]
    answered = record["model_blocked"] is None
    if task == "lsd":
        record["extracted"] = metrics.extract_answer(response, chosen)
        f1 = metrics.token_f1(record["extracted"], record["reference"], chosen) if answered else 0.0
        record["score"] = 100.0 * f1
    elif task == "itr":
        said = answered and metrics.trigger_said(response, record["reference"], chosen)
        record["score"] = 100.0 if said else 0.0
    return {RECORD_KEY: record, **{name: RecordRef(record, name) for name in METRICS[task]}}


def judge_lar_records(records: list[dict]) -> None:
    """Judge every unjudged LAR record in one batch with the run's binary judge (COVIP_JUDGE).

    A record without a model answer (`model_blocked`) is not judged: its verdict is `blocked`.
    """
    pending = [r for r in records if "verdict" not in r]
    if not pending:
        return
    judge = run_binary_judge()
    answered = [r for r in pending if r["model_blocked"] is None]
    items = [BinaryQuestion(qid=r["sample_id"], response=r["response"], reference=r["reference"]) for r in answered]
    verdicts = judge.judge_binary_many(items)
    if len(verdicts) != len(items):
        raise RuntimeError(f"binary judge returned {len(verdicts)} verdicts for {len(items)} responses")
    for record, verdict in zip(answered, verdicts, strict=True):
        record["verdict"] = verdict.label
    spec = {**judge.spec.to_dict(), "id": judge.spec.judge_id}
    for record in pending:
        record.setdefault("verdict", BLOCKED)
        record["judge"] = spec
        record["score"] = 100.0 if record["verdict"] == "correct" else 0.0


METRICS = metrics.DIAGNOSTIC_METRICS


def diag_aggregate(items: list[RecordRef]) -> float:
    """The one aggregation of every diagnostic metric (LAR records are judged first, in one batch)."""
    if not items:
        raise ValueError("no per-sample results to aggregate")
    records = [item.record for item in items]
    task = records[0]["task"]
    if task == "lar":
        judge_lar_records(records)
        errors = sum(r["verdict"] == "error" for r in records)
        if errors and not errors_allowed():
            raise JudgeErrors(
                f"{errors} of {len(records)} LAR judge calls failed after retries; fix the judge server or set "
                f"{ALLOW_ERRORS}: true in {ENV_JUDGE_OPTIONS} to report them as judge_error"
            )
    return METRICS[task][items[0].metric](records)
