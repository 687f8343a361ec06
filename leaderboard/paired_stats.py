"""Paired statistics: is side B better than side A on the same samples, or is the difference noise?

Two runs (or two judges of one run's captions) scored on the same samples are paired: a hard sample is hard for both,
so the difference of their scores varies much less than either score.

- `differences`: B − A in Acc+ and Acc− (micro over questions, percent points) and in recognition F1 (mean over
  samples), each with a 95% interval from a paired bootstrap clustered by sample. `scipy.stats.bootstrap(paired=True)`
  resamples the shared samples with replacement, the same draw for both sides, and one vector-valued statistic
  computes every difference from that one draw. The interval is the percentile interval: BCa's acceleration is
  undefined when every resample gives the same difference (identical runs, or runs that differ on one sample), where
  the percentile interval is, correctly, that one value.
- `mcnemar_exact`: of the questions one side got right and the other wrong (the discordant pairs), a two-sided exact
  binomial test that either side is equally likely to be the right one (`scipy.stats.binomtest`, p = 0.5). With no
  discordant question there is no evidence of a difference: p = 1. McNemar treats questions as independent pairs;
  the questions of one caption are not, so its p-value is optimistic when a few captions carry the difference. The
  bootstrap interval, clustered by sample, is the measure of uncertainty; the test is the familiar cross-check.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

RESAMPLES = 10_000
CONFIDENCE = 0.95
METRICS = ("acc_pos", "acc_neg", "recognition_f1")


@dataclass(frozen=True)
class SampleScore:
    """One sample's scores on one side: right answers and questions, positive and negative, and recognition F1."""

    pos_correct: int
    pos_total: int
    neg_correct: int
    neg_total: int
    f1: float


@dataclass(frozen=True)
class Difference:
    """A metric on both sides and B − A with its 95% interval (None: undefined, e.g. no such questions)."""

    a: float | None
    b: float | None
    diff: float | None
    ci95: tuple[float, float] | None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class McNemar:
    """Questions paired, those right for A only and for B only, and the exact two-sided p-value."""

    questions: int
    a_only: int
    b_only: int
    p: float

    def to_dict(self) -> dict:
        return asdict(self)


def _value(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _columns(a: Sequence[SampleScore], b: Sequence[SampleScore]) -> np.ndarray:
    """Per sample: A's and B's positive right answers, the positive questions, the same for negative, both F1s."""
    rows = []
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if (x.pos_total, x.neg_total) != (y.pos_total, y.neg_total):
            raise ValueError(f"sample {i}: the two sides have different questions, so they are not paired")
        rows.append((x.pos_correct, y.pos_correct, x.pos_total, x.neg_correct, y.neg_correct, x.neg_total, x.f1, y.f1))
    return np.array(rows, dtype=float).reshape(-1, 8).T


def _scores(columns: np.ndarray, axis: int = -1) -> np.ndarray:
    """(A, B) of Acc+, Acc− (percent) and recognition F1 from the per-sample columns (any leading resample axes)."""
    pa, pb, pt, na, nb, nt, fa, fb = (c.sum(axis=axis) for c in columns)
    n = columns.shape[axis]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.stack([100 * pa / pt, 100 * pb / pt, 100 * na / nt, 100 * nb / nt, fa / n, fb / n])


def differences(
    a: Sequence[SampleScore],
    b: Sequence[SampleScore],
    metrics: Sequence[str] = METRICS,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> dict[str, Difference]:
    """B − A of each metric over the paired samples, with its 95% paired-bootstrap interval clustered by sample."""
    columns = _columns(a, b)
    if not columns.shape[1]:
        return {m: Difference(None, None, None, None) for m in metrics}
    point = _scores(columns)
    index = [METRICS.index(m) for m in metrics]
    intervals: list[tuple[float, float] | None] = [None] * len(metrics)
    if columns.shape[1] >= 2:

        def statistic(*cols: np.ndarray, axis: int = -1) -> np.ndarray:
            s = _scores(np.stack(cols), axis=axis)
            return np.stack([s[2 * i + 1] - s[2 * i] for i in index])

        with warnings.catch_warnings():
            # a resample without such questions makes the interval NaN, reported below as no interval; scipy's
            # warning about it speaks of BCa, which is not used here
            warnings.simplefilter("ignore", stats.DegenerateDataWarning)
            result = stats.bootstrap(
                tuple(columns),
                statistic,
                paired=True,
                vectorized=True,
                n_resamples=resamples,
                confidence_level=CONFIDENCE,
                method="percentile",
                batch=min(resamples, 2_000),  # memory O(batch x samples)
                rng=np.random.default_rng(seed),
            )
        low, high = np.atleast_1d(result.confidence_interval.low), np.atleast_1d(result.confidence_interval.high)
        intervals = [
            (float(lo), float(hi)) if math.isfinite(lo) and math.isfinite(hi) else None
            for lo, hi in zip(low, high, strict=True)
        ]
    out = {}
    for metric, i, interval in zip(metrics, index, intervals, strict=True):
        va, vb = _value(point[2 * i]), _value(point[2 * i + 1])
        diff = vb - va if va is not None and vb is not None else None
        out[metric] = Difference(va, vb, diff, interval if diff is not None else None)
    return out


def mcnemar_exact(a_right: Sequence[bool], b_right: Sequence[bool]) -> McNemar:
    """Exact McNemar test on paired right/wrong verdicts: a binomial test on the discordant pairs."""
    pairs = list(zip(a_right, b_right, strict=True))
    a_only = sum(x and not y for x, y in pairs)
    b_only = sum(y and not x for x, y in pairs)
    p = stats.binomtest(a_only, a_only + b_only, 0.5).pvalue if a_only + b_only else 1.0
    return McNemar(len(pairs), a_only, b_only, float(p))
