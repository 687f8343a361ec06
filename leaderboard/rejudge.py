"""Judging a submission's records again: every verdict of the rule judge, or a seeded sample of an LLM judge's.

The rule judge is deterministic and free, so a rule-judged submission is re-judged whole on validation: a verdict
flipped from wrong to right (with every number recomputed to match) comes out different. An LLM judge costs calls
and needs its server, so it is checked only on request (`--spot-check N`): N of the submission's judged questions,
drawn with a seed from the model id and `--spot-seed` (the same submission gets the same draw), are re-asked of the
judge the submission declares, rebuilt from its recorded spec plus the connection options the user gives
(`--judge-option base_url=...`). The rebuilt judge must have the declared spec id, or the check is not run (and
says why); so must a judge that fails every call. Too many disagreements reject the submission, naming each one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from covip.judges.binary import BinaryQuestion
from covip.judges.presets import DECODING_KEYS
from covip.judges.protocol import MCQA
from covip.judges.registry import MCQA_ONLY_OPTIONS, binary_options, make_binary_judge, make_judge
from covip.leaderboard.rules import Rejection, record_of
from covip.leaderboard.submission import Submission
from covip.tasks.results.records import ERROR, CaptionRecord, DiagnosticRecord, JudgeRef
from covip.tasks.results.run import LoggedSample, TaskRun
from covip.tasks.scoring.judging import judge_captions, judge_lar, judge_ref

RULE = "rule"
REBUILT_OPTIONS = (*DECODING_KEYS, *MCQA_ONLY_OPTIONS, "constrain")  # spec fields that are also judge options


def is_rule_judged(sample: LoggedSample) -> bool:
    return sample.record.judge is not None and sample.record.judge.backend == RULE


def rule_rejudge(task: TaskRun) -> tuple[list[Rejection], int]:
    """Re-judge the task's rule-judged records with this package's rule judge: (rejections, verdicts re-judged)."""
    samples = [s for s in task.samples if is_rule_judged(s)]
    if not samples:
        return [], 0
    caption = task.info.family == "caption"
    judge = make_judge(RULE) if caption else make_binary_judge(RULE)
    ref = judge_ref(judge.spec)
    file = task.samples_file.name  # sample logs lie in the submission directory itself
    rejections = [
        Rejection(
            "rejudge",
            file,
            "covip_record.judge",
            f"says rule judge {s.record.judge.id}, but this package's rule judge is {ref.id}: its verdicts cannot "
            "be re-derived",
            task.name,
            record_of(s),
        )
        for s in samples
        if s.record.judge != ref
    ]
    samples = [s for s in samples if s.record.judge == ref]
    if caption:
        fresh = judge_captions([s.record.model_copy(update={"verdicts": [], "judge": None}) for s in samples], judge)
        pairs = [(s, _caption_differences(s.record, f)) for s, f in zip(samples, fresh, strict=True)]
        count = sum(len(s.record.verdicts) for s in samples)
    else:
        fresh = judge_lar([s.record.model_copy(update={"verdict": None, "judge": None}) for s in samples], judge)
        pairs = [(s, _lar_difference(s.record, f)) for s, f in zip(samples, fresh, strict=True)]
        count = len(samples)
    for sample, differences in pairs:
        if differences:
            where = "covip_record.verdicts" if caption else "covip_record.verdict"
            message = f"{differences}: the rule judge, which is deterministic, gives other verdicts"
            rejections.append(Rejection("rejudge", file, where, message, task.name, record_of(sample)))
    return rejections, count


def _caption_differences(logged: CaptionRecord, fresh: CaptionRecord) -> str:
    again = {v.qid: v.pred for v in fresh.verdicts}
    differ = [v for v in logged.verdicts if again[v.qid] != v.pred]
    if not differ:
        return ""
    first = differ[0]
    return (
        f"{len(differ)} of {len(logged.verdicts)} verdicts differ "
        f"(first: {first.qid} logged {first.pred!r}, re-judged {again[first.qid]!r})"
    )


def _lar_difference(logged: DiagnosticRecord, fresh: DiagnosticRecord) -> str:
    return "" if logged.verdict == fresh.verdict else f"logged {logged.verdict!r}, re-judged {fresh.verdict!r}"


# --- the LLM spot check ----------------------------------------------------------------------------------------


@dataclass
class SpotCheck:
    """What a spot check asked and found; `reason` says why a submission was not spot-checked."""

    judges: list[str]
    seed: int
    asked: int = 0
    agreed: int = 0
    failed: int = 0
    disagreements: list[tuple[TaskRun, LoggedSample, str, str, str]] = field(default_factory=list)
    reason: str = ""

    @property
    def compared(self) -> int:
        return self.asked - self.failed

    def summary(self) -> str:
        if self.reason:
            return f"not spot-checked: {self.reason}"
        return f"spot check: {self.agreed} of {self.compared} re-judged verdicts agree (seed {self.seed})"

    def to_dict(self) -> dict[str, Any]:
        keys = ("judges", "seed", "asked", "agreed", "failed", "reason")
        return {k: getattr(self, k) for k in keys} | {"summary": self.summary()}


@dataclass(frozen=True)
class _Item:
    """One judged question of the submission: its task, record, question id (LAR: the sample) and logged verdict."""

    task: TaskRun
    sample: LoggedSample
    qid: str
    logged: str


def _llm_items(sub: Submission) -> list[_Item]:
    items = []
    for name in sorted(sub.run.tasks):
        task = sub.run.tasks[name]
        for sample in task.samples:
            record = sample.record
            if record.judge is None or record.judge.backend == RULE or record.model_blocked is not None:
                continue
            # a call that failed during the run (allowed errors) has no answer to compare with
            if isinstance(record, CaptionRecord):
                items += [_Item(task, sample, v.qid, v.pred) for v in record.verdicts if v.pred != ERROR]
            elif record.verdict not in (None, ERROR):
                items.append(_Item(task, sample, "", record.verdict))
    return items


def _rebuild(ref: JudgeRef, binary: bool, options: dict[str, Any]) -> Any:
    """The declared judge, from its recorded spec and the user's connection options; raises when it differs."""
    declared = {"model": ref.model, "preset": ref.preset} | {
        k: v for k, v in ref.decoding.items() if k in REBUILT_OPTIONS
    }
    merged = declared | options
    judge = make_binary_judge(ref.backend, **binary_options(merged)) if binary else make_judge(ref.backend, **merged)
    built = judge_ref(judge.spec)
    if built != ref:
        raise ValueError(f"the options build judge {built.id}, but the submission declares {ref.id}")
    return judge


