"""`covip_gpt`: OpenAI chat completions (gpt-4o, gpt-5) or any OpenAI-compatible server (`base_url`).

Messages keep their interleaving: each user turn becomes content parts in order, text parts
as they are and images as data URLs (`detail` option). gpt-5 and the o-series take
`max_completion_tokens` and no temperature, by the rule the judge follows too
(`covip.judges.openai_backend.params_for_model`); other models take `max_tokens` and
temperature 0 unless the task samples. The token budget is the task's `max_new_tokens` plus
`reasoning_tokens` (default 0), headroom for the reasoning that shares it. A `content_filter`
finish with no text is a `blocked` outcome; a `length` finish with no text is a failed request
(the budget went to reasoning), never an empty caption. `vllm serve MODEL` +
`base_url=http://127.0.0.1:8000/v1` is the server mode of `covip_vllm`.

`batch=true` sends the requests through OpenAI's Batch API instead (half price, answered within 24
hours; `covip.judges.openai_batch`): the same request bodies, answer parsing and answer cache, the
batch ids kept in that cache so that a rerun after a kill resumes polling.
"""

from __future__ import annotations

import json
from typing import Any

from covip.judges.backends import EmptyAnswer, api_key_from_env
from covip.judges.openai_backend import OpenAIBackend, params_for_model
from covip.judges.openai_batch import OpenAIBatch, reserve_all
from covip.model_adapters.api import ApiAdapter, data_url, flag, text_of
from covip.model_adapters.chat import ChatRequest, Reply
from covip.model_adapters.cost_estimate import message_tokens, openai_image_tokens


def openai_messages(messages: list[dict], detail: str | None = None, image_format: str = "PNG") -> list[dict]:
    """OpenAI chat messages, interleaving kept: user turns as text and image_url (data URL) parts, in order."""
    out = []
    for m in messages:
        if m["role"] != "user":
            out.append({"role": m["role"], "content": text_of(m["content"])})
            continue
        parts = []
        for item in [{"type": "text", "text": m["content"]}] if isinstance(m["content"], str) else m["content"]:
            if item["type"] == "text":
                parts.append({"type": "text", "text": item["text"]})
            elif item["type"] == "image":
                image_url = {"url": data_url(item.get("url", item.get("image")), image_format)}
                if detail:
                    image_url["detail"] = detail
                parts.append({"type": "image_url", "image_url": image_url})
            else:
                raise ValueError(f"unsupported content type {item['type']!r}")
        out.append({"role": "user", "content": parts})
    return out


