"""The reward functions, each separate, weighted by the config and logged by TRL as `rewards/<name>/mean|std`.

- `capeval`: CapEval-QAs through a `covip.judges` judge. All questions of every caption in the
  batch go to the judge in ONE `judge_many` call, so LLM backends answer them concurrently and
  from their cache (the reference asked 9 x #positives questions sequentially per rollout, with a
  stochastic judge: defect 21). `normalized` scale: mean(positive questions right) -
  mean(negative questions leaked), in [-1, 1] whatever the number of positives (defect 20);
  `paper` scale: right/3 - leaked/N_neg, and 0 for degenerate or truncated captions (whose penalty
  then makes the total exactly the reference's -1).
- `recognition`: the paper's r_vis, the set F1 2|H'∩H|/(|H'|+|H|) between the concepts the completion says are
  in the query image (H', the names a caption mentions, or the boxed indices of a recognition answer, §5.2
  `multi_vision`) and the true set H.
- `degeneration`: -1 for heavy repetition (the reference's sentence, 5-gram and chunk tests), and for an empty
  completion unless `empty_is_degenerate` is off (the `reference` preset: its code did not penalise one).
- `truncation`: -1 when a completion hit the length limit without ending.

A reward that does not apply to a row returns None, which TRL leaves out of sums and means.
Judge errors are never scored as wrong answers or zeros: by default they stop training with the
failed questions named; with `allow_errors` the failed questions are left out of that
completion's reward and counted in the log (`judge/errors`).
"""

from __future__ import annotations

import ast
import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from covip.judges.protocol import ERROR, INVALID, MCQA, Judge
from covip.tasks.scoring.metrics import recognition_f1
from covip.trainer.data import CAPTION, RECOGNITION

Reward = Callable[..., list[float | None]]


class JudgeFailed(RuntimeError):
    """Judge calls failed after their retries and the run does not allow judge errors."""


def completion_text(completion: Any) -> str:
    """The text of a TRL completion: a string, or `[{"role": "assistant", "content": str | parts}]`."""
    if isinstance(completion, str):
        return completion
    content = completion[-1]["content"]
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if part.get("type") == "text")


# --- degeneration (docs/protocol.md §5.2) ------------------------------------------------------------------
def is_degenerate(text: str, empty: bool = False) -> bool:
    """Heavy repetition: repeated sentences, repeated 5-grams, or repeated 10/20/30-word chunks; with `empty`, also
    a completion with no words (the paper counts it as degenerate; the reference code's tests do not)."""
    text = " ".join(text.lower().split())
    if empty and not text:
        return True
    sentences = [s.strip() for s in re.split(r"[.!?]+", text) if s.strip()]
    if len(sentences) >= 4 and 1 - len(set(sentences)) / len(sentences) >= 0.3:
        return True
    words = text.split()
    if len(words) >= 20:
        grams = [tuple(words[i : i + 5]) for i in range(len(words) - 4)]
        if 1 - len(set(grams)) / len(grams) >= 0.3:
            return True
    for window in (10, 20, 30):
        if len(words) < 2 * window:
            continue
        chunks = [tuple(words[i : i + window]) for i in range(len(words) - window + 1)]
        counts = Counter(chunks)
        if sum(counts[c] > 1 for c in chunks) / len(chunks) >= 0.2:
            return True
    return False


def is_truncated(ids: Sequence[int], max_length: int, eos_ids: set[int]) -> bool:
    return len(ids) >= max_length and (not ids or ids[-1] not in eos_ids)


# --- recognition ----------------------------------------------------------------------------------------------
_BOXED = re.compile(r"\\boxed\{(.*?)\}")


def boxed_indices(text: str) -> set[int] | None:
    """Index set of the first `\\boxed{...}` (a scalar is a singleton); None if there is none or it is unreadable."""
    match = _BOXED.search(text)
    if not match:
        return None
    try:
        value = ast.literal_eval(match.group(1).strip() or "[]")
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    values = value if isinstance(value, (list, tuple, set)) else [value]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return None
    return set(values)


def set_f1(predicted: set[int], gold: set[int]) -> float:
    hits = len(predicted & gold)
    if not hits:
        return 0.0
    precision, recall = hits / len(predicted), hits / len(gold)
    return 2 * precision * recall / (precision + recall)


def recognition_reward(completions: list, task: list[str], sample: list[str], **_: Any) -> list[float | None]:
    """Caption: F1 of the positives' names mentioned. Recognition: F1 of the boxed indices (unreadable: 0)."""
    out: list[float | None] = []
    for completion, kind, blob in zip(completions, task, sample, strict=True):
        record = json.loads(blob)
        text = completion_text(completion)
        if kind == CAPTION:
            names = [c["name"] for c in record["concepts"]]
            out.append(recognition_f1(text, names, record["positives"]))
        elif kind == RECOGNITION:
            predicted = boxed_indices(text)
            out.append(0.0 if predicted is None else set_f1(predicted, set(record["positives"])))
        else:
            raise ValueError(f"unknown task {kind!r} in a training row")
    return out


recognition_reward.__name__ = "recognition"


def degeneration_reward_for(empty_is_degenerate: bool) -> Reward:
    """-1 for a degenerate completion (repetition; an empty one too when `empty_is_degenerate`)."""

    def degeneration(completions: list, **_: Any) -> list[float | None]:
        return [-1.0 if is_degenerate(completion_text(c), empty_is_degenerate) else 0.0 for c in completions]

    return degeneration


