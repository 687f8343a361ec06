"""The `hf` backend: a local transformers causal LM loaded from a directory (optionally a GGUF file).

Two modes, one model:
- `score` (default): the judge's closed answer (A-D; LAR: Correct/Wrong) is read from the logits of the
  allowed answers after the answer's opening (`answer_scoring.py`), for all the questions in flight at
  once, each caption's tokens encoded once for all its questions. Greedy by nature: a preset that samples
  (`paper`) needs `mode=generate`. The reply is written in the template's final-line format
  (`Answer: \\boxed{B}`, `Correct`), so it is parsed, cached and counted like any backend's answer.
- `generate`: free generation with `generate`, one prompt at a time, read by the same parser; greedy at
  temperature 0, and sampling seeded per prompt so that a cached and a fresh answer agree.

Runs offline on `device` (default: the GPU when there is one); the chat template is applied when the
tokenizer has one. Work runs in a worker thread, so the judge's event loop stays free.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from covip.judges.answer_scoring import AnswerScorer, ScoringStats, closed_answer
from covip.judges.backends import Complete, EmptyAnswer
from covip.judges.resilience import Transient

MODES = ("score", "generate")


class HFBackend:
    """transformers on a local checkpoint: logit scoring or `generate`."""

    name = "hf"

    def __init__(
        self,
        model: str = "",
        gguf_file: str | None = None,
        device: str | None = None,
        dtype: str | None = None,
        mode: str = "score",
        batch_tokens: int = 131072,
    ) -> None:
        if not model:
            raise ValueError("the hf judge needs option 'model': a local directory holding a causal LM")
        path = Path(model).expanduser()
        if not path.is_dir():
            raise ValueError(f"hf judge: model directory {path} does not exist (models are loaded offline)")
        if gguf_file and not (path / gguf_file).is_file():
            raise ValueError(f"hf judge: gguf_file {gguf_file!r} not found in {path}")
        self.path: Path | None = path
        self.gguf_file = gguf_file
        self.model = f"{path.name}/{gguf_file}" if gguf_file else path.name
        self.device = device
        self.dtype = dtype
        self._set_mode(mode, batch_tokens)
        self._loaded: tuple[Any, Any] | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_loaded(cls, model: Any, tokenizer: Any, name: str, mode: str = "score", batch_tokens: int = 131072):
        """A backend over a model already in memory (benchmarks build the judge's architecture with random
        weights); `name` stands for its path in the cache key."""
        self = cls.__new__(cls)
        self.path, self.gguf_file, self.model, self.device, self.dtype = None, None, name, None, None
        self._set_mode(mode, batch_tokens)
        self._loaded = (tokenizer, model)
        self._lock = threading.Lock()
        return self

    def _set_mode(self, mode: str, batch_tokens: int) -> None:
        if mode not in MODES:
            raise ValueError(f"hf judge: mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.mode = mode
        self.batch_tokens = int(batch_tokens)
        self.scoring_stats = ScoringStats()  # what scoring has computed so far (benchmarks report it)
        # generate: one prompt at a time; score: every question in flight is one batch (the judge's concurrency)
        self.max_concurrency = 1 if mode == "generate" else None
        self.default_concurrency = 1 if mode == "generate" else 4096

    def secrets(self) -> list[str]:
        return []

    def identity(self) -> dict[str, Any]:
        # `model` is only the directory's name, shared by every run's `checkpoint-500`; the path is not
        path = str(self.path.resolve()) if self.path else f"in-memory:{self.model}"
        return {"path": path, "gguf_file": self.gguf_file, "mode": self.mode}

    def validate_decoding(self, decoding: dict[str, Any]) -> None:
        """Scoring is greedy: a sampling preset is refused rather than silently answered greedily."""
        if self.mode == "score" and float(decoding.get("temperature", 0.0)) > 0:
            raise ValueError(
                f"hf judge mode=score reads the most likely answer; temperature {decoding['temperature']} "
                "asks for sampling: use mode=generate (or temperature 0)"
            )

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._loaded is None:
                import torch
                from transformers import AutoModelForCausalLM, AutoTokenizer

                extra = {"gguf_file": self.gguf_file} if self.gguf_file else {}
                device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
                tokenizer = AutoTokenizer.from_pretrained(self.path, **extra)
                model = AutoModelForCausalLM.from_pretrained(self.path, dtype=self.dtype or "auto", **extra)
                self._loaded = (tokenizer, model.to(device).eval())
            return self._loaded

    def score(self, prompts: list[str]) -> list[str]:
        """The replies of a batch of judge prompts, read from the logits (synchronously, in a worker thread)."""
        tokenizer, model = self._load()
        with self._lock:
            scorer = AnswerScorer(model, tokenizer, self.batch_tokens)
            chosen = scorer.choose(prompts)
            self.scoring_stats.add(scorer.stats)
        return [closed_answer(p).reply.format(c) for p, c in zip(prompts, chosen, strict=True)]

    def generate(self, prompt: str, decoding: dict[str, Any]) -> str:
        """One answer, synchronously (used from a worker thread)."""
        import torch

        tokenizer, model = self._load()
        if tokenizer.chat_template:
            ids = tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt", return_dict=True
            )["input_ids"]
        else:
            ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
        ids = ids.to(model.device)
        temperature = float(decoding.get("temperature", 0.0))
        max_new = int(decoding.get("max_tokens") or 512)
        kwargs: dict[str, Any] = {"max_new_tokens": max_new, "do_sample": temperature > 0}
        if temperature > 0:
            kwargs.update(temperature=temperature, top_p=decoding.get("top_p", 1.0), top_k=decoding.get("top_k", 0))
            if decoding.get("min_p"):
                kwargs["min_p"] = decoding["min_p"]
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        with self._lock, torch.inference_mode():
            torch.manual_seed(int(decoding.get("seed", 0)))
            out = model.generate(ids, attention_mask=torch.ones_like(ids), pad_token_id=pad, **kwargs)
        text = tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
        if not text.strip():
            raise EmptyAnswer(f"{self.model}: generated no text")
        return text

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Complete]:
        if self.mode == "generate":

            async def complete(prompt: str, decoding: dict[str, Any], choices: Sequence[str] | None) -> str:
                return await asyncio.to_thread(self.generate, prompt, decoding)

            yield complete
            return
        waves = Waves(self.score)

        async def score(prompt: str, decoding: dict[str, Any], choices: Sequence[str] | None) -> str:
            self.validate_decoding(decoding)
            return await waves.submit(prompt)

        yield score

    def classify(self, exc: BaseException) -> Transient | None:
        return None  # a local model's failure is not fixed by waiting


class Waves:
    """Turns the judge's concurrent one-prompt calls into batch calls: the prompts submitted while the event
    loop is busy form one wave, answered by one `answer_many` call in a worker thread."""

    def __init__(self, answer_many: Callable[[list[str]], list[str]]) -> None:
        self.answer_many = answer_many
        self.waiting: list[tuple[str, asyncio.Future[str]]] = []
        self.flush: asyncio.Task | None = None

    async def submit(self, prompt: str) -> str:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.waiting.append((prompt, future))
        if self.flush is None:
            self.flush = asyncio.create_task(self._answer_wave())
        return await future

    async def _answer_wave(self) -> None:
        seen = -1
        while seen != len(self.waiting):  # every runner task that is ready submits before the wave leaves
            seen = len(self.waiting)
            await asyncio.sleep(0)
        wave, self.waiting, self.flush = self.waiting, [], None
        try:
            answers = await asyncio.to_thread(self.answer_many, [p for p, _ in wave])
        except Exception as exc:  # every question of the wave failed with it; the judge records the errors
            for _, future in wave:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), answer in zip(wave, answers, strict=True):
            if not future.done():
                future.set_result(answer)
