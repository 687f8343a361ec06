"""`covip_qwen3_vl`: Qwen3-VL (dense or MoE, optionally with a LoRA adapter) on transformers.

Why not lmms-eval's built-in `qwen3_vl`: it generates one sample at a time by default, encodes
a CAG context twice, and has no LoRA. Here:
- requests are sorted by prompt length (longest first, so an out-of-memory shows at once) and
  generated `batch_size` at a time with left padding; the images are processed once per sample,
  in a worker thread that prepares the next batch while the GPU generates this one;
- decoding uses a static key/value cache, which lets transformers compile the decoding step with
  CUDA graphs, wherever that is correct and possible (`static_cache=auto`, see `decode_plan`);
- CAG reuses the key/value cache of the prefix shared by its two stages (system + context +
  query image): stage 1 is prefilled and generated as usual, its cache is cut back to the
  prefix, and stage 2 only encodes its own suffix (caption turn + question). Within a batch the
  prefixes are left-padded to a common length and the suffixes padded between prefix and
  suffix, so the prefix occupies the same cache columns in both stages;
- `lora=` loads a peft adapter (RAP, RePIC, CoViP or our trainer's checkpoints) on the base,
  `merge_lora=true` merges it for speed;
- greedy unless the task asks for sampling; bf16 on GPU, float32 on CPU; `device_map=auto`
  spreads a large model over GPUs.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import groupby
from typing import Any

import torch

from covip.model_adapters import gqa_decode
from covip.model_adapters.cag import stage1_request, stage2_request
from covip.model_adapters.chat import ChatAdapter, ChatRequest, Reply, images_in
from covip.model_adapters.processes import process_device
from covip.tasks.prompts import cag_shares_prefix, is_cag

logger = logging.getLogger(__name__)
GENERATE_KEYS = ("max_new_tokens", "min_new_tokens", "temperature", "top_p", "top_k", "num_beams", "repetition_penalty")
# Static caches are sized in steps of this many tokens, and never shrink within a process (transformers keeps the
# largest length it has compiled for), so that batches of similar length share one compiled decoding step.
CACHE_LENGTH_STEP = 1024


@dataclass
class Encoded:
    """One conversation, tokenized and with its images processed; `prefix` tokens may be shared with another."""

    ids: torch.Tensor  # (L,)
    mm: torch.Tensor  # (L,) token types: 0 text, 1 image, 2 video
    pixel_values: torch.Tensor | None
    grid: torch.Tensor | None

    def __len__(self) -> int:
        return int(self.ids.shape[0])


def load_qwen3_vl(
    pretrained: str,
    dtype: torch.dtype,
    attn_implementation: str = "sdpa",
    device_map: str | None = None,
    **processor_options: Any,
) -> tuple[torch.nn.Module, Any]:
    """Qwen3-VL (dense or MoE) and its processor from a hub id or a directory.

    The one loading path of this adapter and of the trainer, so a checkpoint is trained and evaluated
    on the same weights, dtype and attention kernel. `device_map=None` leaves the model on CPU for a
    caller that places it (the trainer's accelerate); `processor_options` go to `AutoProcessor`.
    """
    from transformers import AutoModelForImageTextToText, AutoProcessor

    if attn_implementation == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        raise ValueError("attn_implementation=flash_attention_2 needs the flash-attn package; use sdpa")
    model = AutoModelForImageTextToText.from_pretrained(
        pretrained, dtype=dtype, attn_implementation=attn_implementation, device_map=device_map
    )
    return model, AutoProcessor.from_pretrained(pretrained, **processor_options)


def _flag(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")


def static_cache_fallback(model: torch.nn.Module) -> str | None:
    """Why the compiled static-cache decode cannot be the default for this model, or None when it can.

    An MoE layer routes tokens with data-dependent shapes; unmerged LoRA layers and a model split over several
    devices have not been measured with the compiled step; transformers compiles a static-cache decoding step
    only on a GPU. `static_cache=true` still forces a static cache.
    """
    if getattr(model.config.get_text_config(), "num_experts", 0):
        return "MoE model: its expert routing has data-dependent shapes"
    if hasattr(model, "peft_config"):
        return "unmerged LoRA adapter: set merge_lora=true to decode with the compiled step"
    placed = set(getattr(model, "hf_device_map", {}).values())
    if len(placed) > 1:
        return f"model spread over {len(placed)} devices"
    device = model.get_input_embeddings().weight.device
    if device.type != "cuda":
        return f"model on {device.type}: transformers compiles the decoding step on a GPU only"
    return None


def prompt_length(processor: Any, text: str, image_sizes: list[tuple[int, int]]) -> int:
    """Tokens of a rendered prompt whose images have these (height, width), without processing any pixel: the
    text's tokens, each image's one `<|image_pad|>` counted as the tokens it becomes."""
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    ip = processor.image_processor
    factor = ip.patch_size * ip.merge_size
    n = len(processor.tokenizer(text)["input_ids"])
    for height, width in image_sizes:
        h, w = smart_resize(height, width, factor, ip.size["shortest_edge"], ip.size["longest_edge"])
        n += (h // factor) * (w // factor) - 1
    return n


def cache_length(tokens: int) -> int:
    """A static cache's length for `tokens` (prompt + new tokens), rounded up to `CACHE_LENGTH_STEP`."""
    return math.ceil(tokens / CACHE_LENGTH_STEP) * CACHE_LENGTH_STEP


@dataclass
class Batch:
    """One batch's tensors on CPU, prepared ahead of the GPU, and each real row's prompt length."""

    inputs: dict[str, torch.Tensor]
    vision: dict[str, torch.Tensor]
    prompt_tokens: list[int]


class Qwen3VL(ChatAdapter):
    """lmms-eval chat model over any Qwen3-VL checkpoint loadable with `from_pretrained`."""

    def __init__(
        self,
        pretrained: str,
        lora: str | None = None,
        merge_lora: bool | str = False,
        batch_size: int | str = 1,
        device: str | None = None,
        device_map: str | None = None,
        dtype: str | None = None,
        attn_implementation: str = "sdpa",
        max_pixels: int | None = None,
        min_pixels: int | None = None,
        system_prompt: str | None = None,
        cag_kv_reuse: bool | str = True,
        cag_caption_tokens: int | str = 1024,
        packed_gqa_decode: bool | str = True,
        static_cache: bool | str = "auto",
        **unknown: Any,
    ) -> None:
        super().__init__()
        if unknown:
            raise ValueError(f"covip_qwen3_vl: unknown model_args {sorted(unknown)}")
        device = device or str(process_device())  # one GPU per process in a data-parallel run
        dtype = dtype or ("bfloat16" if device.startswith("cuda") else "float32")
        model, processor = load_qwen3_vl(pretrained, getattr(torch, dtype), attn_implementation, device_map or device)
        model.eval()
        if lora:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, lora).eval()
            if _flag(merge_lora):
                model = model.merge_and_unload().eval()
        self.setup(
            model,
            processor,
            batch_size=batch_size,
            max_pixels=max_pixels,
            min_pixels=min_pixels,
            system_prompt=system_prompt,
            cag_kv_reuse=cag_kv_reuse,
            cag_caption_tokens=cag_caption_tokens,
            packed_gqa_decode=packed_gqa_decode and attn_implementation == "sdpa",
            static_cache=static_cache,
        )

    @classmethod
    def from_loaded(cls, model: torch.nn.Module, processor: Any, **options: Any) -> Qwen3VL:
        """An adapter over an already loaded model (benchmarks compare adapters on one copy of the weights)."""
        self = cls.__new__(cls)
        ChatAdapter.__init__(self)
        self.setup(model, processor, **options)
        return self

    def setup(
        self,
        model: torch.nn.Module,
        processor: Any,
        batch_size: int | str = 1,
        max_pixels: int | None = None,
        min_pixels: int | None = None,
        system_prompt: str | None = None,
        cag_kv_reuse: bool | str = True,
        cag_caption_tokens: int | str = 1024,
        packed_gqa_decode: bool | str = True,
        static_cache: bool | str = "auto",
    ) -> None:
        self.model = model
        self.static_cache = self.decode_plan(str(static_cache).lower())
        self.run_rows: int | None = None  # rows every batch of the current run is padded to (static cache)
        self.run_tokens = 0  # the current run's longest request, which sizes its static cache
        if _flag(packed_gqa_decode):
            gqa_decode.use_for_text(model)
        self.processor = processor
        image_processor = processor.image_processor
        size = dict(image_processor.size)
        if max_pixels is not None:
            size["longest_edge"] = int(max_pixels)
        if min_pixels is not None:
            size["shortest_edge"] = int(min_pixels)
        image_processor.size = size
        self.tokenizer = processor.tokenizer
        base = model.get_base_model() if hasattr(model, "get_base_model") else model  # peft wraps forward(*args)
        self.takes_token_types = "mm_token_type_ids" in inspect.signature(base.forward).parameters
        self.batch_size_per_gpu = int(batch_size)
        self.system_prompt = system_prompt
        self.cag_kv_reuse = _flag(cag_kv_reuse)
        self.cag_caption_tokens = int(cag_caption_tokens)
        eos = model.generation_config.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos]) | {
            self.tokenizer.convert_tokens_to_ids("<|im_end|>")
        }
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else min(self.eos_ids)

    def decode_plan(self, option: str) -> bool:
        """Whether to decode with a static, compiled cache: `auto` where `static_cache_fallback` finds no reason
        against it (the reason is logged), `true`/`false` as told."""
        if option != "auto":
            return _flag(option)
        reason = static_cache_fallback(self.model)
        if reason:
            logger.warning("covip_qwen3_vl: decoding with a dynamic cache (%s)", reason)
            return False
        logger.info("covip_qwen3_vl: decoding with a static cache and a compiled step, batches padded to one size")
        return True

    @property
    def batch_size(self) -> int:
        return self.batch_size_per_gpu

    @property
    def input_device(self) -> torch.device:
        return self.model.get_input_embeddings().weight.device

    # ---- encoding -------------------------------------------------------------------------

    def render(self, messages: list[dict]) -> str:
        return self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def encode(self, messages: list[dict]) -> Encoded:
        """Chat template + processor for one conversation, on CPU."""
        text = self.render(messages)
        images = images_in(messages)
        enc = self.processor(text=[text], images=images or None, return_tensors="pt")
        return Encoded(enc["input_ids"][0], self.token_types(enc), enc.get("pixel_values"), enc.get("image_grid_thw"))

    def token_types(self, enc: Any) -> torch.Tensor:
        """Text 0 / image 1 per token (transformers < 5.2x processors do not return them)."""
        if "mm_token_type_ids" in enc:
            return enc["mm_token_type_ids"][0]
        return (enc["input_ids"][0] == self.model.config.image_token_id).long()

    def device_inputs(self, inputs: dict[str, torch.Tensor], with_types: bool = True) -> dict[str, torch.Tensor]:
        """Tensors for `generate`; token types only where this transformers' Qwen3-VL takes them."""
        keep = with_types and self.takes_token_types
        return {k: v.to(self.input_device) for k, v in inputs.items() if keep or k != "mm_token_type_ids"}

    def collate(
        self, rows: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]
    ) -> dict[str, torch.Tensor]:
        """Rows of (prefix ids, prefix types, suffix ids, suffix types) -> [pad, prefix, pad, suffix] tensors.

        Prefixes end in the same column and suffixes in the last one, so a cache of the prefix
        columns serves any suffix; the attention mask hides both pads.
        """
        lp = max(int(r[0].shape[0]) for r in rows)
        ls = max(int(r[2].shape[0]) for r in rows)
        ids = torch.full((len(rows), lp + ls), self.pad_id, dtype=torch.long)
        mm = torch.zeros_like(ids)
        mask = torch.zeros_like(ids)
        for i, (pid, pmm, sid, smm) in enumerate(rows):
            for start, tok, typ in ((lp - pid.shape[0], pid, pmm), (lp + ls - sid.shape[0], sid, smm)):
                ids[i, start : start + tok.shape[0]] = tok
                mm[i, start : start + tok.shape[0]] = typ
                mask[i, start : start + tok.shape[0]] = 1
        return {"input_ids": ids, "mm_token_type_ids": mm, "attention_mask": mask}

    def vision_inputs(self, encoded: list[Encoded], dtype: torch.dtype) -> dict[str, torch.Tensor]:
        """The batch's images on CPU, in the model's dtype."""
        pixels = [e.pixel_values for e in encoded if e.pixel_values is not None]
        if not pixels:
            return {}
        return {
            "pixel_values": torch.cat(pixels).to(dtype),
            "image_grid_thw": torch.cat([e.grid for e in encoded if e.grid is not None]),
        }

    def length(self, request: ChatRequest) -> int:
        """Prompt length in tokens (text + image tokens), without processing the pixels."""
        sizes = [(image.height, image.width) for image in images_in(request.messages)]
        return prompt_length(self.processor, self.render(request.messages), sizes)

    # ---- generation -----------------------------------------------------------------------

    def generate_kwargs(self, gen_kwargs: dict[str, Any]) -> dict[str, Any]:
        if gen_kwargs.get("presence_penalty") and not getattr(self, "_said_presence", False):
            self._said_presence = True
            logger.warning("presence_penalty is ignored: transformers' generate has no presence penalty")
        kwargs = {k: gen_kwargs[k] for k in GENERATE_KEYS if gen_kwargs.get(k) is not None}
        sample = bool(gen_kwargs.get("do_sample")) or float(gen_kwargs.get("temperature") or 0) > 0
        if not sample:
            for k in ("temperature", "top_p", "top_k"):
                kwargs.pop(k, None)
        kwargs["do_sample"] = sample
        if "max_new_tokens" not in kwargs:
            raise ValueError("the task gives no max_new_tokens; set generation_kwargs.max_new_tokens")
        return {**kwargs, "pad_token_id": self.pad_id, "eos_token_id": sorted(self.eos_ids)}

    def cache_kwargs(self, tokens: int) -> dict[str, Any]:
        """A static KV cache makes transformers compile the decoding step (CUDA graphs on GPU) instead of
        launching every kernel from Python per token. The compiled step is specific to the cache's shape, so
        every batch of a run has the same rows (`rows_for`) and one cache length: that of the longest request
        (prompt + new tokens, `tokens`) of the call or, through lmms-eval, of the whole run (`generate_until`),
        rounded up to `CACHE_LENGTH_STEP` (transformers also keeps the largest length it has seen). A run
        through lmms-eval compiles once. CAG's KV reuse cuts its cache back to the prefix, which a static cache
        cannot do: it stays on the dynamic cache."""
        if not self.static_cache:
            return {}
        return {"cache_implementation": "static", "max_cache_len": cache_length(max(tokens, self.run_tokens))}

    def rows_for(self, n_requests: int) -> int:
        """Rows of every batch: with a static cache all batches of a run are padded to one size (`batch_size`,
        or the whole run when it is smaller) so that the compiled step is reused; else the batch as it is."""
        return min(self.batch_size, self.run_rows or n_requests)

    def generate_until(self, requests: list) -> list:
        """lmms-eval's entry point. With a static cache, the run's shape is fixed first: its size fixes the rows of
        every batch, and its longest request (prompt + new tokens) the cache length, so that the decoding step
        compiles once even though the base class windows the run and each window sorts its own batches."""
        if self.static_cache:  # one window is one generate_chat call, which sizes its own cache
            self.run_rows = len(requests)
            self.run_tokens = self.longest(requests) if len(requests) > self.WINDOW else 0
        try:
            return super().generate_until(requests)
        finally:
            self.run_rows, self.run_tokens = None, 0

    def longest(self, requests: list) -> int:
        """The most tokens (prompt + new tokens) a plain request of the run needs; the requests' messages are
        built window by window and dropped. CAG requests are left out: their stage 2 grows by its caption."""
        longest = 0
        for start in range(0, len(requests), self.WINDOW):
            for chat in self.chat_requests(requests[start : start + self.WINDOW]):
                if not is_cag(chat.messages):
                    new = int(chat.gen_kwargs.get("max_new_tokens") or 0)
                    longest = max(longest, self.length(chat) + new)
        return longest

    def batches(self, requests: list[ChatRequest], lengths: list[int] | None = None) -> list[list[int]]:
        """Indices grouped by generation settings, longest prompt first, `batch_size` at a time."""
        lengths = lengths or [self.length(r) for r in requests]
        key = [repr(sorted(r.gen_kwargs.items())) for r in requests]
        order = sorted(range(len(requests)), key=lambda i: (key[i], -lengths[i]))
        out = []
        for _, group in groupby(order, key=lambda i: key[i]):
            group = list(group)
            out += [group[s : s + self.batch_size] for s in range(0, len(group), self.batch_size)]
        return out

    def replies(self, sequences: torch.Tensor, prompt_len: int, input_tokens: list[int]) -> list[Reply]:
        out = []
        for row, n_in in zip(sequences[:, prompt_len:].tolist(), input_tokens, strict=True):
            n_out = next((k + 1 for k, t in enumerate(row) if t in self.eos_ids), len(row))
            text = self.tokenizer.decode(row[:n_out], skip_special_tokens=True)
            out.append(Reply(text=text, input_tokens=n_in, output_tokens=n_out))
        return out

    def prepare(self, requests: list[ChatRequest], rows: int) -> Batch:
        """Encode a batch on CPU (chat template, image processing, padding), padded to `rows` rows with one-token
        rows whose outputs are dropped. Runs in a worker thread while the GPU generates the previous batch."""
        encoded = [self.encode(r.messages) for r in requests]
        empty = torch.zeros(0, dtype=torch.long)
        filler = torch.tensor([self.pad_id])
        fill = [(filler, torch.zeros(1, dtype=torch.long), empty, empty)] * (rows - len(encoded))
        inputs = self.collate([(e.ids, e.mm, empty, empty) for e in encoded] + fill)
        return Batch(inputs, self.vision_inputs(encoded, self.model.dtype), [len(e) for e in encoded])

    @torch.inference_mode()
    def generate_chat(self, requests: list[ChatRequest]) -> list[Reply]:
        """Batches in a pipeline: one worker thread prepares batch k+1 and decodes batch k-1's tokens while the
        GPU generates batch k (the worker is the only user of the tokenizer, which is not thread-safe)."""
        lengths = [self.length(r) for r in requests]
        batches = self.batches(requests, lengths)
        rows = self.rows_for(len(requests)) if self.static_cache else None
        needs = [n + int(r.gen_kwargs.get("max_new_tokens") or 0) for n, r in zip(lengths, requests, strict=True)]
        longest = max(needs, default=0)
        decoded = []
        with ThreadPoolExecutor(1, thread_name_prefix="covip-prepare") as worker:

            def prepare(batch: list[int]):
                return worker.submit(self.prepare, [requests[i] for i in batch], rows or len(batch))

            upcoming = prepare(batches[0]) if batches else None
            for k, batch in enumerate(batches):
                prepared = upcoming.result()
                upcoming = prepare(batches[k + 1]) if k + 1 < len(batches) else None
                gen = self.generate_kwargs(requests[batch[0]].gen_kwargs)
                prompt_len = prepared.inputs["input_ids"].shape[1]
                out = self.model.generate(
                    **self.device_inputs(prepared.inputs),
                    **self.device_inputs(prepared.vision),
                    **gen,
                    **self.cache_kwargs(max(prompt_len + gen["max_new_tokens"], longest)),
                )
                tokens = out[: len(batch), prompt_len:].cpu()
                decoded.append(worker.submit(self.replies, tokens, 0, prepared.prompt_tokens))
            replies: list[Reply | None] = [None] * len(requests)
            for batch, done in zip(batches, decoded, strict=True):
                for i, reply in zip(batch, done.result(), strict=True):
                    replies[i] = reply
        return replies  # type: ignore[return-value]

    def generate_cag(self, requests: list[ChatRequest]) -> list[Reply]:
        """KV reuse where both stages start with the same prefix; the `paper` preset's stage 1 has no system
        prompt, so those requests take the two-pass path."""
        reuse = [i for i, r in enumerate(requests) if self.cag_kv_reuse and cag_shares_prefix(r.messages)]
        rest = [i for i in range(len(requests)) if i not in set(reuse)]
        if reuse and self.static_cache:
            logger.info("covip_qwen3_vl: CAG with KV reuse decodes with a dynamic cache (its cache is cut back)")
        replies: list[Reply | None] = [None] * len(requests)
        if rest:
            for i, reply in zip(rest, super().generate_cag([requests[i] for i in rest]), strict=True):
                replies[i] = reply
        for batch in self.batches([requests[i] for i in reuse]):
            chunk = [reuse[j] for j in batch]
            for i, reply in zip(chunk, self._cag_batch([requests[i] for i in chunk]), strict=True):
                replies[i] = reply
        return replies  # type: ignore[return-value]

    @torch.inference_mode()
    def _cag_batch(self, requests: list[ChatRequest]) -> list[Reply]:
        """Both CAG stages of one batch, encoding the shared prefix once."""
        first = [stage1_request(r, self.cag_caption_tokens) for r in requests]
        encoded = [self.encode(r.messages) for r in first]
        vision_end = self.tokenizer.convert_tokens_to_ids("<|vision_end|>")
        cuts = []
        for e in encoded:
            ends = (e.ids == vision_end).nonzero()
            if not len(ends):
                raise ValueError("a CAG conversation must contain the query image")
            cuts.append(int(ends[-1]) + 1)  # the prefix ends with the query image
        rows = [(e.ids[:c], e.mm[:c], e.ids[c:], e.mm[c:]) for e, c in zip(encoded, cuts, strict=True)]
        inputs = self.collate(rows)
        prefix_len = max(c for c in cuts)
        out = self.model.generate(
            **self.device_inputs(inputs),
            **self.device_inputs(self.vision_inputs(encoded, self.model.dtype)),
            **self.generate_kwargs(first[0].gen_kwargs),
            return_dict_in_generate=True,
        )
        captions = self.replies(out.sequences, inputs["input_ids"].shape[1], [len(e) for e in encoded])
        core = next(m for m in self.model.modules() if hasattr(m, "rope_deltas"))
        rope_deltas = core.rope_deltas
        cache = out.past_key_values
        for layer in cache.layers:  # keep the prefix columns only
            layer.keys = layer.keys[..., :prefix_len, :]
            layer.values = layer.values[..., :prefix_len, :]
        del out

        second = [stage2_request(r, c.text) for r, c in zip(requests, captions, strict=True)]
        rows2 = []
        marker = "<|vision_end|>"
        for r1, r2, (pid, pmm, _, _) in zip(first, second, rows, strict=True):
            text1, text2 = (self.render(r.messages) for r in (r1, r2))
            cut = text2.rindex(marker) + len(marker)
            if text1[:cut] != text2[:cut]:
                raise ValueError(
                    "the chat template renders CAG stages 1 and 2 with different prefixes; set cag_kv_reuse=false"
                )
            # special tokens split the text, so the suffix tokenizes alone as it does in the whole text
            suffix = self.tokenizer(text2[cut:], return_tensors="pt")["input_ids"][0]
            rows2.append((pid, pmm, suffix, torch.zeros_like(suffix)))
        inputs2 = self.collate(rows2)
        core.rope_deltas = rope_deltas  # the suffix has no images: its 3D positions are text positions + delta
        out2 = self.model.generate(
            **self.device_inputs(inputs2, with_types=False),
            past_key_values=cache,
            **self.generate_kwargs(requests[0].gen_kwargs),
        )
        suffix_tokens = [int(r[2].shape[0]) for r in rows2]
        answers = self.replies(out2, inputs2["input_ids"].shape[1], suffix_tokens)
        logger.debug("CAG with KV reuse: prefix of %d columns encoded once for %d requests", prefix_len, len(requests))
        return [c.plus(a) for c, a in zip(captions, answers, strict=True)]
