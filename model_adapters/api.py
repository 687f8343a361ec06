"""What the remote-API adapters (`covip_gpt`, `covip_gemini`) share: concurrency, retries, accounting, the answer
cache and the budget.

Requests run concurrently (at most `max_concurrency` in flight); a transient failure (429, 5xx,
timeout) is retried with exponential back-off and jitter, honouring Retry-After
(`covip.judges.resilience`); the SDKs' own retries are off so every attempt is ours. A request
that still fails fails the run with the provider's message (keys redacted), unless
`allow_errors=true`: then it becomes an empty answer marked `error`, counted like a safety
block, never a caption: the tasks score it wrong without judging it. Token usage goes to
lmms-eval's usage record (`results["usage"]`, per task) and per-sample `token_counts`; the
estimated cost (`covip.judges.pricing`) is logged per call batch and written into the results by
the `lmms_eval` command.

Every answer paid for is stored the moment it arrives in an answer cache (SQLite, `answer_cache`, default
`$COVIP_HOME/api_answers.sqlite`), keyed by provider, model, endpoint, the request's settings and its messages
(images by the sha256 of their pixels). lmms-eval's own response cache (`--use_cache`) stores a model's answers only
once its whole `generate_until` call has returned and the run has succeeded, so without this cache a run stopped
halfway (its budget, a crash, a failed request) would pay again for every answer it had. A cached answer is reused at
no cost; its token counts are the ones it was paid with, and it is not counted again in this run's usage.

Before the first request, the run's estimated cost is printed (`cost_estimate.py`). `max_cost_usd` is a hard limit on
what this process spends (`covip.judges.budget`): a request that could take the spending past it is not sent, the
answers that arrived are kept, and `BudgetExceeded` stops the run, whatever `allow_errors` says.
Keys come only from the environment and are never logged.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import logging
from dataclasses import asdict
from typing import Any

from lmms_eval.api.instance import GenerationResult, Instance

from covip.judges.backends import redact
from covip.judges.budget import Budget, BudgetExceeded
from covip.judges.cache import JudgeCache, cache_disabled, covip_home
from covip.judges.pricing import PRICES_DATE, Price, price_of
from covip.judges.resilience import RetryPolicy, call_with_retries, gather_bounded
from covip.model_adapters.chat import ChatAdapter, ChatRequest, Reply, load_image

logger = logging.getLogger(__name__)
ANSWER_CACHE = "api_answers.sqlite"


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


def items_of(content: Any) -> list[dict]:
    """A message's content as a list of items (a plain string is one text item)."""
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def canonical_messages(messages: list[dict]) -> list[dict]:
    """The messages as the answer cache keys them: texts as they are, images by their pixels' sha256 and size."""
    out = []
    for m in messages:
        items = []
        for item in items_of(m["content"]):
            if item["type"] == "image":
                image = load_image(item.get("url", item.get("image")))
                items.append({"image": hashlib.sha256(image.tobytes()).hexdigest(), "size": list(image.size)})
            else:
                items.append({"text": item["text"]})
        out.append({"role": m["role"], "content": items})
    return out


def flag(value: Any) -> bool:
    """A model argument read as a boolean (lmms-eval passes them as strings)."""
    return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")


