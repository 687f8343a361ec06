"""Choose a judge backend by name. Unbuilt backends fail loudly instead of pretending."""

from __future__ import annotations

from typing import Any

from covip.judges.protocol import Judge
from covip.judges.rule import RuleJudge

PLANNED = ("openai", "gemini", "hf")


def make_judge(backend: str = "rule", **options: Any) -> Judge:
    """Build the judge named `backend` with backend-specific `options`."""
    if backend == "rule":
        if options:
            raise ValueError(f"the rule judge takes no options, got {sorted(options)}")
        return RuleJudge()
    if backend in PLANNED:
        raise NotImplementedError(
            f"judge backend {backend!r} is not implemented yet (planned: issue 'Judges for real servers'); "
            "use backend 'rule'"
        )
    raise ValueError(f"unknown judge backend {backend!r}; known: rule (planned: {', '.join(PLANNED)})")
