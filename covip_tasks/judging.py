"""Judging a run's captions: which judge a run uses, and judging all its questions in one call.

The judge of a run is chosen by environment variables, so that it can be set for a plain
`lmms_eval` invocation without new CLI flags:

- `COVIP_JUDGE`: backend name (default `rule`, the offline judge);
- `COVIP_JUDGE_OPTIONS`: a JSON object of backend options (e.g. model, base_url).

Every judged record carries the judge's full spec, and `covip-judge` (judges issue) can
re-judge a logged run with another judge.
"""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any

from covip.judges.protocol import MCQA, Judge
from covip.judges.registry import make_judge

ENV_JUDGE = "COVIP_JUDGE"
ENV_JUDGE_OPTIONS = "COVIP_JUDGE_OPTIONS"


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
    return make_judge(config["backend"], **config["options"])


def run_judge() -> Judge:
    return _judge(json.dumps(judge_config(), sort_keys=True))


def judge_records(records: list[dict], judge: Judge) -> None:
    """Judge every not-yet-judged record's questions in one batch, in place.

    Each record gains `verdicts` (question id, concept, positive, gold and predicted letter)
    and the judge's spec; its `questions` stay, so a logged run can be re-judged later.
    """
    pending = [r for r in records if "verdicts" not in r]
    items = [
        MCQA(qid=f"{r['sample_id']}/{q['qid']}", caption=r["caption"], question=q["question"], options=q["options"])
        for r in pending
        for q in r["questions"]
    ]
    answers = judge.judge_many(items)
    if len(answers) != len(items):
        raise RuntimeError(f"judge {judge.spec.judge_id} returned {len(answers)} verdicts for {len(items)} questions")
    verdicts = iter(answers)
    spec = {**judge.spec.to_dict(), "id": judge.spec.judge_id}
    for record in pending:
        record["verdicts"] = [
            {
                "qid": q["qid"],
                "concept": q["concept"],
                "positive": q["positive"],
                "gold": q["gold"],
                "pred": next(verdicts).letter,
            }
            for q in record["questions"]
        ]
        record["judge"] = spec
