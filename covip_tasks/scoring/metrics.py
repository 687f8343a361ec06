"""CoViP's metrics: per-sample values computed from a typed record, and aggregations that are pure functions of them.

Two layers, so that lmms-eval, `covip-judge` and the leaderboard compute the same numbers the same way:
- `sample_values(record)`: every metric's value for one sample (a number, or for Acc+/Acc− a small dict with the
  sample's `correct` and `total` questions, its percent `score` and its `sample_id`). The tasks return these from
  `process_results`, so lmms-eval logs them per sample, gathers them across processes and fills in its stderr.
- `AGGREGATIONS`: metric name -> function of the list of per-sample values. The task YAMLs name the same
  functions (`mean` is lmms-eval's own, with the same arithmetic as `mean` here), and `aggregation_of` resolves a
  YAML's aggregation so that a recomputation uses exactly what the run used.

CapEval-QAs (docs/protocol.md §2): Acc+ is the share of positive-concept questions answered with the gold letter,
Acc− the share of negative-concept questions answered D (nothing leaked), micro-averaged over questions as the
paper does; the `_macro` variants average per-sample percentages. An `invalid`, `error` or `blocked` verdict is
wrong for both, and counted. Recognition F1: the positive concepts' names mentioned in the caption against all
context names mentioned. Diagnostics (§4): LSD token F1 of the extracted answer, LAR the binary verdict, ITR whether
the trigger was said; each a per-sample score in percent. RePIC (§7.2): per-sample slot counts (correct, miss,
slots) under the `repic` preset and under the corrected name matching (`covip.tasks.repic.scoring`), pooled into
precision, recall and F1 over the task's samples as RePIC pools them over a file.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from covip.tasks.repic.scoring import Score, name_outcomes, repic_outcomes
from covip.tasks.results.records import (
    ERROR,
    INVALID,
    PREDICTIONS,
    CaptionRecord,
    DiagnosticRecord,
    Question,
    Record,
    RepicRecord,
    Verdict,
)

# --- CapEval-QAs ------------------------------------------------------------------------------------------------


def verdict_correct(record: CaptionRecord, question: Question, verdict: Verdict) -> bool:
    """Positive question: the gold letter. Negative question: D, i.e. nothing leaked."""
    return verdict.pred == (question.gold if record.is_positive(question) else "D")


def question_counts(record: CaptionRecord, positive: bool) -> tuple[int, int]:
    """(correct, total) over the record's positive (or negative) questions."""
    relevant = [(q, v) for q, v in record.judged() if record.is_positive(q) == positive]
    return sum(verdict_correct(record, q, v) for q, v in relevant), len(relevant)


def mentioned(text: str, names: Sequence[str]) -> set[int]:
    """Indices of the names the text mentions as whole words (case-sensitive: names are proper nouns)."""
    return {i for i, name in enumerate(names) if name and re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text)}


def recognition_f1(text: str, names: Sequence[str], positives: Iterable[int]) -> float:
    """F1 of the positive concepts' names mentioned in the text against all context names mentioned."""
    said, gold = mentioned(text, names), set(positives)
    hits = len(said & gold)
    if not hits:
        return 0.0
    precision, recall = hits / len(said), hits / len(gold)
    return 2 * precision * recall / (precision + recall)


def _accuracy_value(record: CaptionRecord, positive: bool) -> dict[str, Any]:
    correct, total = question_counts(record, positive)
    value: dict[str, Any] = {"sample_id": record.sample_id, "correct": correct, "total": total}
    if total:  # lmms-eval's CLT stderr reads `score`; a sample without such questions has none
        value["score"] = 100.0 * correct / total
    return value


def _count(record: CaptionRecord, pred: str) -> int:
    return sum(v.pred == pred for v in record.verdicts)


CAPTION_METRICS = (
    "acc_pos",
    "acc_neg",
    "acc_pos_macro",
    "acc_neg_macro",
    "recognition_f1",
    "judge_invalid",
    "judge_error",
    "model_blocked",
)


