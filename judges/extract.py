"""Reading a judge's answer: a letter for CapEval-QAs, a label for the binary judge.

Layered, from the most to the least explicit form, so that a well-formatted answer is never
misread and a sloppy one is still read when unambiguous: `\\boxed{X}`, then `Answer: X`, then a
lone letter. What none of these finds is `None` (the caller's `invalid`), never a guess; an
ambiguous box ("A or D") is unreadable rather than credited to both, unlike the reference's
substring test (docs/protocol.md §8, defects 2-3).
"""

from __future__ import annotations

import re

_BOXED = re.compile(r"\\boxed\s*\{\s*(?:\\text\s*\{\s*)?([^{}]*?)\s*\}?\s*\}")
_ANSWER = re.compile(
    r"answer[*_]*\s*(?:is)?\s*[:\-]?[*_]*\s*[*_`(\[]*\s*([A-D])(?:\s*[*_`)\].:]*\s*$|[.):]\s)",
    re.IGNORECASE | re.MULTILINE,
)
_LONE = re.compile(r"^[\s*_`(\[]*([A-D])[\s*_`)\].:]*$")
_OPTION_PREFIX = re.compile(r"^\(?([A-D])(?:\)|\.|:)(?:\s|$)")
_LABEL = re.compile(r"\b(not\s+correct|incorrect|correct|wrong)\b", re.IGNORECASE)


def extract_letter(text: str) -> str | None:
    """The judge's letter A-D, or None when no layer reads exactly one letter."""
    boxes = _BOXED.findall(text)
    if boxes:
        return _single_letter(boxes[-1])
    answers = _ANSWER.findall(text)
    if answers:
        return answers[-1].upper()
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if lines:
        lone = _LONE.match(lines[-1])
        if lone:
            return lone.group(1)
    return None


def _single_letter(boxed: str) -> str | None:
    """A box holds one letter, possibly followed by its option text ("B. Last summer"); anything else is unreadable."""
    boxed = boxed.strip()
    if boxed in ("A", "B", "C", "D"):
        return boxed
    match = _OPTION_PREFIX.match(boxed)
    return match.group(1) if match else None


def extract_label(text: str) -> str | None:
    """`correct` or `wrong` from the final non-empty line, as whole words; None when absent or both.

    Whole words only: "incorrect" (or "not correct") is `wrong`, never `correct` (the
    reference's substring test counts it as correct, docs/protocol.md §4).
    """
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return None
    found = {"correct" if m.lower() == "correct" else "wrong" for m in _LABEL.findall(lines[-1])}
    return found.pop() if len(found) == 1 else None
