"""List prices of the API models a run or a judge may call, and what a number of tokens costs at them.

The table lives with the judges, the lowest layer, because both the API judges (their `max_cost_usd` budget) and the
model adapters and run results (`covip.tasks.results.pricing`) need it. Prices change: the table says when it was
written (`PRICES_DATE`), and every estimate prints that date. A model is priced only under its own name, or that
name with a snapshot suffix (`gpt-4o-2024-08-06`, `gemini-2.0-flash-001`): a longer name (`gpt-5-pro`,
`gpt-5.4`) is another model with other prices, and stays unpriced rather than being guessed from a shorter one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# USD per million tokens, (input, output): the providers' published list prices (OpenAI API pricing; Gemini API
# pricing, prompts up to 200k tokens). Reasoning / thinking tokens bill as output tokens.
PRICES_DATE = "2026-06"
PRICES_PER_MTOK: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "o3": (2.00, 8.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    "gemini-2.0-flash": (0.10, 0.40),
    "gemini-2.5-flash": (0.30, 2.50),
    "gemini-2.5-flash-lite": (0.10, 0.40),
    "gemini-2.5-pro": (1.25, 10.00),
    "gemini-3-pro": (2.00, 12.00),
    "gemini-3-pro-preview": (2.00, 12.00),
}
# OpenAI's Batch API bills input and output at half the list price.
BATCH_FACTOR = 0.5
# A model name with an optional snapshot suffix: a date, a 3-digit version or `latest`.
NAMED = re.compile(r"(?P<name>.+?)(?:-(?:\d{4}-\d{2}-\d{2}|\d{3}|latest))?")


@dataclass(frozen=True)
class Price:
    """USD per million input and output tokens."""

    input: float
    output: float

    def cost(self, input_tokens: float, output_tokens: float) -> float:
        return (input_tokens * self.input + output_tokens * self.output) / 1e6

    def batch(self) -> Price:
        return Price(self.input * BATCH_FACTOR, self.output * BATCH_FACTOR)


def listed_name(model: str) -> str:
    """`model` without its snapshot suffix: the name the price table (and other per-model tables) use."""
    found = NAMED.fullmatch(model)
    return found["name"] if found else model


def price_of(model: str) -> Price | None:
    """The list price of `model` (its name, or its name plus a snapshot suffix), or None when unpriced."""
    prices = PRICES_PER_MTOK.get(listed_name(model))
    return Price(*prices) if prices else None
