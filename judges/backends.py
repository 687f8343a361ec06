"""What a judge backend is: something that turns one prompt into one answer text, asynchronously.

A backend knows its transport (an HTTP API or a local model) and which of its failures are
worth retrying; the judges (llm.py) own prompts, caching, concurrency and parsing, so every
backend gets them alike. API keys are read from environment variables named by an option,
never passed as option values, so they cannot end up in a run's configuration or results.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from covip.judges.resilience import Transient

# One call: (prompt, decoding parameters, allowed final answers or None) -> the answer text.
Complete = Callable[[str, dict[str, Any], Sequence[str] | None], Awaitable[str]]


class EmptyAnswer(RuntimeError):
    """The server answered without any text (no choices, filtered, empty candidate)."""


class Backend(Protocol):
    """A transport for judge prompts."""

    name: str
    model: str
    max_concurrency: int | None  # a hard cap (a local model runs one call at a time); None: the judge decides

    def session(self) -> AbstractAsyncContextManager[Complete]:
        """An open client for one batch, bound to the running event loop, closed afterwards."""
        ...

    def classify(self, exc: BaseException) -> Transient | None:
        """`Transient` when `exc` is worth retrying (rate limit, 5xx, timeout), else None."""
        ...

    def secrets(self) -> list[str]:
        """Values that must never appear in any output (API keys), for redaction of error texts."""
        ...

    def identity(self) -> dict[str, Any]:
        """What decides an answer besides the model name (server URL, resolved checkpoint path): in every cache key."""
        ...


def api_key_from_env(names: Sequence[str], required: bool) -> str | None:
    """The first non-empty variable among `names`; an error naming them when required and none is set."""
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    if required:
        raise ValueError(f"no API key: set the environment variable {' or '.join(names)} (option api_key_env)")
    return None


def redact(text: str, secrets: Sequence[str]) -> str:
    """`text` with every secret replaced, for error details that are logged and written to results."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    return text
