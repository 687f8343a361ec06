"""Judging a run's captions: which judge a run uses, and judging all its questions in one call.

The judge of a run is chosen by environment variables, so that it can be set for a plain
`lmms_eval` invocation without new CLI flags:

- `COVIP_JUDGE`: backend name (default `rule`, the offline judge);
- `COVIP_JUDGE_OPTIONS`: a JSON object of backend options (e.g. model, base_url; see
  covip.judges.registry), plus `allow_errors` (default false): whether a run may finish
  when some judge calls failed after their retries.

Every judged record carries the judge's full spec, and `covip-judge` can re-judge a logged
run with another judge. A failed judge call is an `error` verdict: counted (`judge_error`),
wrong for both Acc+ and Acc-, and fatal to the run unless errors are allowed. A sample whose
model answer was blocked or failed (`model_blocked`) is not sent to the judge: its questions
are `blocked`, wrong for both, and the sample is counted (`model_blocked`).
"""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any

from covip.judges.binary import BinaryJudge
from covip.judges.protocol import ERROR, MCQA, Judge
from covip.judges.registry import binary_options, make_binary_judge, make_judge
from covip.tasks.scoring.metrics import BLOCKED

ENV_JUDGE = "COVIP_JUDGE"
ENV_JUDGE_OPTIONS = "COVIP_JUDGE_OPTIONS"
ALLOW_ERRORS = "allow_errors"


class JudgeErrors(RuntimeError):
    """Some judge calls failed after their retries, and the run does not allow errors."""


def judge_config() -> dict[str, Any]:
    """The run's judge configuration from the environment; bad JSON is an error, not a default."""
    backend = os.environ.get(ENV_JUDGE, "rule").strip() or "rule"
    raw = os.environ.get(ENV_JUDGE_OPTIONS, "").strip()
    try:
        options = json.loads(raw) if raw else {}
    except json.JSONDecodeError as exc:
        raise ValueError(f"{ENV_JUDGE_OPTIONS} is not valid JSON: {exc}") from exc
    if not isinstance(options, dict):
        raise ValueError(f"{ENV_JUDGE_OPTIONS} must be a JSON object, got {type(options).__name__}")
    return {"backend": backend, "options": options}


@cache
def _judge(config_json: str) -> Judge:
    config = json.loads(config_json)
    options = {k: v for k, v in config["options"].items() if k != ALLOW_ERRORS}
    return make_judge(config["backend"], **options)


def errors_allowed(config: dict[str, Any] | None = None) -> bool:
    """Whether the run's judge configuration says failed judge calls may be tolerated (reported, not fatal)."""
    value = (config or judge_config())["options"].get(ALLOW_ERRORS, False)
    if not isinstance(value, bool):
        raise ValueError(f"{ENV_JUDGE_OPTIONS}: {ALLOW_ERRORS} must be true or false, got {value!r}")
    return value


def check_errors(records: list[dict], allowed: bool) -> None:
    """Raise `JudgeErrors` naming the failed questions when any verdict is an error and errors are not allowed."""
    failed = [(r["sample_id"], v) for r in records for v in r["verdicts"] if v["pred"] == ERROR]
    if failed and not allowed:
        sample, first = failed[0]
        total = sum(len(r["verdicts"]) for r in records)
        raise JudgeErrors(
            f"{len(failed)} of {total} judge calls failed after retries (first: sample {sample} question "
            f"{first['qid']}: {first.get('detail', 'no detail')}); fix the judge server or set "
            f"{ALLOW_ERRORS}: true in {ENV_JUDGE_OPTIONS} (covip-judge: --allow-errors) to report them as judge_error"
        )


def run_judge() -> Judge:
    return _judge(json.dumps(judge_config(), sort_keys=True))


@cache
def _binary_judge(config_json: str) -> BinaryJudge:
    config = json.loads(config_json)
    options = {k: v for k, v in config["options"].items() if k != ALLOW_ERRORS}
    return make_binary_judge(config["backend"], **binary_options(options))


def run_binary_judge() -> BinaryJudge:
    """The run's Correct/Wrong judge (LAR): the backend and options of its MCQA judge, less the MCQA-only ones."""
    return _binary_judge(json.dumps(judge_config(), sort_keys=True))


def judge_records(records: list[dict], judge: Judge) -> None:
    """Judge every not-yet-judged record's questions in one batch, in place.

    Each record gains `verdicts` (question id, concept, positive, gold and predicted letter)
    and the judge's spec; its `questions` stay, so a logged run can be re-judged later. A
    record without a model answer (`model_blocked`) is not judged: its questions are `blocked`.
    """
    pending = [r for r in records if "verdicts" not in r]
    answered = [r for r in pending if r.get("model_blocked") is None]
    items = [
        MCQA(qid=f"{r['sample_id']}/{q['qid']}", caption=r["caption"], question=q["question"], options=q["options"])
        for r in answered
        for q in r["questions"]
    ]
    answers = judge.judge_many(items)
    if len(answers) != len(items):
        raise RuntimeError(f"judge {judge.spec.judge_id} returned {len(answers)} verdicts for {len(items)} questions")
    verdicts = iter(answers)
    spec = {**judge.spec.to_dict(), "id": judge.spec.judge_id}
    for record in pending:
        questions = record["questions"]
        if record.get("model_blocked") is None:
            given = [next(verdicts) for _ in questions]
            record["verdicts"] = [_verdict_row(q, v.letter, v.detail) for q, v in zip(questions, given, strict=True)]
        else:
            record["verdicts"] = [_verdict_row(q, BLOCKED) for q in questions]
        record["judge"] = spec


def _verdict_row(question: dict, pred: str, detail: str = "") -> dict:
    row = {
        "qid": question["qid"],
        "concept": question["concept"],
        "positive": question["positive"],
        "gold": question["gold"],
        "pred": pred,
    }
    if detail:  # why a verdict is an error or unreadable; absent for a plain letter
        row["detail"] = detail
    return row