def caption_values(record: CaptionRecord) -> dict[str, Any]:
    """Every caption metric's per-sample value (the record must be judged)."""
    pos, neg = _accuracy_value(record, True), _accuracy_value(record, False)
    return {
        "acc_pos": pos,
        "acc_neg": neg,
        "acc_pos_macro": pos,
        "acc_neg_macro": neg,
        "recognition_f1": recognition_f1(record.caption, record.names, record.positives),
        "judge_invalid": _count(record, INVALID),
        "judge_error": _count(record, ERROR),
        "model_blocked": int(record.model_blocked is not None),
    }


# --- Diagnostics --------------------------------------------------------------------------------------------------
# `covip` preset: answers normalised (lower-case, punctuation and articles stripped) and read from `\boxed{}` or the
# paper's `//boxed{}`; triggers matched as case-insensitive whole words. `paper` preset: the reference's raw
# token-set F1 over `//boxed{}` and a case-sensitive substring test.
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


def diagnostic_score(record: DiagnosticRecord) -> float:
    """The sample's score in percent; a blocked answer scores 0 (LAR: the record must be judged)."""
    if record.model_blocked is not None:
        return 0.0
    if record.task == "lsd":
        return 100.0 * token_f1(extract_answer(record.response, record.preset), record.reference, record.preset)
    if record.task == "itr":
        return 100.0 if trigger_said(record.response, record.reference, record.preset) else 0.0
    if record.verdict is None:
        raise ValueError(f"LAR sample {record.sample_id}: not judged")
    return 100.0 if record.verdict == "correct" else 0.0


def diagnostic_values(record: DiagnosticRecord) -> dict[str, Any]:
    """Every metric of the record's task, per sample."""
    score = diagnostic_score(record)
    blocked = {"model_blocked": int(record.model_blocked is not None)}
    if record.task == "lsd":
        return {
            "lsd_f1": score,
            "lsd_exact": int(score == 100.0),
            "lsd_partial": int(0.0 < score < 100.0),
            "lsd_zero": int(score == 0.0),
            **blocked,
        }
    if record.task == "lar":
        return {
            "lar_acc": score,
            "judge_invalid": int(record.verdict == INVALID),
            "judge_error": int(record.verdict == ERROR),
            **blocked,
        }
    return {"itr_recall": score, **blocked}


# --- RePIC --------------------------------------------------------------------------------------------------------


def repic_values(record: RepicRecord) -> dict[str, Any]:
    """Slot counts under the `repic` preset (`precision`, `recall`, `f1`) and the corrected metric (`name_*`); the
    recall values carry the sample's percent `score` and its query `image` for lmms-eval's CLT stderr, clustered by
    image (RePIC asks about several concept combinations of one photo). `retrieval_recall`: the share of
    ground-truth concepts the model was shown (100 when retrieval is skipped)."""
    values: dict[str, Any] = {}
    for prefix, outcomes in (
        ("", repic_outcomes(record.gt, record.caption, record.pool, record.bucket)),
        ("name_", name_outcomes(record.gt, record.caption, record.pool, record.bucket)),
    ):
        score = Score.of(outcomes)
        counts = {"image": record.image, "correct": score.correct, "miss": score.miss, "slots": score.slots}
        values[f"{prefix}precision"] = counts
        values[f"{prefix}recall"] = {**counts, "score": score.recall}
        values[f"{prefix}f1"] = counts
    shown = sum(key in record.shown for key in record.gt)
    values["retrieval_recall"] = {
        "image": record.image,
        "correct": shown,
        "total": len(record.gt),
        "score": 100.0 * shown / len(record.gt),
    }
    values["model_blocked"] = int(record.model_blocked is not None)
    return values


def sample_values(record: Record) -> dict[str, Any]:
    if isinstance(record, RepicRecord):
        return repic_values(record)
    return caption_values(record) if isinstance(record, CaptionRecord) else diagnostic_values(record)


# --- Aggregations: pure functions of per-sample values ---------------------------------------------------------


def micro(values: list[dict[str, Any]]) -> float:
    """Percent of all questions answered correctly, pooled over samples (the paper's Acc+ / Acc−)."""
    total = sum(v["total"] for v in values)
    return 100.0 * sum(v["correct"] for v in values) / total if total else math.nan


