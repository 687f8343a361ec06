"""CapEval-QAs metrics and recognition F1, as pure functions over judged per-sample records.

A judged record is the dict the caption task logs per sample (see caption_task.py):
`{"sample_id", "bucket", "caption", "names", "positives", "verdicts": [{"qid", "concept",
"positive", "gold", "pred"}], ...}`. Keeping the arithmetic here, apart from lmms-eval, lets
the judging stage and the leaderboard recompute exactly the numbers a run reported.

Acc+ (positive questions answered with the correct letter) and Acc− (negative questions
answered D) are micro-averaged over questions, as the paper does; macro variants average
per-sample accuracies. An `invalid` judge answer is wrong for both and is counted.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

from covip.judges.protocol import INVALID

RECORD_KEY = "covip_record"  # where a sample log line keeps the judged record


def verdict_correct(verdict: dict) -> bool:
    """Positive question: the gold letter. Negative question: D, i.e. nothing leaked."""
    return verdict["pred"] == (verdict["gold"] if verdict["positive"] else "D")


def _counts(record: dict, positive: bool) -> tuple[int, int]:
    relevant = [v for v in record["verdicts"] if v["positive"] == positive]
    return sum(verdict_correct(v) for v in relevant), len(relevant)


def micro_accuracy(records: Iterable[dict], positive: bool) -> float:
    """Percent of all positive (or negative) questions answered correctly, pooled over samples."""
    correct = total = 0
    for record in records:
        c, t = _counts(record, positive)
        correct, total = correct + c, total + t
    return 100.0 * correct / total if total else math.nan


def macro_accuracy(records: Iterable[dict], positive: bool) -> float:
    """Mean over samples of the per-sample percent accuracy (samples without such questions skipped)."""
    per_sample = [100.0 * c / t for c, t in (_counts(r, positive) for r in records) if t]
    return sum(per_sample) / len(per_sample) if per_sample else math.nan


def micro_ci95(records: Sequence[dict], positive: bool) -> tuple[float, float]:
    """95% interval of the micro accuracy, clustered by sample (ratio estimator, normal approx.).

    Questions of one sample share a caption, so they are not independent; treating them as
    independent would make intervals too narrow.
    """
    pairs = [_counts(r, positive) for r in records]
    pairs = [(c, t) for c, t in pairs if t]
    n = len(pairs)
    total = sum(t for _, t in pairs)
    if n < 2 or not total:
        return (math.nan, math.nan)
    p = sum(c for c, _ in pairs) / total
    var = n / (n - 1) * sum((c - p * t) ** 2 for c, t in pairs) / total**2
    half = 1.959964 * math.sqrt(var)
    return (100.0 * max(0.0, p - half), 100.0 * min(1.0, p + half))


def invalid_count(records: Iterable[dict]) -> int:
    return sum(v["pred"] == INVALID for r in records for v in r["verdicts"])


def mentioned(caption: str, names: Sequence[str]) -> set[int]:
    """Indices of the names the caption mentions as whole words (case-sensitive: names are proper nouns)."""
    return {i for i, name in enumerate(names) if name and re.search(rf"(?<!\w){re.escape(name)}(?!\w)", caption)}


def recognition_f1(caption: str, names: Sequence[str], positives: Sequence[int]) -> float:
    """F1 of the positive concepts' names mentioned in the caption against all context names mentioned."""
    said = mentioned(caption, names)
    gold = set(positives)
    hits = len(said & gold)
    if not hits:
        return 0.0
    precision, recall = hits / len(said), hits / len(gold)
    return 2 * precision * recall / (precision + recall)


def mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values) if values else math.nan