class GPT(ApiAdapter):
    provider = "openai"
    classify = OpenAIBackend.classify  # the judges' classifier: 408/429/5xx/timeouts are transient

    def __init__(
        self,
        model: str = "gpt-4o",
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        detail: str = "auto",
        reasoning_effort: str | None = None,
        reasoning_tokens: int | str = 0,
        batch: bool | str = False,
        batch_poll_interval: float | str = 30.0,
        **options: Any,
    ) -> None:
        super().__init__(model=model, **options)
        self.batch = flag(batch)
        self.batch_poll_interval = float(batch_poll_interval)
        if self.batch and self.cache is None:
            raise ValueError("covip_gpt: batch=true needs the answer cache (it holds the batch ids): drop answer_cache")
        if detail not in ("auto", "low", "high"):
            raise ValueError(f"covip_gpt: detail must be auto, low or high, got {detail!r}")
        self.base_url = base_url
        self.detail = detail
        self.reasoning_effort = reasoning_effort
        self.reasoning_tokens = int(reasoning_tokens)
        if self.reasoning_tokens < 0:
            raise ValueError(f"covip_gpt: reasoning_tokens must be >= 0, got {reasoning_tokens!r}")
        # a local OpenAI-compatible server needs no real key; OpenAI's API does
        self._api_key = api_key_from_env([api_key_env], required=base_url is None) or "EMPTY"

    def secrets(self) -> list[str]:
        return [self._api_key] if self._api_key != "EMPTY" else []

    def open_client(self) -> Any:
        import openai

        return openai.AsyncOpenAI(api_key=self._api_key, base_url=self.base_url, timeout=self.timeout, max_retries=0)

    async def close_client(self, client: Any) -> None:
        await client.close()

    def payload_messages(self, messages: list[dict]) -> list[dict]:
        return openai_messages(messages, self.detail, self.image_format)

    def params(self, gen: dict[str, Any]) -> dict[str, Any]:
        if "max_new_tokens" not in gen:
            raise ValueError("the task gives no max_new_tokens; set generation_kwargs.max_new_tokens")
        sample = bool(gen.get("do_sample")) or float(gen.get("temperature") or 0) > 0
        params: dict[str, Any] = {
            "max_tokens": int(gen["max_new_tokens"]) + self.reasoning_tokens,
            "temperature": float(gen.get("temperature") or 0),
        }
        if sample and gen.get("top_p") is not None:
            params["top_p"] = float(gen["top_p"])
        if gen.get("presence_penalty") is not None:  # the `paper` preset's diagnostics: the reference's 1.5
            params["presence_penalty"] = float(gen["presence_penalty"])
        if self.reasoning_effort:
            params["reasoning_effort"] = self.reasoning_effort
        return params_for_model(self.model, params)

    def body(self, request: ChatRequest) -> dict[str, Any]:
        """The chat-completion request body, online and as a batch line."""
        return {
            "model": self.model,
            "messages": self.payload_messages(request.messages),
            **self.params(request.gen_kwargs),
        }

    # ---- answer cache and cost (api.py) ---------------------------------------------------------------------

    def endpoint(self) -> dict[str, Any]:
        return {"base_url": self.base_url}

    def settings(self, gen: dict[str, Any]) -> dict[str, Any]:
        return {"params": self.params(gen), "detail": self.detail}

    def prompt_tokens(self, messages: list[dict]) -> int:
        return message_tokens(messages, lambda w, h: openai_image_tokens(self.model, w, h, self.detail))

    def output_ceiling(self, gen: dict[str, Any]) -> int:
        return int(gen["max_new_tokens"]) + self.reasoning_tokens

    def counting_note(self) -> str:
        high = " (auto counted as high)" if self.detail == "auto" else ""
        return f"text at 4 characters a token, images by OpenAI's rule for {self.model}, detail {self.detail}{high}"

    # ---- sending ---------------------------------------------------------------------------------------------

    async def complete(self, client: Any, request: ChatRequest) -> Reply:
        return self.reply_of(await client.chat.completions.create(**self.body(request)))

    async def send(self, requests: list[ChatRequest], keys: list[str]) -> list[Reply | BaseException]:
        """Online (api.py), or with batch=true as OpenAI batches, each answer paid and cached as it is read."""
        if not self.batch:
            return await super().send(requests, keys)
        from openai.types.chat import ChatCompletion

        by_key = dict(zip(keys, requests, strict=True))
        reserved, refused = reserve_all(list(by_key), lambda key: self.reserve(by_key[key]))

        def answered(key: str, body: dict[str, Any]) -> Reply | BaseException:
            try:
                reply = self.reply_of(ChatCompletion.model_validate(body))
            except Exception as exc:  # noqa: BLE001 - an unusable answer fails its request, not the batch
                return exc
            self.paid(key, reply, reserved.pop(key, 0.0))
            return reply

        client = self.open_client()
        try:
            endpoint = json.dumps({"provider": self.provider, "base_url": self.base_url})
            label = f"covip_gpt {self.model}"
            batch = OpenAIBatch(
                client, self.cache, endpoint, label, self.classify, self.batch_poll_interval, self.policy
            )
            results = await batch.run({key: self.body(by_key[key]) for key in reserved}, answered)
        finally:
            await self.close_client(client)
        for worst in reserved.values():  # never answered: billed nothing
            self.unpaid(worst)
        return [refused[key] if key in refused else results[key] for key in keys]

    def reply_of(self, response: Any) -> Reply:
        """A ChatCompletion as a reply: its text and tokens, a blocked answer, or an error (no text)."""
        usage = response.usage
        counts = {}
        if usage is not None:
            details = getattr(usage, "completion_tokens_details", None)
            reasoning = getattr(details, "reasoning_tokens", None) or 0
            counts = {
                "input_tokens": usage.prompt_tokens,
                "output_tokens": (usage.completion_tokens or 0) - reasoning,
                "reasoning_tokens": reasoning,
            }
        choice = response.choices[0] if response.choices else None
        text = choice.message.content if choice else None
        if not text and choice is not None and choice.finish_reason == "content_filter":
            return Reply(text="", blocked="content_filter", **counts)
        if not text and choice is not None and choice.finish_reason == "length":
            raise EmptyAnswer(
                f"{self.model}: the token budget was spent before any answer text (finish_reason length, "
                f"{counts.get('reasoning_tokens', 0)} reasoning tokens); raise reasoning_tokens (model_args), "
                f"which is added to the task's max_new_tokens, or lower reasoning_effort"
            )
        if text is None:
            raise EmptyAnswer(f"{self.model}: the server returned no answer text")
        return Reply(text=text, **counts)
