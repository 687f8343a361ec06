"""Cost estimates and the budget guard: published token rules on their documented examples, prices, reservations."""

from __future__ import annotations

import threading

import pytest

from covip.judges.budget import Budget, BudgetExceeded, text_tokens
from covip.judges.pricing import PRICES_DATE, price_of
from covip.model_adapters.cost_estimate import gemini_image_tokens, message_tokens, openai_image_tokens


@pytest.mark.parametrize(
    ("model", "size", "detail", "tokens"),
    [
        ("gpt-4o", (1024, 1024), "high", 765),  # OpenAI's examples: 768x768 after scaling, 4 tiles
        ("gpt-4o", (2048, 4096), "high", 1105),  # 1024x2048, then 768x1536: 6 tiles
        ("gpt-4o", (4096, 8192), "low", 85),  # low detail: the base cost, whatever the size
        ("gpt-4o-2024-08-06", (256, 256), "auto", 255),  # a small image is never enlarged: one tile
        ("gpt-4o-mini", (512, 384), "high", 2833 + 5667),
        ("gpt-5", (1024, 1024), "high", 70 + 4 * 140),
        ("gpt-4.1-mini", (1024, 1024), "high", 1659),  # 32 x 32 patches x 1.62, rounded up
        ("gpt-4.1-mini", (1800, 2400), "low", 2353),  # scaled to 1452 patches (under the 1536 cap), x 1.62
        ("a-local-model", (1024, 1024), "high", 765),  # not in the tables: gpt-4o's rule
    ],
)
def test_openai_image_tokens(model, size, detail, tokens):
    assert openai_image_tokens(model, *size, detail) == tokens


def test_gemini_image_tokens():
    assert gemini_image_tokens("gemini-2.0-flash", 384, 384) == 258
    assert gemini_image_tokens("gemini-2.5-flash", 512, 384) == 258  # one 768x768 tile
    assert gemini_image_tokens("gemini-2.5-flash", 1024, 1024) == 4 * 258
    assert gemini_image_tokens("gemini-3-pro-preview", 256, 256) == 1120


def test_message_tokens_count_texts_and_images():
    from PIL import Image

    messages = [
        {"role": "system", "content": "x" * 10},
        {
            "role": "user",
            "content": [{"type": "text", "text": "y" * 9}, {"type": "image", "image": Image.new("RGB", (5, 7))}],
        },
    ]
    assert message_tokens(messages, lambda w, h: w * h) == (4 + 3) + (4 + 3 + 35)
    assert text_tokens("") == 0 and text_tokens("abcd") == 1 and text_tokens("abcde") == 2


def test_prices_name_the_model_or_its_snapshot_only():
    assert PRICES_DATE
    assert price_of("gpt-4o-2024-08-06") == price_of("gpt-4o")
    assert price_of("gemini-2.0-flash-001") == price_of("gemini-2.0-flash")
    assert price_of("gpt-4o-mini") != price_of("gpt-4o")
    for other in ("gpt-5-pro", "gpt-5.4", "Qwen/Qwen3-VL-8B-Instruct", "o3-deep-research"):
        assert price_of(other) is None, other  # another model: unpriced, never a guess from a shorter name
    price = price_of("gpt-4o")
    assert price.cost(1_000_000, 100_000) == pytest.approx(3.5)
    assert price.batch().cost(1_000_000, 100_000) == pytest.approx(1.75)


def test_budget_reserves_worst_cases_and_stops_for_good():
    budget = Budget(1.0, "test")
    budget.reserve(0.4)
    budget.reserve(0.4)
    with pytest.raises(BudgetExceeded):
        budget.reserve(0.4)  # 0.8 reserved: a third worst case would pass the limit
    with pytest.raises(BudgetExceeded):
        budget.reserve(0.01)  # stopped: nothing more is sent, even what would fit
    budget.settle(0.4, 0.1)
    budget.release(0.4)
    assert budget.spent == pytest.approx(0.1) and budget.reserved == pytest.approx(0.0) and budget.paid_calls == 1
    assert "spent $0.1000 on 1 call(s)" in budget.summary(3, 5, "somewhere") and "3 of 5 not sent" in budget.summary(
        3, 5, "somewhere"
    )
    with pytest.raises(ValueError, match="positive"):
        Budget(0, "test")


def test_budget_is_never_exceeded_by_concurrent_callers():
    budget = Budget(1.0, "test")
    sent = []

    def caller() -> None:
        for _ in range(100):
            try:
                budget.reserve(0.03)
            except BudgetExceeded:
                return
            sent.append(1)
            budget.settle(0.03, 0.03)

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert budget.spent <= 1.0 and len(sent) == 33
