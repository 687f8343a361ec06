"""Binary judges (Correct / Wrong) for the LAR diagnostic: does a response carry a reference fact?

The reference's LAR judge counts a verdict as correct when "correct" is a substring of it, so
"incorrect" scores as correct (docs/protocol.md §4, §8 defect 15). Here labels are read as
whole words (extract.py), and a verdict is `correct`, `wrong`, `invalid` (unreadable) or
`error` (the call failed), each counted by the caller; none is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from covip.judges.protocol import JudgeSpec
from covip.judges.rule import RULES_VERSION, content_tokens, tokens

LABELS = ("correct", "wrong", "invalid", "error")


@dataclass(frozen=True)
class BinaryQuestion:
    """A response to check against `reference`, the ground-truth fact (e.g. the last action)."""

    qid: str
    response: str
    reference: str


@dataclass(frozen=True)
class BinaryVerdict:
    qid: str
    label: str  # "correct" | "wrong" | "invalid" | "error"
    judge_id: str


class BinaryJudge(Protocol):
    """Judges many questions in one call, so remote backends can run them concurrently."""

    spec: JudgeSpec

    def judge_binary_many(self, items: list[BinaryQuestion]) -> list[BinaryVerdict]: ...


class RuleBinaryJudge:
    """Offline default: correct when the response contains every content word of the reference.

    Deterministic and free; like the MCQA rule judge it does not credit paraphrases.
    A reference without content words cannot be checked and raises, naming the question.
    """

    def __init__(self) -> None:
        self.spec = JudgeSpec(backend="rule", model=RULES_VERSION, preset="strict")

    def label(self, item: BinaryQuestion) -> str:
        needed = content_tokens(item.reference)
        if not needed:
            raise ValueError(f"binary question {item.qid}: reference {item.reference!r} has no content words")
        return "correct" if needed <= set(tokens(item.response)) else "wrong"

    def judge_binary_many(self, items: list[BinaryQuestion]) -> list[BinaryVerdict]:
        judge_id = self.spec.judge_id
        return [BinaryVerdict(item.qid, self.label(item), judge_id) for item in items]
