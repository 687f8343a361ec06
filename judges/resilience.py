"""Calling remote APIs without hammering them or losing work: bounded concurrency and retries.

Shared by the judge backends and the API model adapters (both talk to OpenAI-compatible and
Gemini servers). A call is retried on transient failures (429, 5xx, timeouts) with
exponential back-off and full jitter, honouring a server's Retry-After; it raises once its
attempts are spent, so the caller records an error instead of inventing an answer.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts in all, the first delay, the delay cap, and a seed for the jitter."""

    max_attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0
    seed: int | None = None

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before attempt `attempt + 1` (attempt counts from 1)."""
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.max_delay)
        return rng.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


@dataclass(frozen=True)
class Transient:
    """A classifier's answer: the failure is worth retrying, optionally after `retry_after` seconds."""

    retry_after: float | None = None


Classifier = Callable[[BaseException], Transient | None]


async def call_with_retries(
    fn: Callable[[], Awaitable[T]],
    classify: Classifier,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Await `fn()`; on a failure `classify` calls transient, wait and try again, else re-raise."""
    rng = random.Random(policy.seed)
    for attempt in range(1, policy.max_attempts + 1):
        try:
            return await fn()
        except Exception as exc:  # noqa: BLE001 - classified below, re-raised when not transient
            transient = classify(exc)
            if transient is None or attempt == policy.max_attempts:
                raise
            await sleep(policy.delay(attempt, transient.retry_after, rng))
    raise AssertionError("unreachable")


async def gather_bounded(factories: Sequence[Callable[[], Awaitable[T]]], limit: int) -> list[T | BaseException]:
    """Run the awaitables with at most `limit` in flight; results in input order, exceptions returned."""
    if limit < 1:
        raise ValueError(f"concurrency limit must be >= 1, got {limit}")
    semaphore = asyncio.Semaphore(limit)

    async def one(factory: Callable[[], Awaitable[T]]) -> T:
        async with semaphore:
            return await factory()

    return await asyncio.gather(*(one(f) for f in factories), return_exceptions=True)


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """A server's requested wait from `retry-after-ms`, or `retry-after` in seconds or as an HTTP date."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        if "retry-after-ms" in lowered:
            return max(0.0, float(lowered["retry-after-ms"]) / 1000)
        value = lowered.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
