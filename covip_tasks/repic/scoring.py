"""RePIC's name precision / recall / F1 (docs/protocol.md §7.2), and a corrected variant beside it.

`repic` preset, reproducing RePIC's `evaluation/eval_*_concept.py` exactly, per bucket (concepts per image):
1. Clean-up: remove the literal `</s>`; lower-case the caption at 1 and 4 concepts, not at 2 (RePIC's 2-concept
   script matches case-sensitively; the other two lower-case the caption and the keys).
2. Tokens: split on whitespace, strip `.,!?;:()[]{}"'-` from both ends of each token, drop empty tokens; a set.
3. Candidate pool: every ground-truth key of every row scored together (a file, or a task's samples).
4. A pool concept `<key>` is present when `<key>` or `key` equals a token (keys lower-cased at 1 and 4).
5. Each ground-truth slot is *correct* when its own key is present; else a *miss* when a pool concept that is not a
   ground truth of that row is present; else *none*.
6. Pooled over all slots: precision = correct / (correct + miss), recall = correct / slots, F1 = 2PR / (P + R),
   each 0 on a zero denominator, in percent.

So a key only ever matches one token: a multi-word key (`<black widow>`) never matches, and a caption that writes
the display name it was shown (`Iron Man`) never matches the key `<ironman>`; a possessive (`Anya's`) does not match
either. The corrected metric keeps rules 3, 5 and 6 and replaces the matching: a concept is present when the caption
mentions the display name the model was shown (the database's `name`), as a whole phrase, case-insensitively, any
whitespace between its words. Each caption must hold as many keys as its bucket (RePIC's 1-concept script reads only
the first key of a row, so a row with more would be scored differently).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

BUCKETS = (1, 2, 4)
CASE_FOLDED_BUCKETS = (1, 4)
EDGE_PUNCTUATION = ".,!?;:()[]{}\"'-"
END_OF_SEQUENCE = "</s>"

Outcome = Literal["correct", "miss", "none"]
Row = tuple[Sequence[str], str]  # (ground-truth keys, caption)


def _fold(bucket: int, text: str) -> str:
    if bucket not in BUCKETS:
        raise ValueError(f"RePIC buckets are {BUCKETS} concepts per image, got {bucket!r}")
    return text.lower() if bucket in CASE_FOLDED_BUCKETS else text


def unbracket(key: str) -> str:
    """`<Anya>` -> `Anya`; a key without both angle brackets is left as it is."""
    return key[1:-1] if key.startswith("<") and key.endswith(">") else key


def caption_tokens(caption: str, bucket: int) -> set[str]:
    """Rules 1 and 2: the caption's set of tokens."""
    words = _fold(bucket, caption.replace(END_OF_SEQUENCE, "")).split()
    return {token for token in (w.strip(EDGE_PUNCTUATION) for w in words) if token}


def _resolve(found: Iterable[bool], wrong_name_said: bool) -> list[Outcome]:
    return ["correct" if hit else "miss" if wrong_name_said else "none" for hit in found]


def _check_slots(gt: Sequence[str], bucket: int) -> None:
    if len(gt) != bucket:
        raise ValueError(f"a {bucket}-concept row must hold {bucket} ground-truth key(s), got {list(gt)}")


def repic_outcomes(gt: Sequence[str], caption: str, pool: Iterable[str], bucket: int) -> list[Outcome]:
    """Rules 1-5 for one row: each ground-truth slot's outcome, matching keys as single tokens."""
    _check_slots(gt, bucket)
    tokens = caption_tokens(caption, bucket)

    def form(key: str) -> str:  # RePIC compares concepts by their folded, bracket-less form
        return unbracket(_fold(bucket, key))

    pool = list(pool)
    present = {form(k) for k in pool if _fold(bucket, k) in tokens or form(k) in tokens}
    others = {form(k) for k in pool if k not in gt}
    return _resolve((form(g) in present for g in gt), bool(present & others))


def name_pattern(name: str) -> re.Pattern[str]:
    """A display name as a whole phrase, case-insensitive, any whitespace between its words. Not inside a word, nor
    joined to one by a hyphen (`T` is not said by `t-shirt`) or after an apostrophe (nor by `don't`); a possessive
    (`Anya's`) and a dash (`-Zed-`) leave it said."""
    words = name.split()
    if not words:
        raise ValueError(f"a display name must hold a word, got {name!r}")
    phrase = r"\s+".join(map(re.escape, words))
    return re.compile(r"(?<!\w)(?<!\w[-'\u2019])" + phrase + r"(?!\w)(?!-\w)", re.IGNORECASE)


def names_said(caption: str, names: Mapping[str, str]) -> set[str]:
    """The keys whose display name the caption mentions."""
    text = caption.replace(END_OF_SEQUENCE, "")
    return {key for key, name in names.items() if name_pattern(name).search(text)}


def name_outcomes(gt: Sequence[str], caption: str, names: Mapping[str, str], bucket: int) -> list[Outcome]:
    """The corrected metric for one row; `names` maps every pool key to the display name the model was shown."""
    _check_slots(gt, bucket)
    missing = [g for g in gt if g not in names]
    if missing:
        raise ValueError(f"no display name for ground-truth key(s) {missing}")
    said = names_said(caption, names)
    return _resolve((g in said for g in gt), any(k not in gt for k in said))


@dataclass(frozen=True)
class Score:
    """Pooled slot counts and the precision, recall and F1 they give (rule 6), in percent."""

    correct: int
    miss: int
    slots: int

    @classmethod
    def of(cls, outcomes: Iterable[Outcome]) -> Score:
        outcomes = list(outcomes)
        return cls(outcomes.count("correct"), outcomes.count("miss"), len(outcomes))

    def _fractions(self) -> tuple[float, float, float]:
        said = self.correct + self.miss
        precision = self.correct / said if said else 0.0
        recall = self.correct / self.slots if self.slots else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        return precision, recall, f1

    @property
    def precision(self) -> float:
        return 100 * self._fractions()[0]

    @property
    def recall(self) -> float:
        return 100 * self._fractions()[1]

    @property
    def f1(self) -> float:
        return 100 * self._fractions()[2]


def pool_of(rows: Iterable[Row]) -> list[str]:
    """Rule 3: every ground-truth key of the rows, in first-seen order."""
    return list(dict.fromkeys(k for gt, _ in rows for k in gt))


def repic_score(rows: Sequence[Row], bucket: int) -> Score:
    """The `repic` preset over rows scored together (one RePIC caption file)."""
    pool = pool_of(rows)
    return Score.of(o for gt, caption in rows for o in repic_outcomes(gt, caption, pool, bucket))


def name_score(rows: Sequence[Row], names: Mapping[str, str], bucket: int) -> Score:
    """The corrected metric over the same rows; `names` maps keys to display names (it may hold more than the pool)."""
    pool = pool_of(rows)
    unknown = [k for k in pool if k not in names]
    if unknown:
        raise ValueError(f"no display name for key(s) {unknown}")
    shown = {k: names[k] for k in pool}
    return Score.of(o for gt, caption in rows for o in name_outcomes(gt, caption, shown, bucket))
