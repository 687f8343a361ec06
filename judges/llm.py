"""LLM judges over any backend: prompts, cache, bounded concurrency, retries, answer parsing.

One `PromptRunner` serves both the CapEval-QAs judge (`LLMJudge`) and the binary LAR judge
(`LLMBinaryJudge`): it looks every prompt up in the cache, sends only the missing ones, at most
`concurrency` at a time, retrying transient failures with back-off, and stores each answer
the moment it arrives. A prompt whose call still fails comes back as its exception and becomes
an `error` verdict, never a letter.

Before it sends anything, the runner prints what the uncached prompts may cost at list price
(`pricing.py`). With `max_cost_usd` it never lets them spend more (`budget.py`): it stops sending,
keeps every answer that arrived, and raises `BudgetExceeded`, which no `allow_errors` turns into
verdicts, so a run stopped by its budget is never scored as complete. With the backend's `batch`
option the prompts go through OpenAI's Batch API (`openai_batch.py`) into the same cache.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import random
import sys
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from covip.judges.backends import Backend, redact
from covip.judges.binary import BinaryQuestion, BinaryVerdict
from covip.judges.budget import MESSAGE_TOKENS, Budget, BudgetExceeded, text_tokens
from covip.judges.cache import JudgeCache, cache_key
from covip.judges.extract import extract_label, extract_letter
from covip.judges.openai_batch import reserve_all
from covip.judges.presets import Preset
from covip.judges.pricing import PRICES_DATE, Price, price_of
from covip.judges.prompt import BINARY_TEMPLATE, MCQA_TEMPLATE, binary_prompt, mcqa_prompt, prompt_hash
from covip.judges.protocol import ERROR, INVALID, LETTERS, MCQA, JudgeSpec, Verdict, format_question
from covip.judges.resilience import RetryPolicy, call_with_retries, gather_bounded

log = logging.getLogger(__name__)
T = TypeVar("T")
DEFAULT_RETRY = RetryPolicy()
PRICED_BACKENDS = ("openai", "gemini")  # backends that bill per token; a local model costs nothing per call


@dataclass
class RunStats:
    """What the last batch cost: questions, answers from the cache, calls sent (attempts), failures."""

    questions: int = 0
    cached: int = 0
    calls: int = 0
    failed: int = 0


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, also when the caller already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


class PromptRunner:
    """Answers prompts through a backend, cache first; see the module docstring."""

    def __init__(
        self,
        backend: Backend,
        spec: JudgeSpec,
        cache: JudgeCache | None,
        concurrency: int,
        retry: RetryPolicy,
        max_cost_usd: float | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"option concurrency must be >= 1, got {concurrency}")
        self.backend = backend
        self.spec = spec
        self.cache = cache
        self.concurrency = min(concurrency, backend.max_concurrency or concurrency)
        self.retry = retry
        self.stats = RunStats()
        self._identity = {**spec.to_dict(), "endpoint": backend.identity()}  # the cache key's judge part
        self.batch = bool(getattr(backend, "batch", False))
        if self.batch and cache is None:
            raise ValueError("option batch needs the judge cache (it holds the batch ids, to resume polling): cache on")
        listed = price_of(backend.model) if backend.name in PRICED_BACKENDS else None
        self.price: Price | None = listed.batch() if listed and self.batch else listed
        self.max_output = spec.decoding.get("max_tokens")
        self.budget = None if max_cost_usd is None else Budget(float(max_cost_usd), f"judge {spec.judge_id}")
        if self.budget is not None and self.price is None:
            raise ValueError(
                f"option max_cost_usd: model {backend.model!r} of the {backend.name} judge has no list price in "
                f"covip.judges.pricing (prices of {PRICES_DATE}); a local or self-hosted judge needs no budget"
            )
        if self.budget is not None and self.max_output is None:
            raise ValueError("option max_cost_usd needs max_tokens, the output bound of every call (not null)")

    def cost_ceiling(self, input_tokens: int, calls: int) -> float | None:
        """The most `calls` prompts of `input_tokens` in all can cost at list price (None: unpriced or unbounded)."""
        if self.price is None or self.max_output is None:
            return None
        return self.price.cost(input_tokens + calls * MESSAGE_TOKENS, calls * self.max_output)

    def pricing_note(self) -> str:
        """How `cost_ceiling` counts, for the estimates the user reads."""
        if self.price is None:
            return f"{self.backend.model}: no list price (local or self-hosted, or not in the table of {PRICES_DATE})"
        if self.max_output is None:
            return "output not bounded (max_tokens is null): no ceiling"
        batch = ", OpenAI Batch API at half price" if self.batch else ""
        return f"at most {self.max_output} output tokens a call, list prices of {PRICES_DATE}{batch}"

    def run(self, prompts: Sequence[str], choices: Sequence[str] | None) -> list[str | BaseException]:
        """One answer (or the final exception) per prompt, in order; identical prompts are asked once."""
        keys = [cache_key(self._identity, p) for p in prompts]
        cached = self.cache.get_many(sorted(set(keys))) if self.cache else {}
        todo = {k: p for k, p in zip(keys, prompts, strict=True) if k not in cached}
        self.stats = RunStats(questions=len(prompts), cached=sum(k in cached for k in keys))
        if todo:
            ceiling = self.cost_ceiling(sum(text_tokens(p) for p in todo.values()), len(todo))
            cost = "cost not estimated" if ceiling is None else f"at most ${ceiling:.4f}"
            print(
                f"judge {self.spec.judge_id}: {len(prompts)} questions, {self.stats.cached} answered from the cache, "
                f"{len(todo)} to ask: {cost} ({self.pricing_note()})",
                file=sys.stderr,
                flush=True,
            )
        fresh = run_sync(self._ask_all(todo, choices)) if todo else {}
        unsent = sum(isinstance(fresh[k], BudgetExceeded) for k in todo)
        if unsent:
            assert self.budget is not None
            kept = f"judge cache {self.cache.path}" if self.cache else "nowhere: the judge cache is off"
            raise BudgetExceeded(self.budget.summary(unsent, len(todo), kept))
        self.stats.failed = sum(isinstance(fresh.get(k), BaseException) for k in keys)
        if self.stats.failed:
            log.warning("judge %s: %d of %d questions failed", self.spec.judge_id, self.stats.failed, len(prompts))
        return [cached[k] if k in cached else fresh[k] for k in keys]

    def _reserve(self, prompt: str) -> float:
        """Reserve a prompt's worst case against the budget (raises `BudgetExceeded`); 0 without a budget."""
        if self.budget is None:
            return 0.0
        worst = self.cost_ceiling(text_tokens(prompt), 1) or 0.0
        self.budget.reserve(worst)
        return worst

    def _settle(self, worst: float, answer: str) -> None:
        if self.budget is not None and self.price is not None:
            usage = getattr(answer, "usage", None)
            actual = None if usage is None else self.price.cost(usage.input_tokens, usage.output_tokens)
            self.budget.settle(worst, actual)

    def _store(self, key: str, answer: str) -> None:
        if self.cache is not None:
            self.cache.put(key, self.spec.judge_id, str(answer))

    async def _ask_all(self, todo: dict[str, str], choices: Sequence[str] | None) -> dict[str, str | BaseException]:
        decoding = {k: v for k, v in self.spec.decoding.items() if k not in ("constrain", "shuffle_seed")}
        if self.batch:
            return await self._ask_batch(todo, decoding, choices)
        async with self.backend.session() as complete:

            async def attempt(prompt: str) -> str:
                self.stats.calls += 1
                return await complete(prompt, decoding, choices)

            async def ask(key: str, prompt: str) -> str:
                worst = self._reserve(prompt)
                try:
                    answer = await call_with_retries(lambda: attempt(prompt), self.backend.classify, self.retry)
                except BaseException:
                    if self.budget is not None:
                        self.budget.release(worst)
                    raise
                self._settle(worst, answer)
                self._store(key, answer)
                return answer

            results = await gather_bounded([lambda k=k, p=p: ask(k, p) for k, p in todo.items()], self.concurrency)
        return dict(zip(todo, results, strict=True))

    async def _ask_batch(
        self, todo: dict[str, str], decoding: dict[str, Any], choices: Sequence[str] | None
    ) -> dict[str, str | BaseException]:
        """The prompts through the backend's Batch API: same bodies, parsing and cache as the online calls."""
        reserved, refused = reserve_all(list(todo), lambda key: self._reserve(todo[key]))
        bodies = {key: self.backend.batch_body(todo[key], decoding, choices) for key in reserved}

        def answered(key: str, body: dict[str, Any]) -> str | BaseException:
            try:
                answer = self.backend.batch_answer(body)
            except Exception as exc:  # noqa: BLE001 - an unusable answer is that question's error, not the batch's
                return exc
            self._settle(reserved.pop(key, 0.0), answer)
            self._store(key, answer)
            return answer

        self.stats.calls += len(bodies)
        async with self.backend.batch_session(self.cache, f"judge {self.spec.model}", self.retry) as batch:
            results = await batch.run(bodies, answered)
        for worst in reserved.values():  # never answered: billed nothing
            if self.budget is not None:
                self.budget.release(worst)
        return {**results, **refused}

    def describe(self, exc: BaseException) -> str:
        """An error's description for a verdict: type and message, secrets redacted, bounded length."""
        return redact(f"{type(exc).__name__}: {exc}", self.backend.secrets())[:500]


