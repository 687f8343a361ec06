"""The judging stage: which judge a run uses, and judging all of a task's records in one batch.

The judge of a run is chosen by environment variables, so that it can be set for a plain `lmms_eval`
invocation without new CLI flags:

- `COVIP_JUDGE`: backend name (default `rule`, the offline judge);
- `COVIP_JUDGE_OPTIONS`: a JSON object of backend options (e.g. model, base_url; see covip.judges.registry),
  plus `allow_errors` (default false): whether a run may finish when some judge calls failed after their retries.

The tasks judge every record of a process in one call (so a remote judge receives all questions at once and runs
them concurrently) before any per-sample value is computed; `covip-judge` re-judges a logged run with another
judge the same way. Each judged record carries the judge's full spec. A failed judge call is an `error` verdict:
counted (`judge_error`), wrong for Acc+ and Acc−, and fatal to the run unless errors are allowed. A sample whose
model answer was blocked or failed (`model_blocked`) is never sent to the judge: its verdicts are `blocked`.
"""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any

from covip.judges.binary import BinaryJudge, BinaryQuestion
from covip.judges.protocol import MCQA, Judge, JudgeSpec
from covip.judges.registry import binary_options, make_binary_judge, make_judge
from covip.tasks.results.records import BLOCKED, ERROR, CaptionRecord, DiagnosticRecord, JudgeRef, Verdict

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


def errors_allowed(config: dict[str, Any] | None = None) -> bool:
    """Whether the run's judge configuration says failed judge calls may be tolerated (reported, not fatal)."""
    value = (config or judge_config())["options"].get(ALLOW_ERRORS, False)
    if not isinstance(value, bool):
        raise ValueError(f"{ENV_JUDGE_OPTIONS}: {ALLOW_ERRORS} must be true or false, got {value!r}")
    return value


@cache
def _judge(config_json: str) -> Judge:
    config = json.loads(config_json)
    options = {k: v for k, v in config["options"].items() if k != ALLOW_ERRORS}
    return make_judge(config["backend"], **options)


@cache
def _binary_judge(config_json: str) -> BinaryJudge:
    config = json.loads(config_json)
    options = {k: v for k, v in config["options"].items() if k != ALLOW_ERRORS}
    return make_binary_judge(config["backend"], **binary_options(options))


def _config_key() -> str:
    """The configuration and where its answers are cached (a local model is loaded once per key and process)."""
    where = {name: os.environ.get(name) for name in ("COVIP_JUDGE_CACHE", "COVIP_HOME")}
    return json.dumps({**judge_config(), "cache_env": where}, sort_keys=True)


def run_judge() -> Judge:
    """The run's CapEval-QAs judge (one per configuration and process)."""
    return _judge(_config_key())


def run_binary_judge() -> BinaryJudge:
    """The run's Correct/Wrong judge (LAR): the backend and options of its MCQA judge, less the MCQA-only ones."""
    return _binary_judge(_config_key())


def judge_ref(spec: JudgeSpec) -> JudgeRef:
    return JudgeRef(id=spec.judge_id, **spec.to_dict())


def judge_captions(records: list[CaptionRecord], judge: Judge) -> list[CaptionRecord]:
    """The records with one verdict per question, all questions of all records judged in one `judge_many` call."""
    answered = [r for r in records if r.model_blocked is None]
    items = [
        MCQA(qid=f"{r.sample_id}/{q.qid}", caption=r.caption, question=q.question, options=dict(q.options))
        for r in answered
        for q in r.questions
    ]
    answers = iter(judge.judge_many(items))
    ref = judge_ref(judge.spec)
    judged = []
    for record in records:
        if record.model_blocked is None:
            given = [next(answers) for _ in record.questions]
            verdicts = [
                Verdict(qid=q.qid, pred=a.letter, detail=a.detail) for q, a in zip(record.questions, given, strict=True)
            ]
        else:
            verdicts = [Verdict(qid=q.qid, pred=BLOCKED) for q in record.questions]
        judged.append(record.model_copy(update={"verdicts": verdicts, "judge": ref}))
    if next(answers, None) is not None:
        raise RuntimeError(f"judge {ref.id} returned more verdicts than the {len(items)} questions asked")
    return judged


def judge_lar(records: list[DiagnosticRecord], judge: BinaryJudge) -> list[DiagnosticRecord]:
    """LAR records with the binary judge's verdict, all answered responses judged in one call."""
    answered = [r for r in records if r.model_blocked is None]
    items = [BinaryQuestion(qid=r.sample_id, response=r.response, reference=r.reference) for r in answered]
    labels = iter(v.label for v in judge.judge_binary_many(items))
    ref = judge_ref(judge.spec)
    return [
        r.model_copy(update={"verdict": next(labels) if r.model_blocked is None else BLOCKED, "judge": ref})
        for r in records
    ]


def check_errors(records: list[CaptionRecord] | list[DiagnosticRecord], allowed: bool) -> None:
    """Raise `JudgeErrors` naming the first failed question when a judge call failed and errors are not allowed."""
    failed = [
        (r.sample_id, v.qid, v.detail)
        for r in records
        for v in (r.verdicts if isinstance(r, CaptionRecord) else [])
        if v.pred == ERROR
    ] + [(r.sample_id, "LAR", "") for r in records if isinstance(r, DiagnosticRecord) and r.verdict == ERROR]
    if failed and not allowed:
        sample, qid, detail = failed[0]
        raise JudgeErrors(
            f"{len(failed)} judge call(s) failed after retries (first: sample {sample} question {qid}"
            f"{': ' + detail if detail else ''}); fix the judge server or set {ALLOW_ERRORS}: true in "
            f"{ENV_JUDGE_OPTIONS} (covip-judge: --allow-errors) to report them as judge_error"
        )