def truncation_reward_for(max_length: int, eos_ids: set[int]) -> Reward:
    """-1 for a completion that used all `max_length` tokens without an end-of-sequence token."""

    def truncation(completion_ids: list[list[int]], **_: Any) -> list[float | None]:
        return [-1.0 if is_truncated(ids, max_length, eos_ids) else 0.0 for ids in completion_ids]

    return truncation


# --- CapEval-QAs ----------------------------------------------------------------------------------------------
class CapEvalReward:
    """CapEval-QAs reward over a whole batch with one `judge_many` call; see the module docstring."""

    __name__ = "capeval"

    def __init__(
        self,
        judge: Judge,
        scale: str = "normalized",
        allow_errors: bool = False,
        max_length: int | None = None,
        eos_ids: set[int] | None = None,
        empty_is_degenerate: bool = False,
    ) -> None:
        if scale not in ("normalized", "paper"):
            raise ValueError(f"scale must be 'normalized' or 'paper', got {scale!r}")
        self.judge, self.scale, self.allow_errors = judge, scale, allow_errors
        self.max_length, self.eos_ids = max_length, eos_ids or set()
        self.empty_is_degenerate = empty_is_degenerate

    def _skipped(self, text: str, ids: Sequence[int] | None) -> bool:
        """Paper scale: degenerate or truncated captions are not judged (their penalty alone gives -1)."""
        if self.scale != "paper":
            return False
        truncated = ids is not None and self.max_length is not None and is_truncated(ids, self.max_length, self.eos_ids)
        return truncated or is_degenerate(text, self.empty_is_degenerate)

    def __call__(
        self,
        completions: list,
        task: list[str],
        sample: list[str],
        completion_ids: list[list[int]] | None = None,
        log_metric: Callable[[str, float], None] | None = None,
        **_: Any,
    ) -> list[float | None]:
        items: list[MCQA] = []
        owners: list[tuple[int, bool, str]] = []  # (row, positive question?, gold letter)
        judged_rows = set()
        for row, (completion, kind, blob) in enumerate(zip(completions, task, sample, strict=True)):
            if kind != CAPTION:
                continue
            text = completion_text(completion)
            if self._skipped(text, completion_ids[row] if completion_ids is not None else None):
                continue
            judged_rows.add(row)
            record = json.loads(blob)
            positives = set(record["positives"])
            for j, concept in enumerate(record["concepts"]):
                for qa in concept["qas"]:
                    items.append(
                        MCQA(f"{row}/{record['sample_id']}/c{j}.{qa['id']}", text, qa["question"], qa["options"])
                    )
                    owners.append((row, j in positives, qa["answer"]))
        verdicts = self.judge.judge_many(items) if items else []
        if len(verdicts) != len(items):
            raise RuntimeError(f"judge {self.judge.spec.judge_id} returned {len(verdicts)} verdicts for {len(items)}")
        errors = [v for v in verdicts if v.letter == ERROR]
        if errors and not self.allow_errors:
            raise JudgeFailed(
                f"{len(errors)} of {len(items)} judge calls failed after retries (first: {errors[0].qid}: "
                f"{errors[0].detail or 'no detail'}); fix the judge or set judge_allow_errors: true to leave failed "
                "questions out of the reward and count them"
            )
        per_row: dict[int, dict[str, list[bool]]] = {row: {"pos": [], "neg": []} for row in judged_rows}
        asked: dict[int, dict[str, int]] = {row: {"pos": 0, "neg": 0} for row in judged_rows}
        for (row, positive, gold), verdict in zip(owners, verdicts, strict=True):
            asked[row]["pos" if positive else "neg"] += 1
            if verdict.letter == ERROR:
                continue  # left out, counted below; an invalid answer is simply wrong
            if positive:
                per_row[row]["pos"].append(verdict.letter == gold)
            else:
                per_row[row]["neg"].append(verdict.letter != "D")
        if log_metric is not None and items:
            log_metric("judge/errors", float(len(errors)))
            log_metric("judge/invalid", float(sum(v.letter == INVALID for v in verdicts)))
            pos = [x for r in per_row.values() for x in r["pos"]]
            neg = [x for r in per_row.values() for x in r["neg"]]
            if pos:
                log_metric("judge/acc_pos", sum(pos) / len(pos))
            if neg:
                log_metric("judge/acc_neg", 1 - sum(neg) / len(neg))
        out: list[float | None] = []
        for row, kind in enumerate(task):
            if kind != CAPTION:
                out.append(None)
            elif row not in judged_rows:
                out.append(0.0)  # paper scale, degenerate/truncated: the penalty carries the -1
            else:
                out.append(self._score(per_row[row]["pos"], per_row[row]["neg"], asked[row]))
        return out

    def _score(self, right: list[bool], leaked: list[bool], asked: dict[str, int]) -> float | None:
        if (asked["pos"] and not right) or (asked["neg"] and not leaked):
            return None  # every question of one kind failed: no honest score for this completion
        if self.scale == "paper":
            return sum(right) / 3 - (sum(leaked) / len(leaked) if leaked else 0.0)
        return (sum(right) / len(right) if right else 0.0) - (sum(leaked) / len(leaked) if leaked else 0.0)
