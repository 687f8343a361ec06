"""CapEval-QAs metrics and recognition F1, as pure functions over judged per-sample records.

A judged record is the dict the caption task logs per sample (see caption_task.py):
`{"sample_id", "bucket", "caption", "names", "positives", "verdicts": [{"qid", "concept",
"positive", "gold", "pred"}], ...}`. Keeping the arithmetic here, apart from lmms-eval, lets
the judging stage and the leaderboard recompute exactly the numbers a run reported.

Acc+ (positive questions answered with the correct letter) and Acc− (negative questions
answered D) are micro-averaged over questions, as the paper does; macro variants average
per-sample accuracies. An `invalid` or `error` judge answer is wrong for both and is counted,
and so is every question of a sample whose model answer was blocked or failed (`blocked`: it
has no caption to judge, and an empty one would "leak nothing" and pass every negative question).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from covip.judges.protocol import ERROR, INVALID, LETTERS

RECORD_KEY = "covip_record"  # where a sample log line keeps the judged record
BLOCKED = "blocked"  # the prediction of every question whose sample has no model answer (`model_blocked`)
PREDICTIONS = (*LETTERS, INVALID, ERROR, BLOCKED)  # every value a verdict's `pred` can take


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


def error_count(records: Iterable[dict]) -> int:
    """Questions whose judge call failed after its retries: wrong for Acc+ and Acc-, and reported."""
    return sum(v["pred"] == ERROR for r in records for v in r["verdicts"])


def letter_distribution(records: Iterable[dict]) -> dict[str, int]:
    """How often the judge answered each letter (and invalid / error / blocked): a check for letter bias."""
    counts = dict.fromkeys(PREDICTIONS, 0)
    for record in records:
        for verdict in record["verdicts"]:
            counts[verdict["pred"]] = counts.get(verdict["pred"], 0) + 1
    return counts


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


def blocked_count(records: Iterable[dict]) -> int:
    """Samples whose model call was refused (safety block) or failed with errors allowed: scored wrong, and counted."""
    return sum(r.get("model_blocked") is not None for r in records)


# Every per-task caption metric, by name: the lmms-eval aggregation and `covip-judge` both use this table.
CAPTION_METRICS: dict[str, Callable[[list[dict]], float]] = {
    "acc_pos": lambda rs: micro_accuracy(rs, positive=True),
    "acc_neg": lambda rs: micro_accuracy(rs, positive=False),
    "acc_pos_macro": lambda rs: macro_accuracy(rs, positive=True),
    "acc_neg_macro": lambda rs: macro_accuracy(rs, positive=False),
    "recognition_f1": lambda rs: mean(r["recognition_f1"] for r in rs),
    "judge_invalid": invalid_count,
    "judge_error": error_count,
    "model_blocked": blocked_count,
}


# --- Diagnostics (covip_protocol.md §4) -------------------------------------------------------------
# `covip` preset: answers normalised (lower-case, punctuation and articles stripped) and read from
# `\boxed{}` or the paper's `//boxed{}`; triggers matched as case-insensitive whole words.
# `paper` preset: the reference's raw token-set F1 over `//boxed{}` and case-sensitive substring.
_BOXED = re.compile(r"(?:\\|//)boxed\{([^{}]*)\}")
_PAPER_BOXED = re.compile(r"//boxed\{([^{}]*)\}")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = re.compile(r"[^\w\s]")


def extract_answer(response: str, preset: str = "covip") -> str:
    """The final answer: the last boxed value, else (covip) the whole response / (paper) text after the last //."""
    found = (_BOXED if preset == "covip" else _PAPER_BOXED).findall(response)
    if found:
        return found[-1]
    return response if preset == "covip" else response.split("//")[-1]


def normalise_answer(text: str) -> str:
    text = _PUNCT.sub(" ", text.lower().replace("\u2019", "'"))
    return " ".join(_ARTICLES.sub(" ", text).split())


def token_f1(prediction: str, gold: str, preset: str = "covip") -> float:
    """Token F1 of a predicted answer against the gold one (both empty: 1.0)."""
    if preset == "paper":
        pred, ref = set(prediction.lower().split()), set(gold.lower().split())
        common = len(pred & ref)
    else:
        pred_list, ref_list = normalise_answer(prediction).split(), normalise_answer(gold).split()
        common = sum((Counter(pred_list) & Counter(ref_list)).values())
        pred, ref = pred_list, ref_list
    if not pred and not ref:
        return 1.0
    if not common:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def trigger_said(response: str, trigger: str, preset: str = "covip") -> bool:
    if preset == "paper":
        return trigger in response
    return re.search(rf"(?<!\w){re.escape(trigger)}(?!\w)", response, re.IGNORECASE) is not None


def _verdicts(records: list[dict], label: str) -> int:
    return sum(r.get("verdict") == label for r in records)


# Metric name -> function of a diagnostic task's judged records (each with a percent `score`);
# shared by the tasks' aggregation and the leaderboard's recomputation.
DIAGNOSTIC_METRICS: dict[str, dict[str, Callable[[list[dict]], float]]] = {
    "lsd": {
        "lsd_f1": lambda rs: mean(r["score"] for r in rs),
        "lsd_exact": lambda rs: sum(r["score"] == 100.0 for r in rs),
        "lsd_partial": lambda rs: sum(0.0 < r["score"] < 100.0 for r in rs),
        "lsd_zero": lambda rs: sum(r["score"] == 0.0 for r in rs),
        "model_blocked": blocked_count,
    },
    "lar": {
        "lar_acc": lambda rs: mean(r["score"] for r in rs),
        "judge_invalid": lambda rs: _verdicts(rs, "invalid"),
        "judge_error": lambda rs: _verdicts(rs, "error"),
        "model_blocked": blocked_count,
    },
    "itr": {"itr_recall": lambda rs: mean(r["score"] for r in rs), "model_blocked": blocked_count},
}
