"""A hard spending limit for API calls (`max_cost_usd`), shared by the API judges and the API model adapters.

Before a call is sent, its worst case is reserved: its prompt tokens (counted by the caller) plus its whole output
budget (`max_tokens`, `max_new_tokens` + reasoning headroom), at list price. A call whose reservation would take
spent + reserved past the limit is not sent, and nothing after it is: the run stops before the limit is exceeded,
whatever is in flight. When an answer arrives, its reservation is replaced by its real cost (the usage the provider
reported) or kept when the provider reported none; a call that failed is billed nothing (providers do not bill
failed requests). The caller keeps every answer it paid for (its cache) and raises `BudgetExceeded`, so that a rerun
pays only for what was never answered.

Text tokens are counted here as one token per 4 characters: the providers' own rule of thumb for English text. The
exact OpenAI tokenizer (tiktoken) downloads its vocabulary on first use, which an offline machine cannot, and
Gemini's is served only by its API; image tokens follow each provider's published rule (model_adapters).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

CHARS_PER_TOKEN = 4
MESSAGE_TOKENS = 4  # a chat message's role and separators (OpenAI's chat format spends 3-4 per message)


def text_tokens(text: str) -> int:
    """Approximate tokens of `text`: one per 4 characters (rounded up)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


class BudgetExceeded(RuntimeError):
    """A call was not sent because it could take the spending past `max_cost_usd`."""


@dataclass(frozen=True)
class Usage:
    """Tokens a provider billed for one call (output includes reasoning / thinking)."""

    input_tokens: int
    output_tokens: int


class PricedText(str):
    """An answer's text that also says what the call billed (`usage`, None when the provider did not say).

    Backends return it where plain answer text is expected, so caching and parsing are unchanged; the runner reads
    `usage` to settle the call's reservation against the budget.
    """

    usage: Usage | None

    def __new__(cls, text: str, usage: Usage | None) -> PricedText:
        obj = super().__new__(cls, text)
        obj.usage = usage
        return obj


class Budget:
    """At most `limit_usd` spent by calls sent through it (thread-safe; see the module docstring)."""

    def __init__(self, limit_usd: float, owner: str) -> None:
        if not limit_usd > 0:
            raise ValueError(f"{owner}: max_cost_usd must be a positive number of US dollars, got {limit_usd!r}")
        self.limit = float(limit_usd)
        self.owner = owner
        self.spent = 0.0
        self.reserved = 0.0
        self.paid_calls = 0
        self.stopped = False
        self._lock = threading.Lock()

    def reserve(self, worst_usd: float) -> None:
        """Reserve a call's worst case, or raise `BudgetExceeded` (and refuse every later call) when it does not fit."""
        with self._lock:
            if not self.stopped and self.spent + self.reserved + worst_usd <= self.limit:
                self.reserved += worst_usd
                return
            self.stopped = True
        raise BudgetExceeded(f"not sent: {self.owner} would exceed max_cost_usd=${self.limit:g}")

    def settle(self, worst_usd: float, actual_usd: float | None) -> None:
        """A call answered: its real cost (its worst case when unknown) replaces its reservation."""
        with self._lock:
            self.reserved -= worst_usd
            self.spent += worst_usd if actual_usd is None else actual_usd
            self.paid_calls += 1

    def release(self, worst_usd: float) -> None:
        """A call failed: it is billed nothing."""
        with self._lock:
            self.reserved -= worst_usd

    def summary(self, not_sent: int, total: int, kept: str) -> str:
        """What a stop reports: the limit, what was spent, what was left unsent and where the paid answers are."""
        return (
            f"{self.owner}: stopped before exceeding max_cost_usd=${self.limit:g}: spent ${self.spent:.4f} on "
            f"{self.paid_calls} call(s) by this process; {not_sent} of {total} not sent. Every answer paid for is "
            f"kept ({kept}): rerun the same command to continue without paying for them again (raise max_cost_usd "
            f"to allow more)"
        )