def macro(values: list[dict[str, Any]]) -> float:
    """Mean of the per-sample percentages (samples without such questions left out)."""
    return mean([v["score"] for v in values if "score" in v])


def mean(values: Iterable[float]) -> float:
    """The plain mean (lmms-eval's `mean` aggregation does the same arithmetic: sum, then divide)."""
    values = list(values)
    return sum(values) / len(values) if values else math.nan


def total(values: list[int]) -> int:
    """A count over samples (judge failures, blocked answers, exact LSD answers...)."""
    return sum(values)


def _pooled(values: list[dict[str, Any]]) -> Score:
    return Score(sum(v["correct"] for v in values), sum(v["miss"] for v in values), sum(v["slots"] for v in values))


def pooled_precision(values: list[dict[str, Any]]) -> float:
    """RePIC's precision over every slot of the task: correct / (correct + miss), in percent (0 when none)."""
    return _pooled(values).precision


def pooled_recall(values: list[dict[str, Any]]) -> float:
    """RePIC's recall over every slot of the task: correct / slots, in percent."""
    return _pooled(values).recall


def pooled_f1(values: list[dict[str, Any]]) -> float:
    """RePIC's F1 of the pooled precision and recall, in percent."""
    return _pooled(values).f1


AGGREGATIONS: dict[str, Callable[[list[Any]], float]] = {
    "acc_pos": micro,
    "acc_neg": micro,
    "acc_pos_macro": macro,
    "acc_neg_macro": macro,
    "recognition_f1": mean,
    "lsd_f1": mean,
    "lar_acc": mean,
    "itr_recall": mean,
    "judge_invalid": total,
    "judge_error": total,
    "model_blocked": total,
    "lsd_exact": total,
    "lsd_partial": total,
    "lsd_zero": total,
    "precision": pooled_precision,
    "recall": pooled_recall,
    "f1": pooled_f1,
    "name_precision": pooled_precision,
    "name_recall": pooled_recall,
    "name_f1": pooled_f1,
    "retrieval_recall": micro,
}


def aggregate(name: str, records: Sequence[Record]) -> float:
    """Metric `name` over records, exactly as the task's aggregation computes it from their per-sample values."""
    return AGGREGATIONS[name]([sample_values(r)[name] for r in records])


def aggregation_of(declared: str) -> Callable[[list[Any]], float]:
    """The function a task YAML's `aggregation` names: lmms-eval's `mean`, or `!function covip...metrics.<name>`."""
    name = declared.rsplit(".", 1)[-1]
    functions = {"mean": mean, "micro": micro, "macro": macro, "total": total}
    functions |= {f.__name__: f for f in (pooled_precision, pooled_recall, pooled_f1)}
    if name not in functions:
        raise ValueError(f"unknown aggregation {declared!r}; CoViP tasks use {sorted(functions)}")
    return functions[name]


def micro_ci95(records: Sequence[CaptionRecord], positive: bool) -> tuple[float, float]:
    """95% interval of the micro accuracy, clustered by sample (ratio estimator, normal approximation).

    Questions of one sample share a caption, so they are not independent; treating them as independent would make
    intervals too narrow.
    """
    pairs = [question_counts(r, positive) for r in records]
    pairs = [(c, t) for c, t in pairs if t]
    n = len(pairs)
    total_q = sum(t for _, t in pairs)
    if n < 2 or not total_q:
        return (math.nan, math.nan)
    p = sum(c for c, _ in pairs) / total_q
    var = n / (n - 1) * sum((c - p * t) ** 2 for c, t in pairs) / total_q**2
    half = 1.959964 * math.sqrt(var)
    return (100.0 * max(0.0, p - half), 100.0 * min(1.0, p + half))


def letter_distribution(records: Iterable[CaptionRecord]) -> dict[str, int]:
    """How often the judge answered each letter (and invalid / error / blocked): a check for letter bias."""
    counts = dict.fromkeys(PREDICTIONS, 0)
    for record in records:
        for verdict in record.verdicts:
            counts[verdict.pred] += 1
    return counts
