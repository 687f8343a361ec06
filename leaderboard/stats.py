"""Statistics the leaderboard adds on top of `covip.tasks.scoring.metrics`: the recognition-vs-retrieval slope
and the interval of a mean per-sample score.

The slope follows the paper's Figure 5: per model, ordinary least squares of each sample's Acc+
(share of its positive-concept questions answered correctly, 0..1) on its recognition F1 (0..1).
A steep slope means that naming the right concept turns into recalling its memories. Samples are
the units, so the interval needs no further clustering.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from scipy import stats

from covip.tasks.scoring import metrics


@dataclass(frozen=True)
class Slope:
    """OLS fit of y on x; `slope` is None with a `reason` when the fit is undefined."""

    n: int
    slope: float | None = None
    intercept: float | None = None
    r: float | None = None
    stderr: float | None = None
    ci95: tuple[float, float] | None = None
    mean_x: float | None = None
    reason: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def sample_acc_pos(record: dict) -> float | None:
    """One caption sample's Acc+ as a fraction; None when it has no positive question."""
    relevant = [v for v in record["verdicts"] if v["positive"]]
    return sum(metrics.verdict_correct(v) for v in relevant) / len(relevant) if relevant else None


def regression_points(records: Sequence[dict]) -> list[tuple[float, float]]:
    """(recognition F1, Acc+) per caption sample that has positive questions."""
    points = [(r["recognition_f1"], sample_acc_pos(r)) for r in records]
    return [(x, y) for x, y in points if y is not None]


def fit_slope(points: Sequence[tuple[float, float]]) -> Slope:
    """`scipy.stats.linregress` with a 95% t interval on the slope (n - 2 degrees of freedom)."""
    n = len(points)
    if n < 3:
        return Slope(n=n, reason=f"{n} samples: at least 3 are needed for a slope with an interval")
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mean_x = sum(xs) / n
    if max(xs) == min(xs):
        return Slope(n=n, mean_x=mean_x, reason=f"recognition F1 is {xs[0]:.2f} for every sample: slope undefined")
    fit = stats.linregress(xs, ys)
    half = stats.t.ppf(0.975, n - 2) * fit.stderr
    r = float(fit.rvalue) if math.isfinite(fit.rvalue) else None
    return Slope(
        n=n,
        slope=float(fit.slope),
        intercept=float(fit.intercept),
        r=r,
        stderr=float(fit.stderr),
        ci95=(float(fit.slope - half), float(fit.slope + half)),
        mean_x=mean_x,
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
