"""Metric arithmetic on hand-computed cases, over typed records, and the records' own consistency rules."""

import math

import pytest
from pydantic import ValidationError

from covip.tasks.results.records import BLOCKED, CaptionRecord, DiagnosticRecord, JudgeRef, Question, Verdict
from covip.tasks.scoring import metrics

OPTIONS = {"A": "the beach", "B": "the park", "C": "the lake", "D": "The answer cannot be determined"}
JUDGE = JudgeRef(id="rule:x", backend="rule", model="rule-v1", preset="strict")


def judged(sample_id: str, answers: list[tuple[bool, str, str]], caption: str = "") -> CaptionRecord:
    """A judged record: one concept per (positive, gold, predicted) triple, one question each."""
    n = len(answers)
    questions = [
        Question(qid=f"c{j}.Q1", concept=j, question="Where?", options=OPTIONS, gold=g)
        for j, (_, g, _) in enumerate(answers)
    ]
    return CaptionRecord(
        sample_id=sample_id,
        bucket=1,
        control="none",
        caption=caption,
        names=[f"N{j}" for j in range(n)],
        positives=[j for j, (positive, _, _) in enumerate(answers) if positive],
        questions=questions,
        verdicts=[Verdict(qid=q.qid, pred=p) for q, (_, _, p) in zip(questions, answers, strict=True)],
        judge=JUDGE,
    )


# sample 1: 3 positive questions (2 right), 6 negatives (5 answered D, 1 leaked)
S1 = judged(
    "s1", [(True, "A", "A"), (True, "B", "B"), (True, "C", "D")] + [(False, "A", "D")] * 5 + [(False, "B", "B")]
)
# sample 2: 6 positive questions (3 right, 1 invalid), 12 negatives all D
S2 = judged("s2", [(True, "A", "A")] * 3 + [(True, "A", "B")] * 2 + [(True, "A", "invalid")] + [(False, "C", "D")] * 12)


def test_micro_pools_questions_over_samples():
    assert metrics.aggregate("acc_pos", [S1, S2]) == pytest.approx(100 * 5 / 9)
    assert metrics.aggregate("acc_neg", [S1, S2]) == pytest.approx(100 * 17 / 18)


def test_macro_averages_per_sample_accuracies():
    assert metrics.aggregate("acc_pos_macro", [S1, S2]) == pytest.approx((100 * 2 / 3 + 100 * 3 / 6) / 2)
    assert metrics.aggregate("acc_neg_macro", [S1, S2]) == pytest.approx((100 * 5 / 6 + 100.0) / 2)


def test_per_sample_values_carry_counts_score_and_sample():
    assert metrics.sample_values(S1)["acc_pos"] == {"sample_id": "s1", "correct": 2, "total": 3, "score": 100 * 2 / 3}
    assert metrics.sample_values(S2)["judge_invalid"] == 1
    assert metrics.sample_values(S2)["acc_neg"]["total"] == 12


def test_negative_question_correct_only_when_d():
    record = judged("s", [(True, "A", "A"), (False, "A", "D"), (False, "A", "A"), (True, "A", "D")])
    assert [metrics.verdict_correct(record, q, v) for q, v in record.judged()] == [True, True, False, False]


def test_invalid_is_counted_and_wrong():
    assert metrics.aggregate("judge_invalid", [S1, S2]) == 1
    record = judged("s", [(True, "A", "invalid"), (False, "A", "invalid")])
    assert not any(metrics.verdict_correct(record, q, v) for q, v in record.judged())


def test_empty_is_nan_not_zero():
    assert math.isnan(metrics.aggregate("acc_pos", []))
    assert math.isnan(metrics.aggregate("acc_neg_macro", []))


def test_clustered_interval_contains_the_estimate_and_needs_two_samples():
    lo, hi = metrics.micro_ci95([S1, S2] * 5, positive=True)
    p = metrics.aggregate("acc_pos", [S1, S2] * 5)
    assert lo < p < hi
    assert math.isnan(metrics.micro_ci95([S1], positive=True)[0])


