"""Metric arithmetic on hand-computed cases."""

import math

import pytest

from covip.tasks.scoring import metrics


def v(positive: bool, gold: str, pred: str) -> dict:
    return {"qid": "q", "concept": 0, "positive": positive, "gold": gold, "pred": pred}


# sample 1: 3 positive questions (2 right), 6 negatives (5 answered D, 1 leaked)
S1 = {
    "verdicts": [v(True, "A", "A"), v(True, "B", "B"), v(True, "C", "D")]
    + [v(False, "A", "D")] * 5
    + [v(False, "B", "B")],
    "recognition_f1": 1.0,
}
# sample 2: 6 positive questions (3 right, 1 invalid), 12 negatives all D
S2 = {
    "verdicts": [v(True, "A", "A")] * 3
    + [v(True, "A", "B")] * 2
    + [v(True, "A", "invalid")]
    + [v(False, "C", "D")] * 12,
    "recognition_f1": 0.5,
}


def test_micro_pools_questions_over_samples():
    assert metrics.micro_accuracy([S1, S2], positive=True) == pytest.approx(100 * 5 / 9)
    assert metrics.micro_accuracy([S1, S2], positive=False) == pytest.approx(100 * 17 / 18)


def test_macro_averages_per_sample_accuracies():
    assert metrics.macro_accuracy([S1, S2], positive=True) == pytest.approx((100 * 2 / 3 + 100 * 3 / 6) / 2)
    assert metrics.macro_accuracy([S1, S2], positive=False) == pytest.approx((100 * 5 / 6 + 100.0) / 2)


def test_negative_question_correct_only_when_d():
    assert metrics.verdict_correct(v(False, "A", "D"))
    assert not metrics.verdict_correct(v(False, "A", "A"))
    assert not metrics.verdict_correct(v(True, "A", "D"))


def test_invalid_is_counted_and_wrong():
    assert metrics.invalid_count([S1, S2]) == 1
    assert not metrics.verdict_correct(v(True, "A", "invalid"))
    assert not metrics.verdict_correct(v(False, "A", "invalid"))


def test_empty_is_nan_not_zero():
    assert math.isnan(metrics.micro_accuracy([], positive=True))
    assert math.isnan(metrics.macro_accuracy([], positive=False))


def test_clustered_interval_contains_the_estimate_and_needs_two_samples():
    lo, hi = metrics.micro_ci95([S1, S2] * 5, positive=True)
    p = metrics.micro_accuracy([S1, S2] * 5, positive=True)
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


def caption_record(sample_id: str, caption: str, blocked: str | None) -> dict:
    """An unjudged caption record: one positive and one negative concept, one question each."""
    options = {"A": "the beach", "B": "the park", "C": "the lake", "D": "The answer cannot be determined"}
    questions = [
        {"qid": f"c{j}.Q1", "concept": j, "positive": j == 0, "question": "Where?", "options": options, "gold": "A"}
        for j in (0, 1)
    ]
    return {"sample_id": sample_id, "caption": caption, "model_blocked": blocked, "questions": questions}


def test_blocked_samples_are_not_judged_and_count_wrong_for_both():
    from covip.judges.rule import RuleJudge
    from covip.tasks.scoring.judging import judge_records

    records = [caption_record("s0", "Anna at the beach.", None), caption_record("s1", "", "content_filter")]
    judge_records(records, RuleJudge())
    answered, blocked = records
    assert [v["pred"] for v in answered["verdicts"]] == ["A", "A"]  # the rule judge reads "beach" for both
    assert [v["pred"] for v in blocked["verdicts"]] == [metrics.BLOCKED] * 2  # an empty caption would get D, D
    assert blocked["judge"] == answered["judge"]  # the run's judge, recorded on every record
    assert metrics.CAPTION_METRICS["acc_pos"](records) == 50.0  # no question leaves a denominator
    assert metrics.CAPTION_METRICS["acc_neg"](records) == 0.0
    assert metrics.CAPTION_METRICS["model_blocked"](records) == 1
    assert metrics.letter_distribution(records)[metrics.BLOCKED] == 2


def test_blocked_diagnostic_responses_score_zero_and_are_counted(monkeypatch):
    from covip.model_adapters.chat import BlockedText
    from covip.tasks.lmms.diagnostic import diag_process_results, judge_lar_records

    monkeypatch.delenv("COVIP_JUDGE", raising=False)
    monkeypatch.delenv("COVIP_JUDGE_OPTIONS", raising=False)
    common = {"mode": "direct", "control": "none", "preset": "covip", "data_location": "x", "manifest_sha256": "0"}
    docs = {
        "lsd": {**common, "task": "lsd", "answer": ""},  # an empty answer would even match an empty reference
        "itr": {**common, "task": "itr", "trigger": "SKS"},
        "lar": {**common, "task": "lar", "last_action": "playing the piano"},
    }
    records = []
    for task, doc in docs.items():
        record = diag_process_results({**doc, "sample_id": task}, [BlockedText("error: APITimeoutError")])
        records.append(record["covip_record"])
    judge_lar_records(records[2:])
    assert [r["score"] for r in records] == [0.0, 0.0, 0.0]
    assert records[2]["verdict"] == metrics.BLOCKED and records[2]["judge"]["backend"] == "rule"
    for record in records:
        assert metrics.DIAGNOSTIC_METRICS[record["task"]]["model_blocked"]([record]) == 1
