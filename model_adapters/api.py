"""What the remote-API adapters (`covip_gpt`, `covip_gemini`) share: concurrency, retries, accounting.

Requests run concurrently (at most `max_concurrency` in flight); a transient failure (429, 5xx,
timeout) is retried with exponential back-off and jitter, honouring Retry-After
(`covip.judges.resilience`); the SDKs' own retries are off so every attempt is ours. A request
that still fails fails the run with the provider's message (keys redacted), unless
`allow_errors=true`: then it becomes an empty answer marked `error`, counted like a safety
block, never a caption: the tasks score it wrong without judging it. Token usage goes to
lmms-eval's usage record (`results["usage"]`, per task) and per-sample `token_counts`; the
estimated cost (`covip.tasks.results.pricing`) is logged per call batch and written into the results by
the `lmms_eval` command.
Keys come only from the environment and are never logged.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
from typing import Any

from covip.judges.backends import redact
from covip.judges.resilience import RetryPolicy, call_with_retries, gather_bounded
from covip.model_adapters.chat import ChatAdapter, ChatRequest, Reply, load_image
from covip.tasks.results.pricing import estimated_cost_usd

logger = logging.getLogger(__name__)


def image_bytes(value: Any, fmt: str = "PNG") -> bytes:
    """An image item's bytes: PNG by default (lossless, as the model would see the file)."""
    buffer = io.BytesIO()
    load_image(value).save(buffer, format=fmt)
    return buffer.getvalue()


def data_url(value: Any, fmt: str = "PNG") -> str:
    return f"data:image/{fmt.lower()};base64,{base64.b64encode(image_bytes(value, fmt)).decode()}"


def text_of(content: Any) -> str:
    """The text of a message's content (string or items); system and assistant turns are text."""
    if isinstance(content, str):
        return content
    if any(item["type"] != "text" for item in content):
        raise ValueError("images are only supported in user turns")
    return "".join(item["text"] for item in content)


def _flag(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")


class ApiAdapter(ChatAdapter):
    """Base of the API adapters: subclasses open a client and complete one request."""

    provider = "api"

    def __init__(
        self,
        model: str,
        max_concurrency: int | str = 8,
        timeout: float | str = 120.0,
        max_retries: int | str = 5,
        retry_base_delay: float | str = 1.0,
        allow_errors: bool | str = False,
        system_prompt: str | None = None,
        cag_caption_tokens: int | str = 1024,
        image_format: str = "PNG",
        batch_size: int | str | None = None,
        device: str | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.max_concurrency = int(max_concurrency)
        self.timeout = float(timeout)
        self.policy = RetryPolicy(max_attempts=int(max_retries) + 1, base_delay=float(retry_base_delay))
        self.allow_errors = _flag(allow_errors)
        self.system_prompt = system_prompt
        self.cag_caption_tokens = int(cag_caption_tokens)
        self.image_format = image_format.upper()
        self.failed = 0
        self.blocked = 0

    def secrets(self) -> list[str]:
        return []

    def open_client(self) -> Any:
        raise NotImplementedError

    async def close_client(self, client: Any) -> None:
        raise NotImplementedError

    async def complete(self, client: Any, request: ChatRequest) -> Reply:
        """One request to the provider; raise on failure (the classifier decides whether to retry)."""
        raise NotImplementedError

    def classify(self, exc: BaseException) -> Any:
        raise NotImplementedError

    async def _run(self, requests: list[ChatRequest]) -> list[Reply | BaseException]:
        client = self.open_client()
        try:
            factories = [
                (lambda r=r: call_with_retries(lambda: self.complete(client, r), self.classify, self.policy))
                for r in requests
            ]
            return await gather_bounded(factories, self.max_concurrency)
        finally:
            await self.close_client(client)

    def generate_chat(self, requests: list[ChatRequest]) -> list[Reply]:
        outcomes = asyncio.run(self._run(requests))
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        if errors:
            self.failed += len(errors)
            first = redact(f"{type(errors[0]).__name__}: {errors[0]}", self.secrets())
            message = (
                f"{self.provider} model {self.model}: {len(errors)} of {len(requests)} requests failed; first: {first}"
            )
            if not self.allow_errors:
                raise RuntimeError(message + " (set allow_errors=true to record them as failed answers instead)")
            logger.error(message)
        replies = [
            Reply(text="", blocked=f"error: {type(o).__name__}") if isinstance(o, BaseException) else o
            for o in outcomes
        ]
        self.blocked += sum(1 for r in replies if r.blocked and not r.blocked.startswith("error"))
        self.account(requests, replies)
        return replies

    def account(self, requests: list[ChatRequest], replies: list[Reply]) -> None:
        """Usage into lmms-eval's record (results["usage"], by task) and the estimated cost into the log."""
        from lmms_eval.models.model_utils.usage_metrics import log_usage

        for request, r in zip(requests, replies, strict=True):
            log_usage(
                self.model,
                task_name=request.task,
                input_tokens=r.input_tokens or 0,
                output_tokens=r.output_tokens or 0,
                reasoning_tokens=r.reasoning_tokens or 0,
            )
        tokens_in = sum(r.input_tokens or 0 for r in replies)
        tokens_out = sum((r.output_tokens or 0) + (r.reasoning_tokens or 0) for r in replies)
        cost = estimated_cost_usd(self.model, tokens_in, tokens_out)
        logger.warning(
            "%s: %d requests, %d input + %d output tokens, estimated cost %s, %d blocked, %d failed so far",
            self.model,
            len(replies),
            tokens_in,
            tokens_out,
            "unknown" if cost is None else f"${cost:.4f}",
            self.blocked,
            self.failed,
        )