def test_recognition_f1_hand_computed():
    names = ["Seth", "Judy", "Matthew", "Ann"]
    # mentions Seth (pos), Judy (neg): P = 1/2, R = 1/2 -> F1 = 0.5
    assert metrics.recognition_f1("Seth and Judy", names, [0, 3]) == pytest.approx(0.5)
    # mentions Seth only, both positives Seth/Ann: P = 1, R = 1/2 -> 2/3
    assert metrics.recognition_f1("Seth.", names, [0, 3]) == pytest.approx(2 / 3)
    assert metrics.recognition_f1("nobody here", names, [0]) == 0.0
    assert metrics.recognition_f1("Seth, Ann", names, [0, 3]) == 1.0


def test_names_match_whole_words_case_sensitively():
    names = ["Ann", "Will"]
    assert metrics.mentioned("Annie will come; Anna too", names) == set()
    assert metrics.mentioned("Ann's dog. Will!", names) == {0, 1}


def test_every_yaml_aggregation_is_the_one_recomputations_use():
    from covip.tasks.catalogue import catalogue

    tasks = catalogue().tasks
    assert tasks, "no task YAML found"
    for info in tasks.values():
        for name in info.metrics:
            assert info.aggregation(name) is metrics.AGGREGATIONS[name], (info.name, name)
        if info.family == "caption":
            assert info.metrics == metrics.CAPTION_METRICS


def unjudged(sample_id: str, caption: str, blocked: str | None) -> CaptionRecord:
    """One positive and one negative concept, one question each."""
    questions = [Question(qid=f"c{j}.Q1", concept=j, question="Where?", options=OPTIONS, gold="A") for j in (0, 1)]
    return CaptionRecord(
        sample_id=sample_id,
        bucket=1,
        control="none",
        caption=caption,
        model_blocked=blocked,
        names=["Anna", "Bo"],
        positives=[0],
        questions=questions,
    )


def test_blocked_samples_are_not_judged_and_count_wrong_for_both():
    from covip.judges.rule import RuleJudge
    from covip.tasks.scoring.judging import judge_captions

    records = judge_captions(
        [unjudged("s0", "Anna at the beach.", None), unjudged("s1", "", "content_filter")], RuleJudge()
    )
    answered, blocked = records
    assert [v.pred for v in answered.verdicts] == ["A", "A"]  # the rule judge reads "beach" for both
    assert [v.pred for v in blocked.verdicts] == [BLOCKED] * 2  # an empty caption would get D, D
    assert blocked.judge == answered.judge  # the run's judge, recorded on every record
    assert metrics.aggregate("acc_pos", records) == 50.0  # no question leaves a denominator
    assert metrics.aggregate("acc_neg", records) == 0.0
    assert metrics.aggregate("model_blocked", records) == 1
    assert metrics.letter_distribution(records)[BLOCKED] == 2


def test_blocked_diagnostic_responses_score_zero_and_are_counted():
    from covip.judges.binary import RuleBinaryJudge
    from covip.tasks.scoring.judging import judge_lar

    def record(task: str, reference: str) -> DiagnosticRecord:
        return DiagnosticRecord(
            sample_id=task,
            task=task,
            mode="direct",
            control="none",
            preset="covip",
            response="",
            model_blocked="error: APITimeoutError",
            reference=reference,
        )

    lsd, itr = record("lsd", ""), record("itr", "SKS")  # an empty answer would even match an empty reference
    [lar] = judge_lar([record("lar", "playing the piano")], RuleBinaryJudge())
    assert lar.verdict == BLOCKED and lar.judge.backend == "rule"
    for r in (lsd, itr, lar):
        assert metrics.diagnostic_score(r) == 0.0
        assert metrics.sample_values(r)["model_blocked"] == 1


def test_records_refuse_inconsistent_facts():
    ok = S1.model_dump()
    with pytest.raises(ValidationError, match="verdicts must cover each question once"):
        CaptionRecord(**{**ok, "verdicts": ok["verdicts"][1:]})  # a record cannot drop the questions it got wrong
    with pytest.raises(ValidationError, match="out of range"):
        CaptionRecord(**{**ok, "positives": [99]})
    with pytest.raises(ValidationError, match="blocked"):
        CaptionRecord(**{**ok, "model_blocked": "content_filter"})  # blocked, yet judged as a caption
    with pytest.raises(ValidationError, match="Extra inputs"):
        CaptionRecord(**{**ok, "recognition_f1": 1.0})  # derived values are computed, never stored
    with pytest.raises(ValidationError, match="judge"):
        CaptionRecord(**{**ok, "judge": None})
