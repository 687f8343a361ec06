"""The `openai` backend: OpenAI's API or any OpenAI-compatible server (vLLM, SGLang).

The SDK's own retries are switched off (`max_retries=0`) so that back-off, Retry-After and
the attempt budget are ours (resilience.py) and every attempt is counted; the timeout is
passed to the client, so a hung server costs one timeout, not forever. Sampling parameters
outside OpenAI's schema (`top_k`, `min_p`) and the answer constraint travel in `extra_body`,
which vLLM and SGLang read. OpenAI's reasoning models (gpt-5, the o-series) take
`max_completion_tokens` and no temperature (`params_for_model`, shared with `covip_gpt`).

With `batch: true` the judge's prompts go through OpenAI's Batch API instead (half price, answered
within 24 hours; `openai_batch.py`), with the same request bodies and answer parsing.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from covip.judges.backends import Complete, EmptyAnswer, api_key_from_env
from covip.judges.budget import PricedText, Usage
from covip.judges.cache import JudgeCache
from covip.judges.openai_batch import OpenAIBatch
from covip.judges.resilience import RetryPolicy, Transient, retry_after_seconds

STANDARD = ("temperature", "top_p", "seed", "max_tokens")
EXTRA = ("top_k", "min_p")
CONSTRAINTS = ("structured_outputs", "guided_choice")
REASONING_PREFIXES = ("gpt-5", "o1", "o3", "o4")  # OpenAI's reasoning models: gpt-5 and the o-series
SAMPLING = ("temperature", "top_p", "presence_penalty")


def params_for_model(model: str, params: dict[str, Any]) -> dict[str, Any]:
    """Chat-completion parameters as `model` accepts them; the one rule of the judge and `covip_gpt`.

    OpenAI's reasoning models reject `max_tokens` and every sampling parameter: they get
    `max_completion_tokens` (a budget their reasoning tokens share with the answer) and no
    temperature or top_p, so they sample at their own default. Other models get `params` as is.
    """
    if not model.startswith(REASONING_PREFIXES):
        return params
    out = {k: v for k, v in params.items() if k not in SAMPLING}
    if "max_tokens" in out:
        out["max_completion_tokens"] = out.pop("max_tokens")
    return out


class OpenAIBackend:
    """Chat completions, one user message per prompt."""

    name = "openai"
    max_concurrency = None

    def __init__(
        self,
        model: str = "",
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 120.0,
        constrain: bool | str = False,
        batch: bool = False,
        batch_poll_interval: float = 30.0,
    ) -> None:
        if not model:
            raise ValueError("the openai judge needs option 'model' (e.g. Qwen/Qwen3-30B-A3B-Instruct-2507-FP8)")
        if constrain is True:
            constrain = "structured_outputs"
        if constrain and constrain not in CONSTRAINTS:
            raise ValueError(f"option constrain must be false, true or one of {CONSTRAINTS}, got {constrain!r}")
        self.model = model
        self.base_url = base_url
        self.timeout = float(timeout)
        self.constrain = constrain or None
        if batch not in (True, False):
            raise ValueError(f"option batch of the openai judge must be true or false, got {batch!r}")
        self.batch = batch
        self.batch_poll_interval = float(batch_poll_interval)
        # A local server (base_url given) needs no real key; OpenAI's API does.
        self._api_key = api_key_from_env([api_key_env], required=base_url is None) or "EMPTY"

    def secrets(self) -> list[str]:
        return [self._api_key] if self._api_key != "EMPTY" else []

    def identity(self) -> dict[str, Any]:
        return {"base_url": self.base_url}  # two servers may serve different weights under one model name

    def client(self) -> Any:
        import openai

        return openai.AsyncOpenAI(api_key=self._api_key, base_url=self.base_url, timeout=self.timeout, max_retries=0)

    def request(
        self, prompt: str, decoding: dict[str, Any], choices: Sequence[str] | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The chat-completion arguments of one prompt, and the non-OpenAI extras (vLLM's) sent in its body."""
        kwargs = params_for_model(self.model, {k: decoding[k] for k in STANDARD if k in decoding})
        extra = {k: decoding[k] for k in EXTRA if k in decoding}
        if choices and self.constrain == "structured_outputs":
            extra["structured_outputs"] = {"choice": list(choices)}
        elif choices and self.constrain == "guided_choice":
            extra["guided_choice"] = list(choices)
        return {"model": self.model, "messages": [{"role": "user", "content": prompt}], **kwargs}, extra

    def answer_of(self, response: Any) -> PricedText:
        """The answer text of a ChatCompletion, with what it billed; no text is an error, never an answer."""
        if not response.choices or response.choices[0].message.content is None:
            raise EmptyAnswer(f"{self.model}: the server returned no answer text")
        usage = response.usage
        billed = Usage(usage.prompt_tokens or 0, usage.completion_tokens or 0) if usage is not None else None
        return PricedText(response.choices[0].message.content, billed)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Complete]:
        client = self.client()
        try:

            async def complete(prompt: str, decoding: dict[str, Any], choices: Sequence[str] | None) -> str:
                kwargs, extra = self.request(prompt, decoding, choices)
                return self.answer_of(await client.chat.completions.create(**kwargs, extra_body=extra or None))

            yield complete
        finally:
            await client.close()

    @asynccontextmanager
    async def batch_session(self, cache: JudgeCache, label: str, retry: RetryPolicy) -> AsyncIterator[OpenAIBatch]:
        """The Batch API of this server, its pending batches tracked in `cache`."""
        client = self.client()
        endpoint = json.dumps({"backend": self.name, "base_url": self.base_url})
        try:
            yield OpenAIBatch(client, cache, endpoint, label, self.classify, self.batch_poll_interval, retry)
        finally:
            await client.close()

    def batch_body(self, prompt: str, decoding: dict[str, Any], choices: Sequence[str] | None) -> dict[str, Any]:
        """The request body the online call sends, as one line of a batch file."""
        kwargs, extra = self.request(prompt, decoding, choices)
        return {**kwargs, **extra}

    def batch_answer(self, body: dict[str, Any]) -> PricedText:
        from openai.types.chat import ChatCompletion

        return self.answer_of(ChatCompletion.model_validate(body))

    def classify(self, exc: BaseException) -> Transient | None:
        import openai

        if isinstance(exc, openai.APIStatusError):
            if exc.status_code in (408, 429) or exc.status_code >= 500:
                return Transient(retry_after_seconds(dict(exc.response.headers)))
            return None
        if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError, openai.APIResponseValidationError)):
            return Transient()
        if isinstance(exc, json.JSONDecodeError):  # a proxy's half-written body: worth another try
            return Transient()
        return None
