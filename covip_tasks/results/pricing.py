"""List-price cost estimates of API models, for the results of a run (`covip` block) and the adapters' logs.

It lives with the tasks, not the adapters, because the `lmms_eval` command (covip_tasks) writes
the estimate into the results and imports must point down (adapters import it from here).
"""

from __future__ import annotations

# USD per million (input, output) tokens, list prices when written (2026); reasoning tokens bill as output.
PRICES_PER_MTOK: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-5": (1.25, 10.00),
    "gemini-2.0-flash": (0.10, 0.40),
    "gemini-3-pro": (2.00, 12.00),
}


def estimated_cost_usd(model: str, input_tokens: int, output_tokens: int) -> float | None:
    """List-price estimate for `model` (longest matching prefix), or None for an unpriced model."""
    prefixes = [p for p in PRICES_PER_MTOK if model.startswith(p)]
    if not prefixes:
        return None
    price_in, price_out = PRICES_PER_MTOK[max(prefixes, key=len)]
    return (input_tokens * price_in + output_tokens * price_out) / 1e6