def _ask(judge: Any, items: list[_Item]) -> list[tuple[str, str]]:
    """The judge's fresh (verdict, failure detail) for each item, all in one batch."""
    if not items:
        return []
    if isinstance(items[0].sample.record, DiagnosticRecord):
        questions = [
            BinaryQuestion(qid=str(k), response=i.sample.record.response, reference=i.sample.record.reference)
            for k, i in enumerate(items)
        ]
        return [(v.label, "") for v in judge.judge_binary_many(questions)]
    mcqas = []
    for k, item in enumerate(items):
        record = item.sample.record
        question = next(q for q in record.questions if q.qid == item.qid)
        mcqas.append(
            MCQA(qid=str(k), caption=record.caption, question=question.question, options=dict(question.options))
        )
    return [(v.letter, v.detail) for v in judge.judge_many(mcqas)]


def spot_check(sub: Submission, n: int, seed: int, options: dict[str, Any]) -> SpotCheck | None:
    """Re-ask n seeded questions of the declared LLM judge(s); None when nothing in the submission was LLM-judged."""
    items = _llm_items(sub)
    if not items:
        return None

    def kind(item: _Item) -> tuple[str, bool]:
        return item.sample.record.judge.id, isinstance(item.sample.record, DiagnosticRecord)

    declared = {kind(i): i.sample.record.judge for i in items}
    check = SpotCheck(sorted({judge_id for judge_id, _ in declared}), seed)
    try:
        judges = {key: _rebuild(ref, key[1], options) for key, ref in sorted(declared.items())}
    except ValueError as exc:
        check.reason = str(exc)
        return check
    drawn = random.Random(f"{seed}:{sub.model_id}").sample(items, min(n, len(items)))
    failures = []
    for key, judge in judges.items():
        mine = [i for i in drawn if kind(i) == key]
        for item, (fresh, detail) in zip(mine, _ask(judge, mine), strict=True):
            check.asked += 1
            if fresh == ERROR:
                check.failed += 1
                failures.append(detail)
            elif fresh == item.logged:
                check.agreed += 1
            else:
                check.disagreements.append((item.task, item.sample, item.qid, item.logged, fresh))
    if check.asked and not check.compared:
        check.reason = (
            f"the judge failed {check.failed} of {check.asked} questions (first: {failures[0] or 'no detail'})"
        )
    return check


def spot_check_rejections(check: SpotCheck, min_agreement: float) -> list[Rejection]:
    """One rejection per disagreement, when the judge agrees less often than `min_agreement`."""
    if check.reason or check.agreed >= min_agreement * check.compared:
        return []
    share = f"{check.agreed} of {check.compared} re-judged verdicts agree, under the {min_agreement:.0%} required"
    rejections = []
    for task, sample, qid, logged, fresh in check.disagreements:
        what = f"question {qid}: " if qid else ""
        message = f"{what}logged {logged!r}, the declared judge now answers {fresh!r} ({share})"
        field = "covip_record.verdicts" if qid else "covip_record.verdict"
        rejections.append(Rejection("spot-check", task.samples_file.name, field, message, task.name, record_of(sample)))
    return rejections
