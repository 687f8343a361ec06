"""Statistics the leaderboard adds on top of `covip.tasks.scoring.metrics`: the ranking score, the
recognition-vs-retrieval slope with a verdict on whether the data can support it, and the interval of a mean
per-sample score.

The ranking score is the harmonic mean of Acc+ and Acc−. A model cannot win it by leaking: reciting every memory
gives Acc+ 100 but Acc− 0, and the harmonic mean of 100 and 0 is 0 (an arithmetic mean would give it 50, the same
as a model that is right half the time on both). It is high only when both are: it never exceeds twice the
smaller of the two.

The slope follows the paper's Figure 5: per model, ordinary least squares of each sample's Acc+ (share of its
positive-concept questions answered correctly, 0..1) on its recognition F1 (0..1). Samples are the units, so the
interval needs no further clustering. A fit is computed whenever it is defined, but called reliable only when the
recognition values are spread enough for a line to mean something (see `fit_slope`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from scipy import stats

MIN_SLOPE_SAMPLES = 10  # fewer samples: the t interval is too wide to say anything
MIN_DISTINCT_F1 = 3  # two distinct values: the line just joins the two group means
MIN_OFF_MODE = 5  # samples away from the most common F1: fewer, and a handful of points decide the slope


def combined_score(acc_pos: float, acc_neg: float) -> float:
    """The ranking score: harmonic mean of Acc+ and Acc− (percent); 0 when either is 0, NaN when either is."""
    if not (math.isfinite(acc_pos) and math.isfinite(acc_neg)):
        return math.nan
    return 2 * acc_pos * acc_neg / (acc_pos + acc_neg) if acc_pos + acc_neg else 0.0


@dataclass(frozen=True)
class Slope:
    """OLS fit of y on x. `slope` is None when the fit is undefined; `reliable` says whether the data can support
    it, and `reason` why not."""

    n: int
    slope: float | None = None
    intercept: float | None = None
    r: float | None = None
    stderr: float | None = None
    ci95: tuple[float, float] | None = None
    mean_x: float | None = None
    reliable: bool = False
    reason: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def fit_slope(points: Sequence[tuple[float, float]]) -> Slope:
    """`scipy.stats.linregress` with a 95% t interval on the slope (n − 2 degrees of freedom), and its reliability.

    Unreliable: fewer than `MIN_SLOPE_SAMPLES` samples, fewer than `MIN_DISTINCT_F1` distinct recognition values,
    fewer than `MIN_OFF_MODE` samples away from the most common value, or points exactly on the line (a zero-width
    interval that only says the data were too few to scatter).
    """
    n = len(points)
    if n < 3:
        return Slope(n=n, reason=f"{n} samples: at least 3 are needed for a slope with an interval")
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mean_x = sum(xs) / n
    counts = Counter(xs)
    if len(counts) == 1:
        return Slope(n=n, mean_x=mean_x, reason=f"recognition F1 is {xs[0]:.2f} for every sample: slope undefined")
    fit = stats.linregress(xs, ys)
    half = stats.t.ppf(0.975, n - 2) * fit.stderr
    mode, at_mode = counts.most_common(1)[0]
    reasons = []
    if n < MIN_SLOPE_SAMPLES:
        reasons.append(f"{n} samples: at least {MIN_SLOPE_SAMPLES} are needed")
    if len(counts) < MIN_DISTINCT_F1:
        reasons.append(f"only {len(counts)} distinct recognition-F1 values: the line joins their means")
    if n - at_mode < MIN_OFF_MODE:
        reasons.append(f"only {n - at_mode} samples away from the most common recognition F1 ({mode:.2f})")
    if fit.stderr == 0:
        reasons.append("every point lies on the line: a zero-width interval")
    return Slope(
        n=n,
        slope=float(fit.slope),
        intercept=float(fit.intercept),
        r=float(fit.rvalue) if math.isfinite(fit.rvalue) else None,
        stderr=float(fit.stderr),
        ci95=(float(fit.slope - half), float(fit.slope + half)),
        mean_x=mean_x,
        reliable=not reasons,
        reason="; ".join(reasons),
    )


def mean_ci95(values: Sequence[float]) -> tuple[float, tuple[float, float] | None]:
    """Mean and 95% t interval of per-sample scores (one score per sample, so no clustering needed)."""
    n = len(values)
    if not n:
        return math.nan, None
    mean = sum(values) / n
    if n < 2:
        return mean, None
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    return mean, (mean - half, mean + half)
