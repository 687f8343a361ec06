"""The `gemini` backend: Google's Gemini API through the google-genai SDK.

The SDK's retries are set to a single attempt so that back-off, Retry-After and the attempt
budget are ours (resilience.py); the timeout goes to the SDK (it counts milliseconds). The
answer constraint uses Gemini's enum response type.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from covip.judges.backends import Complete, EmptyAnswer, api_key_from_env
from covip.judges.budget import PricedText, Usage
from covip.judges.resilience import Transient, retry_after_seconds


class GeminiBackend:
    """generateContent, one user turn per prompt."""

    name = "gemini"
    max_concurrency = None

    def __init__(
        self,
        model: str = "",
        base_url: str | None = None,
        api_key_env: str = "GEMINI_API_KEY",
        timeout: float = 120.0,
        constrain: bool = False,
        api_version: str = "v1beta",
    ) -> None:
        if not model:
            raise ValueError("the gemini judge needs option 'model' (e.g. gemini-2.5-flash)")
        if constrain not in (True, False):
            raise ValueError(f"option constrain of the gemini judge must be true or false, got {constrain!r}")
        self.model = model
        self.base_url = base_url
        self.timeout = float(timeout)
        self.constrain = bool(constrain)
        self.api_version = api_version
        names = [api_key_env] if api_key_env != "GEMINI_API_KEY" else ["GEMINI_API_KEY", "GOOGLE_API_KEY"]
        self._api_key = api_key_from_env(names, required=True)

    def secrets(self) -> list[str]:
        return [self._api_key] if self._api_key else []

    def identity(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "api_version": self.api_version}

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Complete]:
        from google import genai
        from google.genai import types

        client = genai.Client(
            api_key=self._api_key,
            http_options=types.HttpOptions(
                base_url=self.base_url,
                api_version=self.api_version,
                timeout=int(self.timeout * 1000),
                retry_options=types.HttpRetryOptions(attempts=1),
            ),
        )
        aio = client.aio
        try:

            async def complete(prompt: str, decoding: dict[str, Any], choices: Sequence[str] | None) -> str:
                if decoding.get("min_p"):
                    raise ValueError("the gemini API has no min_p; set option min_p to null")
                config: dict[str, Any] = {
                    "temperature": decoding.get("temperature"),
                    "top_p": decoding.get("top_p"),
                    "top_k": decoding.get("top_k"),
                    "seed": decoding.get("seed"),
                    "max_output_tokens": decoding.get("max_tokens"),
                    "candidate_count": 1,
                }
                if choices and self.constrain:
                    config["response_mime_type"] = "text/x.enum"
                    config["response_schema"] = {"type": "STRING", "enum": list(choices)}
                response = await aio.models.generate_content(
                    model=self.model,
                    contents=prompt,
                    config=types.GenerateContentConfig(**{k: v for k, v in config.items() if v is not None}),
                )
                text = response.text
                if not text:
                    reason = response.candidates[0].finish_reason if response.candidates else "no candidates"
                    raise EmptyAnswer(f"{self.model}: no answer text ({reason})")
                usage = response.usage_metadata
                billed = None
                if usage is not None:
                    output = (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)
                    billed = Usage(usage.prompt_token_count or 0, output)
                return PricedText(text, billed)

            yield complete
        finally:
            await aio.aclose()

    def classify(self, exc: BaseException) -> Transient | None:
        from google.genai import errors

        if isinstance(exc, errors.APIError):
            if exc.code == 429 or (isinstance(exc.code, int) and exc.code >= 500):
                headers = getattr(exc.response, "headers", None)
                return Transient(retry_after_seconds(dict(headers) if headers else None))
            return None
        if isinstance(exc, (asyncio.TimeoutError, TimeoutError, ConnectionError, json.JSONDecodeError)):
            return Transient()
        try:
            import aiohttp

            if isinstance(exc, aiohttp.ClientError):
                return Transient()
        except ImportError:
            pass
        import httpx

        if isinstance(exc, httpx.TransportError):
            return Transient()
        return None