def _build_runner(
    backend: Backend,
    preset: Preset,
    decoding: dict[str, Any],
    template: str,
    cache: JudgeCache | None,
    concurrency: int,
    retry: RetryPolicy,
    extra: dict[str, Any],
    max_cost_usd: float | None,
) -> PromptRunner:
    spec = JudgeSpec(
        backend=backend.name,
        model=backend.model,
        preset=preset.name,
        decoding={**decoding, **{k: v for k, v in extra.items() if v not in (None, False)}},
        prompt_hash=prompt_hash(template),
    )
    return PromptRunner(backend, spec, cache, concurrency, retry, max_cost_usd)


class LLMJudge:
    """CapEval-QAs over an LLM backend: the `Judge` protocol of protocol.py.

    `shuffle_seed` presents A-C in a per-question seeded order (D stays D) and maps the
    answer back, so a letter bias of the judge cannot favour the stored answer position.
    """

    def __init__(
        self,
        backend: Backend,
        preset: Preset,
        decoding: dict[str, Any],
        cache: JudgeCache | None = None,
        concurrency: int = 16,
        retry: RetryPolicy = DEFAULT_RETRY,
        shuffle_seed: int | None = None,
        constrain: bool | str = False,
        max_cost_usd: float | None = None,
    ) -> None:
        self.preset = preset
        self.shuffle_seed = shuffle_seed
        self.constrain = bool(constrain)
        extra = {"shuffle_seed": shuffle_seed, "constrain": constrain}
        self.runner = _build_runner(
            backend, preset, decoding, MCQA_TEMPLATE, cache, concurrency, retry, extra, max_cost_usd
        )
        self.spec = self.runner.spec

    @property
    def stats(self) -> RunStats:
        return self.runner.stats

    def shown(self, item: MCQA) -> tuple[MCQA, dict[str, str]]:
        """The question as the judge sees it, and shown letter -> original letter."""
        if self.shuffle_seed is None:
            return item, {letter: letter for letter in LETTERS}
        order = ["A", "B", "C"]
        random.Random(f"{self.shuffle_seed}:{item.qid}").shuffle(order)
        back = {shown: original for shown, original in zip(("A", "B", "C"), order, strict=True)} | {"D": "D"}
        options = {shown: item.options[original] for shown, original in back.items()}
        return replace(item, options=options), back

    def judge_many(self, items: list[MCQA]) -> list[Verdict]:
        shown = [self.shown(item) for item in items]
        prompts = [mcqa_prompt(s.caption, format_question(s)) for s, _ in shown]
        answers = self.runner.run(prompts, LETTERS if self.constrain else None)
        judge_id = self.spec.judge_id
        verdicts = []
        for item, (_, back), answer in zip(items, shown, answers, strict=True):
            if isinstance(answer, BaseException):
                verdicts.append(Verdict(item.qid, ERROR, judge_id, self.runner.describe(answer)))
                continue
            letter = extract_letter(answer)
            if letter is not None:
                verdicts.append(Verdict(item.qid, back[letter], judge_id))
            elif self.preset.unreadable_as_default:
                verdicts.append(Verdict(item.qid, "D", judge_id, f"unreadable, taken as D: {answer[-200:]!r}"))
            else:
                verdicts.append(Verdict(item.qid, INVALID, judge_id, f"unreadable: {answer[-200:]!r}"))
        return verdicts


