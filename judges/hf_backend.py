"""The `hf` backend: a local transformers causal LM loaded from a directory (optionally a GGUF file).

Runs offline on whatever device is given; generation happens in a worker thread, one prompt
at a time (a local model has no server to queue on), so the event loop of the judge stays
free. The chat template is applied when the tokenizer has one. With temperature 0 it decodes
greedily; sampling is seeded per prompt so a cached and a fresh answer agree.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from covip.judges.backends import Complete, EmptyAnswer
from covip.judges.resilience import Transient


class HFBackend:
    """transformers `generate` on a local checkpoint."""

    name = "hf"
    max_concurrency = 1

    def __init__(
        self, model: str = "", gguf_file: str | None = None, device: str = "cpu", dtype: str | None = None
    ) -> None:
        if not model:
            raise ValueError("the hf judge needs option 'model': a local directory holding a causal LM")
        path = Path(model).expanduser()
        if not path.is_dir():
            raise ValueError(f"hf judge: model directory {path} does not exist (models are loaded offline)")
        if gguf_file and not (path / gguf_file).is_file():
            raise ValueError(f"hf judge: gguf_file {gguf_file!r} not found in {path}")
        self.path = path
        self.gguf_file = gguf_file
        self.model = f"{path.name}/{gguf_file}" if gguf_file else path.name
        self.device = device
        self.dtype = dtype
        self._loaded: tuple[Any, Any] | None = None
        self._lock = threading.Lock()

    def secrets(self) -> list[str]:
        return []

    def identity(self) -> dict[str, Any]:
        # `model` is only the directory's name, shared by every run's `checkpoint-500`; the path is not
        return {"path": str(self.path.resolve()), "gguf_file": self.gguf_file}

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._loaded is None:
                from transformers import AutoModelForCausalLM, AutoTokenizer

                extra = {"gguf_file": self.gguf_file} if self.gguf_file else {}
                tokenizer = AutoTokenizer.from_pretrained(self.path, **extra)
                model = AutoModelForCausalLM.from_pretrained(self.path, dtype=self.dtype or "auto", **extra)
                self._loaded = (tokenizer, model.to(self.device).eval())
            return self._loaded

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
        ids = ids.to(self.device)
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
        async def complete(prompt: str, decoding: dict[str, Any], choices: Sequence[str] | None) -> str:
            return await asyncio.to_thread(self.generate, prompt, decoding)

        yield complete

    def classify(self, exc: BaseException) -> Transient | None:
        return None  # a local model's failure is not fixed by waiting
