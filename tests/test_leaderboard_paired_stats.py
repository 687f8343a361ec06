"""The comparison statistics on hand-made tables whose answers are known: paired differences with their bootstrap
intervals, the exact McNemar test, Cohen's and Fleiss' kappa."""

from __future__ import annotations

import math
import random

import pytest

from covip.leaderboard.agreement import cohen_kappa, fleiss_kappa, share_agreeing
from covip.leaderboard.paired_stats import SampleScore, differences, mcnemar_exact


def scores(*rows: tuple[int, int, int, int, float]) -> list[SampleScore]:
    return [SampleScore(*row) for row in rows]


def test_identical_sides_differ_by_zero_with_a_zero_interval_and_p_1() -> None:
    side = scores((2, 3, 5, 6, 0.5), (0, 3, 6, 6, 1.0), (3, 3, 1, 3, 0.0))
    diffs = differences(side, side, resamples=1000)
    for metric, d in diffs.items():
        assert d.diff == 0 and d.ci95 == (0.0, 0.0), metric
    assert diffs["acc_pos"].a == pytest.approx(100 * 5 / 9) and diffs["acc_neg"].a == pytest.approx(100 * 12 / 15)
    rights = [True, False, True, True, False]
    assert mcnemar_exact(rights, rights).to_dict() == {"questions": 5, "a_only": 0, "b_only": 0, "p": 1.0}


def test_difference_is_micro_and_its_interval_is_the_bootstrap_percentiles_over_samples() -> None:
    # Sample 1: A 1/3, B 3/3 right; sample 2: both 2/3. Micro: A 3/6, B 5/6, so B - A = 33.3 points. A resample of
    # the two samples is {1,1} (difference 66.7), {1,2} (33.3) or {2,2} (0), with chances 1/4, 1/2, 1/4: the
    # 2.5th and 97.5th percentiles are 0 and 66.7.
    a = scores((1, 3, 0, 0, 0.0), (2, 3, 0, 0, 0.5))
    b = scores((3, 3, 0, 0, 1.0), (2, 3, 0, 0, 0.5))
    diffs = differences(a, b, resamples=4000, seed=1)
    pos = diffs["acc_pos"]
    assert (pos.a, pos.b, pos.diff) == pytest.approx((50.0, 100 * 5 / 6, 100 / 3))
    assert pos.ci95 == pytest.approx((0.0, 200 / 3))
    f1 = diffs["recognition_f1"]
    assert f1.diff == pytest.approx(0.5) and f1.ci95 == pytest.approx((0.0, 1.0))
    # no negative question anywhere: Acc- is undefined on both sides, and so is its difference
    assert diffs["acc_neg"].to_dict() == {"a": None, "b": None, "diff": None, "ci95": None}


def test_all_wrong_against_all_right_is_minus_100_for_sure() -> None:
    a = scores(*[(3, 3, 6, 6, 1.0)] * 5)
    b = scores(*[(0, 3, 6, 6, 1.0)] * 5)
    pos = differences(a, b, resamples=500)["acc_pos"]
    assert pos.diff == -100 and pos.ci95 == (-100.0, -100.0)


def test_interval_matches_the_normal_approximation_on_a_large_sample() -> None:
    # 400 samples of one positive question; B is A with a fifth of the verdicts flipped. For a paired difference of
    # means the 95% interval is about +-1.96 sd(d) / sqrt(n).
    rng = random.Random(3)
    a_right = [rng.random() < 0.5 for _ in range(400)]
    b_right = [(not x) if rng.random() < 0.2 else x for x in a_right]
    a = scores(*[(int(x), 1, 0, 0, 0.0) for x in a_right])
    b = scores(*[(int(y), 1, 0, 0, 0.0) for y in b_right])
    pos = differences(a, b, resamples=5000, seed=0)["acc_pos"]
    d = [100 * (int(y) - int(x)) for x, y in zip(a_right, b_right, strict=True)]
    mean = sum(d) / len(d)
    sd = math.sqrt(sum((v - mean) ** 2 for v in d) / (len(d) - 1))
    half = 1.959964 * sd / math.sqrt(len(d))
    assert pos.diff == pytest.approx(mean)
    assert pos.ci95[0] == pytest.approx(mean - half, abs=0.15 * half)
    assert pos.ci95[1] == pytest.approx(mean + half, abs=0.15 * half)
    assert differences(a, b, resamples=5000, seed=0)["acc_pos"].ci95 == pos.ci95  # seeded: the same interval again


def test_one_sample_has_no_interval_and_unpaired_sides_are_refused() -> None:
    one = differences(scores((1, 3, 2, 3, 0.5)), scores((2, 3, 2, 3, 0.5)))
    assert one["acc_pos"].diff == pytest.approx(100 / 3) and one["acc_pos"].ci95 is None
    with pytest.raises(ValueError, match="different questions"):
        differences(scores((1, 3, 2, 3, 0.5)), scores((1, 2, 2, 3, 0.5)))


def test_exact_mcnemar_is_the_binomial_test_on_discordant_pairs() -> None:
    # 5 discordant pairs, all for B: p = 2 * 0.5**5
    a = [True] * 10 + [False] * 5
    b = [True] * 10 + [True] * 5
    assert mcnemar_exact(a, b).to_dict() == {"questions": 15, "a_only": 0, "b_only": 5, "p": pytest.approx(0.0625)}
    # 1 for A, 9 for B: p = 2 * (C(10,0) + C(10,1)) / 2**10
    a = [True] + [False] * 9 + [True, False]
    b = [False] + [True] * 9 + [True, False]
    result = mcnemar_exact(a, b)
    assert (result.a_only, result.b_only) == (1, 9) and result.p == pytest.approx(22 / 1024)
    # balanced discordance is no evidence at all
    assert mcnemar_exact([True, False], [False, True]).p == pytest.approx(1.0)


def test_cohen_kappa_on_a_two_by_two_table() -> None:
    # 50 items: both yes 20, A yes B no 5, A no B yes 10, both no 15. Observed 0.7; chance 0.5*0.6 + 0.5*0.4 = 0.5.
    a = ["yes"] * 20 + ["yes"] * 5 + ["no"] * 10 + ["no"] * 15
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert share_agreeing(a, b) == pytest.approx(0.7)
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(["A", "B", "C"], ["D", "D", "D"]) == pytest.approx(0.0)  # never agree, no chance agreement
    assert cohen_kappa(["D"] * 4, ["D"] * 4) is None  # one category: chance agreement is 1, kappa undefined
    assert share_agreeing([], []) is None


FLEISS_1971 = [  # Fleiss' worked example as usually reproduced: 10 items, 14 raters, 5 categories; kappa 0.210
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def test_fleiss_kappa_on_the_published_example_and_edge_cases() -> None:
    assert fleiss_kappa(FLEISS_1971) == pytest.approx(0.20993, abs=5e-5)
    assert fleiss_kappa(FLEISS_1971 + [[0, 1, 0, 0, 0]]) == fleiss_kappa(FLEISS_1971)  # one rating: no agreement info
    assert fleiss_kappa([[3, 0, 0], [0, 3, 0], [0, 0, 2]]) == pytest.approx(1.0)  # unanimous, several categories
    assert fleiss_kappa([[2, 0], [2, 0]]) is None  # one category: undefined
    assert fleiss_kappa([[1, 0, 0]]) is None
    # raters split every item evenly between two categories: agreement below chance
    assert fleiss_kappa([[1, 1], [1, 1], [1, 1]]) == pytest.approx(-1.0)
