"""List-price cost of a finished run's API tokens, for its results (`read_run(DIR).estimated_cost_usd()`).

The price table itself (with its date) is `covip.judges.pricing`: the API judges need it for their budgets, and
imports point down (tasks -> judges).
"""

from __future__ import annotations

from covip.judges.pricing import PRICES_DATE, price_of

__all__ = ["PRICES_DATE", "estimated_cost_usd"]


def estimated_cost_usd(model: str, input_tokens: int, output_tokens: int) -> float | None:
    """List-price estimate for `model`, or None for an unpriced model (local, self-hosted or not in the table)."""
    price = price_of(model)
    return None if price is None else price.cost(input_tokens, output_tokens)