class ApiAdapter(ChatAdapter):
    """Base of the API adapters: subclasses open a client, complete one request and count its tokens."""

    provider = "api"
    batch = False  # covip_gpt's batch=true: OpenAI's Batch API, at its price

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
        max_cost_usd: float | str | None = None,
        answer_cache: str | None = None,
        batch_size: int | str | None = None,
        device: str | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.max_concurrency = int(max_concurrency)
        self.timeout = float(timeout)
        self.policy = RetryPolicy(max_attempts=int(max_retries) + 1, base_delay=float(retry_base_delay))
        self.allow_errors = flag(allow_errors)
        self.system_prompt = system_prompt
        self.cag_caption_tokens = int(cag_caption_tokens)
        self.image_format = image_format.upper()
        self.failed = 0
        self.blocked = 0
        disabled = answer_cache is not None and cache_disabled(answer_cache)
        self.cache = None if disabled else JudgeCache(answer_cache or covip_home() / ANSWER_CACHE)
        self.budget = None
        if max_cost_usd is not None:
            self.budget = Budget(float(max_cost_usd), f"{self.provider} model {model}")
            if price_of(model) is None:
                raise ValueError(
                    f"max_cost_usd: model {model!r} has no list price in covip.judges.pricing (prices of "
                    f"{PRICES_DATE}), so its spending cannot be bounded; leave max_cost_usd out for a local server"
                )

    # ---- what each provider defines ------------------------------------------------------------------

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

    def endpoint(self) -> dict[str, Any]:
        """Where the model runs, besides its name (server URL...): part of every answer's cache key."""
        raise NotImplementedError

    def settings(self, gen: dict[str, Any]) -> dict[str, Any]:
        """The generation parameters as sent for a task's `gen_kwargs` (and any option that changes the request)."""
        raise NotImplementedError

    def prompt_tokens(self, messages: list[dict]) -> int:
        """The request's input tokens by the provider's published counting rules (cost_estimate.py)."""
        raise NotImplementedError

    def output_ceiling(self, gen: dict[str, Any]) -> int:
        """The most output tokens (reasoning included) one request may be billed for."""
        raise NotImplementedError

    def counting_note(self) -> str:
        """How `prompt_tokens` counts, for the estimate the user reads."""
        raise NotImplementedError

    # ---- cost ------------------------------------------------------------------------------------------

    @property
    def price(self) -> Price | None:
        listed = price_of(self.model)
        return listed.batch() if listed and self.batch else listed

    def worst_cost(self, request: ChatRequest) -> float:
        """The request's reservation: its input and its whole output budget at list price (0 when unpriced)."""
        price = self.price
        if price is None:
            return 0.0
        return price.cost(self.prompt_tokens(request.messages), self.output_ceiling(request.gen_kwargs))

    def reply_cost(self, reply: Reply) -> float | None:
        price = self.price
        if price is None or reply.input_tokens is None:
            return None
        return price.cost(reply.input_tokens, (reply.output_tokens or 0) + (reply.reasoning_tokens or 0))

    def answer_key(self, request: ChatRequest) -> str:
        identity = {
            "provider": self.provider,
            "model": self.model,
            "endpoint": self.endpoint(),
            "image_format": self.image_format,
            "settings": self.settings(request.gen_kwargs),
            "messages": canonical_messages(request.messages),
        }
        return hashlib.sha256(json.dumps(identity, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    # ---- sending -----------------------------------------------------------------------------------------

    def reserve(self, request: ChatRequest) -> float:
        """Reserve the request's worst case against the budget (raises `BudgetExceeded`); 0 without a budget."""
        if self.budget is None:
            return 0.0
        worst = self.worst_cost(request)
        self.budget.reserve(worst)
        return worst

    def paid(self, key: str, reply: Reply, worst: float) -> None:
        """An answer arrived: settle its reservation and keep it, before anything else can go wrong."""
        if self.budget is not None:
            self.budget.settle(worst, self.reply_cost(reply))
        if self.cache is not None:
            self.cache.put(key, self.model, json.dumps(asdict(reply)))

    def unpaid(self, worst: float) -> None:
        if self.budget is not None:
            self.budget.release(worst)

    async def send(self, requests: list[ChatRequest], keys: list[str]) -> list[Reply | BaseException]:
        """The requests online, concurrently; subclasses may send them otherwise (covip_gpt's batch mode)."""
        client = self.open_client()

        async def one(request: ChatRequest, key: str) -> Reply:
            worst = self.reserve(request)
            try:
                reply = await call_with_retries(lambda: self.complete(client, request), self.classify, self.policy)
            except BaseException:
                self.unpaid(worst)
                raise
            self.paid(key, reply, worst)
            return reply

        try:
            factories = [(lambda r=r, k=k: one(r, k)) for r, k in zip(requests, keys, strict=True)]
            return await gather_bounded(factories, self.max_concurrency)
        finally:
            await self.close_client(client)

    async def _run(self, requests: list[ChatRequest]) -> tuple[list[Reply | BaseException], set[int]]:
        """One outcome per request, and the indices answered from the answer cache."""
        keys = [self.answer_key(r) for r in requests]
        stored = self.cache.get_many(sorted(set(keys))) if self.cache else {}
        todo = [i for i, key in enumerate(keys) if key not in stored]
        outcomes: list[Reply | BaseException | None] = [
            Reply(**json.loads(stored[key])) if key in stored else None for key in keys
        ]
        if todo:
            sent = await self.send([requests[i] for i in todo], [keys[i] for i in todo])
            for i, outcome in zip(todo, sent, strict=True):
                outcomes[i] = outcome
        return outcomes, set(range(len(requests))) - set(todo)  # type: ignore[return-value]

    def generate_until(self, requests: list[Instance]) -> list[GenerationResult]:
        """The run's estimated cost first (nothing is sent before it is printed), then the requests."""
        from covip.model_adapters.cost_estimate import log_estimate

        log_estimate(self, requests)
        return super().generate_until(requests)

    def generate_chat(self, requests: list[ChatRequest]) -> list[Reply]:
        outcomes, cached = asyncio.run(self._run(requests))
        fresh = [i for i, o in enumerate(outcomes) if i not in cached and isinstance(o, Reply)]
        unsent = sum(isinstance(o, BudgetExceeded) for o in outcomes)
        if unsent:
            assert self.budget is not None
            self.account([requests[i] for i in fresh], [outcomes[i] for i in fresh], len(cached))  # type: ignore[misc]
            kept = f"answer cache {self.cache.path}" if self.cache else "nowhere: answer_cache is off"
            raise BudgetExceeded(self.budget.summary(unsent, len(requests), kept))
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
        self.account([requests[i] for i in fresh], [replies[i] for i in fresh], len(cached))
        return replies

    def account(self, requests: list[ChatRequest], replies: list[Reply], cached: int) -> None:
        """Usage of the answers paid for now into lmms-eval's record (results["usage"], by task), cost into the log."""
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
        price = self.price
        cost = "unknown" if price is None else f"${price.cost(tokens_in, tokens_out):.4f}"
        budget = "" if self.budget is None else f"; ${self.budget.spent:.4f} of max_cost_usd ${self.budget.limit:g}"
        logger.warning(
            "%s: %d requests paid (%d input + %d output tokens, estimated cost %s%s), %d from the answer cache, "
            "%d blocked, %d failed so far",
            self.model,
            len(replies),
            tokens_in,
            tokens_out,
            cost,
            budget,
            cached,
            self.blocked,
            self.failed,
        )
