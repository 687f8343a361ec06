"""What every CapEval-QAs judge consumes and produces, independent of any backend.

A judge sees only a caption and one multiple-choice question (options A-D, D meaning "cannot
be determined") and returns a letter, or `invalid` when its answer cannot be read. It never
sees images, dialogues or which concept is positive: that is the protocol of the paper
(docs/protocol.md §2), and it keeps judges interchangeable.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

LETTERS = ("A", "B", "C", "D")
INVALID = "invalid"  # the judge answered, but no letter could be read from its answer
ERROR = "error"  # the judge could not be asked (the call failed after its retries)


@dataclass(frozen=True)
class MCQA:
    """One question to answer from `caption` alone."""

    qid: str
    caption: str
    question: str
    options: dict[str, str]


@dataclass(frozen=True)
class JudgeSpec:
    """Provenance of a judge: enough to know which judge produced a verdict and to cache it."""

    backend: str
    model: str
    preset: str
    decoding: dict[str, Any] = field(default_factory=dict)
    prompt_hash: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def judge_id(self) -> str:
        """Short stable id of the whole spec, written on every verdict."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return f"{self.backend}:{self.model}:{self.preset}:{hashlib.sha256(blob).hexdigest()[:10]}"


@dataclass(frozen=True)
class Verdict:
    """A judge's answer to one MCQA: a letter A-D, `invalid` when unreadable, `error` when the call failed.

    `detail` says why for `error` (never a secret), so a failed question is visible, not dropped.
    """

    qid: str
    letter: str
    judge_id: str
    detail: str = ""


class Judge(Protocol):
    """A judge answers many questions in one call, so remote backends can run them concurrently."""

    spec: JudgeSpec

    def judge_many(self, items: list[MCQA]) -> list[Verdict]: ...


def format_question(item: MCQA) -> str:
    """The question block of the CapEval-QAs prompt: question, then one line per option."""
    lines = [f"Question: {item.question}"]
    lines += [f"{letter}. {item.options[letter]}" for letter in LETTERS]
    return "\n".join(lines)
