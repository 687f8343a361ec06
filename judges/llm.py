"""LLM judges over any backend: prompts, cache, bounded concurrency, retries, answer parsing.

One `PromptRunner` serves both the CapEval-QAs judge (`LLMJudge`) and the binary LAR judge
(`LLMBinaryJudge`): it looks every prompt up in the cache, sends only the missing ones, at most
`concurrency` at a time, retrying transient failures with back-off, and stores each answer
the moment it arrives. A prompt whose call still fails comes back as its exception and becomes
an `error` verdict, never a letter.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import random
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from covip.judges.backends import Backend, redact
from covip.judges.binary import BinaryQuestion, BinaryVerdict
from covip.judges.cache import JudgeCache, cache_key
from covip.judges.extract import extract_label, extract_letter
from covip.judges.presets import Preset
from covip.judges.prompt import BINARY_TEMPLATE, MCQA_TEMPLATE, binary_prompt, mcqa_prompt, prompt_hash
from covip.judges.protocol import ERROR, INVALID, LETTERS, MCQA, JudgeSpec, Verdict, format_question
from covip.judges.resilience import RetryPolicy, call_with_retries, gather_bounded

log = logging.getLogger(__name__)
T = TypeVar("T")
DEFAULT_RETRY = RetryPolicy()


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

    def run(self, prompts: Sequence[str], choices: Sequence[str] | None) -> list[str | BaseException]:
        """One answer (or the final exception) per prompt, in order; identical prompts are asked once."""
        keys = [cache_key(self._identity, p) for p in prompts]
        cached = self.cache.get_many(sorted(set(keys))) if self.cache else {}
        todo = {k: p for k, p in zip(keys, prompts, strict=True) if k not in cached}
        self.stats = RunStats(questions=len(prompts), cached=sum(k in cached for k in keys))
        fresh = run_sync(self._ask_all(todo, choices)) if todo else {}
        self.stats.failed = sum(isinstance(fresh.get(k), BaseException) for k in keys)
        if self.stats.failed:
            log.warning("judge %s: %d of %d questions failed", self.spec.judge_id, self.stats.failed, len(prompts))
        return [cached[k] if k in cached else fresh[k] for k in keys]

    async def _ask_all(self, todo: dict[str, str], choices: Sequence[str] | None) -> dict[str, str | BaseException]:
        decoding = {k: v for k, v in self.spec.decoding.items() if k not in ("constrain", "shuffle_seed")}
        async with self.backend.session() as complete:

            async def attempt(prompt: str) -> str:
                self.stats.calls += 1
                return await complete(prompt, decoding, choices)

            async def ask(key: str, prompt: str) -> str:
                answer = await call_with_retries(lambda: attempt(prompt), self.backend.classify, self.retry)
                if self.cache is not None:
                    self.cache.put(key, self.spec.judge_id, answer)
                return answer

            results = await gather_bounded([lambda k=k, p=p: ask(k, p) for k, p in todo.items()], self.concurrency)
        return dict(zip(todo, results, strict=True))

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
) -> PromptRunner:
    spec = JudgeSpec(
        backend=backend.name,
        model=backend.model,
        preset=preset.name,
        decoding={**decoding, **{k: v for k, v in extra.items() if v not in (None, False)}},
        prompt_hash=prompt_hash(template),
    )
    return PromptRunner(backend, spec, cache, concurrency, retry)


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
    ) -> None:
        self.preset = preset
        self.shuffle_seed = shuffle_seed
        self.constrain = bool(constrain)
        extra = {"shuffle_seed": shuffle_seed, "constrain": constrain}
        self.runner = _build_runner(backend, preset, decoding, MCQA_TEMPLATE, cache, concurrency, retry, extra)
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
    ) -> None:
        self.preset = preset
        self.constrain = bool(constrain)
        extra = {"constrain": constrain}
        self.runner = _build_runner(backend, preset, decoding, BINARY_TEMPLATE, cache, concurrency, retry, extra)
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