class LLMBinaryJudge:
    """Correct / Wrong over an LLM backend: the `BinaryJudge` protocol of binary.py."""

    def __init__(
        self,
        backend: Backend,
        preset: Preset,
        decoding: dict[str, Any],
        cache: JudgeCache | None = None,
        concurrency: int = 16,
        retry: RetryPolicy = DEFAULT_RETRY,
        constrain: bool | str = False,
        max_cost_usd: float | None = None,
    ) -> None:
        self.preset = preset
        self.constrain = bool(constrain)
        extra = {"constrain": constrain}
        self.runner = _build_runner(
            backend, preset, decoding, BINARY_TEMPLATE, cache, concurrency, retry, extra, max_cost_usd
        )
        self.spec = self.runner.spec

    @property
    def stats(self) -> RunStats:
        return self.runner.stats

    def judge_binary_many(self, items: list[BinaryQuestion]) -> list[BinaryVerdict]:
        prompts = [binary_prompt(item.response, item.reference) for item in items]
        answers = self.runner.run(prompts, ("Correct", "Wrong") if self.constrain else None)
        judge_id = self.spec.judge_id
        verdicts = []
        for item, answer in zip(items, answers, strict=True):
            if isinstance(answer, BaseException):
                log.warning("binary judge %s: %s failed: %s", judge_id, item.qid, self.runner.describe(answer))
                label = ERROR
            else:
                label = extract_label(answer) or ("wrong" if self.preset.unreadable_as_default else INVALID)
            verdicts.append(BinaryVerdict(item.qid, label, judge_id))
        return verdicts
