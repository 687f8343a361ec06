"""`covip_gemini`: Gemini (2.0 Flash, 3 Pro) through google-genai.

Each turn becomes a `Content` whose parts keep the interleaving (text parts and inline image
bytes, in order); the system turn becomes `system_instruction`, an assistant turn (CAG stage 2)
a `model` turn. `thinking_budget` sets the thinking tokens (0 turns thinking off where the model
allows it). Gemini counts thinking tokens against `max_output_tokens`, so a positive budget is
added to the task's `max_new_tokens`: thinking cannot eat the answer's share. A prompt blocked
by the safety filter, or a candidate stopped for safety with no text, is a `blocked` outcome: an
empty answer, counted, never a caption. A candidate that ran out of tokens before any text is a
failed request.
"""

from __future__ import annotations

from typing import Any

from covip.judges.backends import EmptyAnswer, api_key_from_env
from covip.judges.gemini_backend import GeminiBackend
from covip.model_adapters.api import ApiAdapter, image_bytes, text_of
from covip.model_adapters.chat import ChatRequest, Reply
from covip.model_adapters.cost_estimate import gemini_image_tokens, message_tokens

BLOCK_REASONS = ("SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "IMAGE_SAFETY", "RECITATION")


class Gemini(ApiAdapter):
    provider = "gemini"
    classify = GeminiBackend.classify  # the judges' classifier: 429/5xx/timeouts/transport errors are transient

    def __init__(
        self,
        model: str = "gemini-2.0-flash",
        base_url: str | None = None,
        api_key_env: str = "GEMINI_API_KEY",
        api_version: str = "v1beta",
        thinking_budget: int | str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(model=model, **options)
        self.base_url = base_url
        self.api_version = api_version
        self.thinking_budget = None if thinking_budget is None else int(thinking_budget)
        names = [api_key_env] if api_key_env != "GEMINI_API_KEY" else ["GEMINI_API_KEY", "GOOGLE_API_KEY"]
        self._api_key = api_key_from_env(names, required=True)

    def secrets(self) -> list[str]:
        return [self._api_key] if self._api_key else []

    def open_client(self) -> Any:
        from google import genai
        from google.genai import types

        options = types.HttpOptions(
            base_url=self.base_url,
            api_version=self.api_version,
            timeout=int(self.timeout * 1000),  # milliseconds
            retry_options=types.HttpRetryOptions(attempts=1),
        )
        return genai.Client(api_key=self._api_key, http_options=options).aio

    async def close_client(self, client: Any) -> None:
        await client.aclose()

    def contents(self, messages: list[dict]) -> tuple[str | None, list[Any]]:
        from google.genai import types

        system = None
        contents = []
        for m in messages:
            if m["role"] == "system":
                system = text_of(m["content"])
                continue
            items = [{"type": "text", "text": m["content"]}] if isinstance(m["content"], str) else m["content"]
            parts = []
            for item in items:
                if item["type"] == "text":
                    parts.append(types.Part.from_text(text=item["text"]))
                elif item["type"] == "image":
                    data = image_bytes(item.get("url", item.get("image")), self.image_format)
                    parts.append(types.Part.from_bytes(data=data, mime_type=f"image/{self.image_format.lower()}"))
                else:
                    raise ValueError(f"covip_gemini: unsupported content type {item['type']!r}")
            contents.append(types.Content(role="model" if m["role"] == "assistant" else "user", parts=parts))
        return system, contents

    def config(self, system: str | None, gen: dict[str, Any]) -> Any:
        from google.genai import types

        if "max_new_tokens" not in gen:
            raise ValueError("the task gives no max_new_tokens; set generation_kwargs.max_new_tokens")
        sample = bool(gen.get("do_sample")) or float(gen.get("temperature") or 0) > 0
        thinking = max(self.thinking_budget or 0, 0)  # -1 (dynamic) and 0 (off) reserve nothing
        config: dict[str, Any] = {
            "system_instruction": system,
            "max_output_tokens": int(gen["max_new_tokens"]) + thinking,
            "temperature": float(gen.get("temperature") or 0),
            "top_p": gen.get("top_p") if sample else None,
            "presence_penalty": gen.get("presence_penalty"),  # the `paper` preset's diagnostics: 1.5
            "candidate_count": 1,
        }
        if self.thinking_budget is not None:
            config["thinking_config"] = types.ThinkingConfig(thinking_budget=self.thinking_budget)
        return types.GenerateContentConfig(**{k: v for k, v in config.items() if v is not None})

    # ---- answer cache and cost (api.py) ---------------------------------------------------------------------

    def endpoint(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "api_version": self.api_version}

    def settings(self, gen: dict[str, Any]) -> dict[str, Any]:
        return self.config(None, gen).model_dump(mode="json", exclude_none=True)

    def prompt_tokens(self, messages: list[dict]) -> int:
        return message_tokens(messages, lambda w, h: gemini_image_tokens(self.model, w, h))

    def output_ceiling(self, gen: dict[str, Any]) -> int:
        return int(gen["max_new_tokens"]) + max(self.thinking_budget or 0, 0)

    def counting_note(self) -> str:
        return f"text at 4 characters a token, images by Gemini's published rule for {self.model}"

    # ---- sending ---------------------------------------------------------------------------------------------

    async def complete(self, client: Any, request: ChatRequest) -> Reply:
        system, contents = self.contents(request.messages)
        response = await client.models.generate_content(
            model=self.model, contents=contents, config=self.config(system, request.gen_kwargs)
        )
        usage = response.usage_metadata
        counts = {}
        if usage is not None:
            counts = {
                "input_tokens": usage.prompt_token_count,
                "output_tokens": usage.candidates_token_count,
                "reasoning_tokens": usage.thoughts_token_count,
            }
        feedback = response.prompt_feedback
        if feedback is not None and feedback.block_reason is not None:
            return Reply(text="", blocked=f"prompt blocked: {_name(feedback.block_reason)}", **counts)
        candidate = response.candidates[0] if response.candidates else None
        text = (
            "".join(p.text or "" for p in candidate.content.parts if not p.thought)
            if candidate and candidate.content and candidate.content.parts
            else ""
        )
        reason = _name(candidate.finish_reason) if candidate is not None and candidate.finish_reason else None
        if not text and reason in BLOCK_REASONS:
            return Reply(text="", blocked=f"candidate blocked: {reason}", **counts)
        if not text and reason == "MAX_TOKENS":
            raise EmptyAnswer(
                f"{self.model}: the token budget was spent before any answer text (finish reason MAX_TOKENS, "
                f"{counts.get('reasoning_tokens') or 0} thinking tokens); set or raise thinking_budget (model_args): "
                f"it is added to the task's max_new_tokens as room for thinking"
            )
        if not text:
            raise EmptyAnswer(f"{self.model}: no answer text (finish reason {reason})")
        return Reply(text=text, **counts)


def _name(value: Any) -> str:
    return getattr(value, "name", None) or str(value)
