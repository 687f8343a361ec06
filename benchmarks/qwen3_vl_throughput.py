"""Throughput and peak memory of `covip_qwen3_vl` against lmms-eval's built-in `qwen3_vl`, side by side.

Both run for real through lmms-eval's interface: `generate_until` on `Instance`s whose `doc_to_messages`
opens the images of a document, as a task does. The built-in is lmms-eval 0.7.3's chat `Qwen3_VL` class
itself (`lmms_eval.models.chat.qwen3_vl`); it is constructed around the shared model instead of loading
one (its `__init__` only loads weights and sets the attributes set here), so both paths use one copy of
the weights. Our adapter runs with its default options (`static_cache=auto`: the compiled decode on a GPU).

Model: Qwen3-VL-8B-Instruct's architecture with random weights, bf16, sdpa. Inputs: 2-concept captioning
prompts from our builder (6 context images with dialogues, then the query), real Qwen3 tokenizer. Every
request asks for 256 new tokens (`min_new_tokens` too, which only our adapter honours; random weights
almost never emit EOS, and the output token counts are reported), greedy. Every path gets the same warm-up:
one full untimed run of the same requests at the same batch size, then the timed run.

  python benchmarks/qwen3_vl_throughput.py prepare --out runs/bench          # here: inputs + tokenizer
  python benchmarks/qwen3_vl_throughput.py run --inputs runs/bench --out RESULT.json   # on the GPU
  ... prepare --out runs/bench_smoke --smoke; ... run --inputs runs/bench_smoke --out r.json --smoke   # CPU check
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from qwen3_vl_8b import build_qwen3_vl_8b, peak_gib, write_tokenizer  # noqa: E402
from worktree import check_working_tree, stub_lmms_eval_if_missing, use_working_tree  # noqa: E402

# At import, so that the builder's worker processes, which re-import this script (multiprocessing's spawn), also
# import covip from the working tree: on the GPU machine nothing else provides it.
use_working_tree()

ROOT = Path(__file__).resolve().parents[1]
NEW_TOKENS = 256
CAG_ANSWER_TOKENS = 32
BUILTIN_SYSTEM = "You are a helpful assistant."
DEVICE = "cuda"
TASK, SPLIT = "covip_bench", "test"
# qwen_vl_utils' defaults for image_patch_size 16 (the built-in passes no per-image limits in chat mode)
MIN_PIXELS, MAX_PIXELS = 4 * 32 * 32, 16384 * 32 * 32


def bootstrap_imports(inputs: Path | None = None) -> None:
    """Our packages from the working tree; lmms-eval's names stubbed only where it is not installed (the vLLM
    CPU venv, `tests/test_adapter_vllm.py`): this benchmark itself imports the real built-in and fails without."""
    use_working_tree()
    stub_lmms_eval_if_missing()


# ---- prepare (CPU, in the project's venv) ------------------------------------------------------


def prepare(out: Path, samples: int, smoke: bool) -> None:
    """Write 2-concept samples (images + dialogues) and the tokenizer under `out`."""
    from covip.tasks.builder.build import BuildConfig, build
    from covip.tasks.data.sources import load_caption_source

    build_dir = out / "build"
    if not (build_dir / "manifest.json").exists():
        build(BuildConfig(out=build_dir, seed=0, per_bucket=samples, buckets=(2,), tasks=("caption",)))
    source = load_caption_source(str(build_dir), "test")
    data = out / "data"
    rows = []
    for s in (s for s in source.samples if s.bucket == 2):
        for rel in [c.image for c in s.concepts] + [s.query_image]:
            (data / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source.root / rel, data / rel)
        rows.append(
            {
                "images": [str(data / c.image) for c in s.concepts],
                "dialogues": [c.dialogue for c in s.concepts],
                "query": str(data / s.query_image),
            }
        )
    shutil.rmtree(build_dir)
    for row in rows:  # paths relative to `out`, which travels to the GPU machine
        row["images"] = [str(Path(p).relative_to(out)) for p in row["images"]]
        row["query"] = str(Path(row["query"]).relative_to(out))
    (out / "inputs.json").write_text(json.dumps(rows))
    write_tokenizer(out / "tokenizer", smoke)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"{len(rows)} samples, {size / 2**20:.1f} MiB in {out}")


# ---- run (GPU) -----------------------------------------------------------------------------------


class Documents:
    """The benchmark's documents as lmms-eval's task_dict holds them, and `Instance`s that ask for them."""

    def __init__(self, inputs: Path, n: int) -> None:
        rows = json.loads((inputs / "inputs.json").read_text())
        self.root = inputs
        self.docs = [rows[i % len(rows)] for i in range(n)]
        self.task_dict = {TASK: {SPLIT: self.docs}}

    def messages(self, doc: dict) -> list[dict]:
        """A task's `doc_to_messages`: the captioning prompt, images opened from disk."""
        from covip.model_adapters.chat import load_image
        from covip.tasks.prompts import CAPTION_INSTRUCTION, user_turn

        images = [load_image(str(self.root / p)) for p in doc["images"]]
        return user_turn(images, doc["dialogues"], load_image(str(self.root / doc["query"])), CAPTION_INSTRUCTION)

    def instances(self, n: int, gen_kwargs: dict) -> list:
        from lmms_eval.api.instance import Instance

        return [
            Instance(
                request_type="generate_until",
                arguments=("", self.messages, dict(gen_kwargs), i, TASK, SPLIT),
                idx=0,
                metadata={"task": TASK, "doc_id": i, "repeats": 1},
            )
            for i in range(n)
        ]


def builtin_adapter(model, processor, batch_size: int, task_dict: dict, device: str = DEVICE):
    """lmms-eval's chat `Qwen3_VL` around an already loaded model: the attributes its `__init__` sets after
    `from_pretrained` (weights, processor, tokenizer, pixel limits, system prompt, batch size), nothing more."""
    import torch
    from lmms_eval.api.model import lmms
    from lmms_eval.models.chat.qwen3_vl import Qwen3_VL

    # transformers' own sdpa: our adapter, built on the same model, switches the language model's attention to
    # its packed GQA decode (model_adapters/gqa_decode.py), which the built-in does not have
    model.config.get_text_config()._attn_implementation = "sdpa"
    builtin = Qwen3_VL.__new__(Qwen3_VL)
    lmms.__init__(builtin)
    builtin._model, builtin.processor, builtin._tokenizer = model, processor, processor.tokenizer
    builtin._device, builtin.device_map = torch.device(device), device
    builtin.min_pixels, builtin.max_pixels, builtin.total_pixels = MIN_PIXELS, MAX_PIXELS, None
    builtin.max_num_frames, builtin.fps = 32, None
    builtin.enable_thinking, builtin.reasoning_prompt = None, None
    builtin.system_prompt, builtin.interleave_visuals = BUILTIN_SYSTEM, False
    builtin._config, builtin._max_length = model.config, 2048
    builtin.batch_size_per_gpu, builtin.use_cache = batch_size, True
    builtin.task_dict = task_dict
    return builtin


def builtin_prompt_tokens(processor, messages: list[dict]) -> int:
    """The built-in's prompt length for one request: its own message conversion, vision preprocessing and
    processor call (lmms_eval.models.chat.qwen3_vl.generate_until), for the same-inputs check."""
    from lmms_eval.protocol import ChatMessages
    from qwen_vl_utils import process_vision_info

    chat = ChatMessages(messages=[{"role": "system", "content": [{"type": "text", "text": BUILTIN_SYSTEM}]}, *messages])
    hf = [chat.to_hf_messages(video_kwargs={"min_pixels": MIN_PIXELS, "max_pixels": MAX_PIXELS, "nframes": 32})]
    text = processor.apply_chat_template(hf, tokenize=False, add_generation_prompt=True)
    images, _, _ = process_vision_info(hf, return_video_kwargs=True, image_patch_size=16, return_video_metadata=True)
    return int(processor(text=text, images=images, do_resize=False, return_tensors="pt")["input_ids"].shape[1])


def timed(fn, n: int, warm: bool = True) -> dict:
    """One full untimed run of `fn` (compilation, kernels, the allocator's pool at this shape), then the timed one.

    On CPU (--smoke) `fn` runs once: the script is checked, nothing is measured.
    """
    import torch

    if DEVICE == "cpu":
        t0 = time.perf_counter()
        result = fn()
        return {"samples": n, "seconds": round(time.perf_counter() - t0, 2), "samples_per_s": 0.0, "result": result}
    try:
        t_first = time.perf_counter()
        if warm:
            fn()
        torch.cuda.synchronize()
        first_s = time.perf_counter() - t_first
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        result = fn()
        torch.cuda.synchronize()
    except torch.OutOfMemoryError as exc:
        torch.cuda.empty_cache()
        return {"error": f"out of memory: {str(exc)[:120]}"}
    seconds = time.perf_counter() - t0
    return {
        "samples": n,
        "seconds": round(seconds, 2),
        "samples_per_s": round(n / seconds, 3),
        "peak_gib": peak_gib(),
        "warm_up_s": round(first_s, 1),
        "result": result,
    }


def output_tokens(results: list) -> list[int]:
    return sorted({r.token_counts.output_tokens for r in results if r.token_counts is not None})


def run(
    inputs: Path,
    out: Path,
    builtin_batches: list[int],
    our_batches: list[int],
    our_samples: int,
    cag_batch: int,
    repeats: int = 1,
) -> None:
    bootstrap_imports()
    from importlib.metadata import version

    import torch
    import transformers

    from covip.model_adapters.chat import with_system_prompt
    from covip.model_adapters.qwen3_vl import Qwen3VL

    report: dict = {
        "device": torch.cuda.get_device_name() if DEVICE == "cuda" else "cpu (smoke)",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "lmms_eval": version("lmms_eval"),
    }
    t0 = time.perf_counter()
    model, processor = build_qwen3_vl_8b(inputs / "tokenizer", DEVICE, (MIN_PIXELS, MAX_PIXELS))
    report["params_b"] = round(sum(p.numel() for p in model.parameters()) / 1e9, 2)
    report["build_s"] = round(time.perf_counter() - t0, 1)
    n_max = max(builtin_batches + our_batches + [our_samples, cag_batch])
    docs = Documents(inputs, n_max)
    gen = {"max_new_tokens": NEW_TOKENS, "min_new_tokens": NEW_TOKENS, "temperature": 0, "do_sample": False}

    def ours(batch: int, **options) -> Qwen3VL:
        adapter = Qwen3VL.from_loaded(
            model,
            processor,
            batch_size=batch,
            system_prompt=BUILTIN_SYSTEM,
            min_pixels=MIN_PIXELS,
            max_pixels=MAX_PIXELS,
            cag_caption_tokens=NEW_TOKENS,
            **options,
        )
        adapter.task_dict = docs.task_dict
        return adapter

    # same prompt on both sides: the token counts of a few requests
    probe = [docs.messages(d) for d in docs.docs[:2]]
    report["prompt_tokens_ours"] = [len(ours(1).encode(with_system_prompt(m, BUILTIN_SYSTEM))) for m in probe]
    report["prompt_tokens_builtin"] = [builtin_prompt_tokens(processor, m) for m in probe]

    report["builtin"] = {}
    for b in builtin_batches:
        adapter = builtin_adapter(model, processor, b, docs.task_dict, DEVICE)
        report["builtin_attention"] = model.config.get_text_config()._attn_implementation
        r = timed(lambda a=adapter, b=b: a.generate_until(docs.instances(b, gen)), b)
        r["output_tokens"] = output_tokens(r.pop("result", None) or [])
        report["builtin"][b] = r
        print("builtin", b, r, flush=True)
    report["ours"] = {}
    for b in our_batches:
        adapter = ours(b)
        report["ours_decode"] = "static cache, compiled step" if adapter.static_cache else "dynamic cache"
        n = max(b, our_samples)  # at least two batches, so that preparing the next one overlaps the GPU
        r = timed(lambda a=adapter, n=n: a.generate_until(docs.instances(n, gen)), n)
        r["output_tokens"] = output_tokens(r.pop("result", None) or [])
        report["ours"][b] = r
        print("ours", b, r, flush=True)

    best = {k: max((r.get("samples_per_s", 0) for r in report[k].values()), default=0) for k in ("builtin", "ours")}
    report["best_samples_per_s"] = best
    if best["builtin"] and best["ours"]:
        report["speedup_best_vs_best"] = round(best["ours"] / best["builtin"], 2)
    if cag_batch:
        report["cag"] = measure_cag(ours(cag_batch, static_cache="false"), docs, cag_batch, repeats, gen)
    report["covip_modules"] = len(check_working_tree())
    write_report(report, out)


def measure_cag(adapter, docs: Documents, b: int, repeats: int, gen: dict) -> dict:
    """CAG: stage 1 = 256-token caption, stage 2 = 32-token answer; direct = the 256-token caption alone.

    The four are measured in interleaved rounds and each keeps its median time: repeated runs of one
    configuration vary by tens of percent on this machine, so a single run each cannot order them.
    """
    from covip.model_adapters.cag import stage1_request, two_pass
    from covip.model_adapters.chat import ChatRequest
    from covip.tasks.prompts import cag_messages, parse_user_turn

    question = "Where did I last see the one in the new image?"
    msgs = [docs.messages(d) for d in docs.docs[:b]]
    parsed = [parse_user_turn(m) for m in msgs]
    answer = {**gen, "max_new_tokens": CAG_ANSWER_TOKENS, "min_new_tokens": CAG_ANSWER_TOKENS}

    def cag() -> list:
        return [ChatRequest(cag_messages(i, d, q, question), answer) for i, d, q in parsed]

    c: dict = {"batch": b, "repeats": repeats}
    for round_ in range(repeats):
        for name, fn in (
            ("direct", lambda: adapter.generate_chat([ChatRequest(m, gen) for m in msgs])),
            ("stage1_only", lambda: adapter.generate_chat([stage1_request(r, NEW_TOKENS) for r in cag()])),
            ("cag_kv_reuse", lambda: adapter.generate_cag(cag())),
            ("cag_two_pass", lambda: two_pass(adapter.generate_chat, cag(), NEW_TOKENS)),
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
            print("cag", name, round_, r, flush=True)
    if all("seconds" in c[k] for k in ("direct", "cag_kv_reuse", "cag_two_pass")):
        c["reuse_over_direct"] = round(c["cag_kv_reuse"]["seconds"] / c["direct"]["seconds"], 3)
        c["two_pass_over_direct"] = round(c["cag_two_pass"]["seconds"] / c["direct"]["seconds"], 3)
        c["same_answers"] = sum(
            x == y for x, y in zip(c["cag_kv_reuse"]["texts"], c["cag_two_pass"]["texts"], strict=True)
        )
    for k in ("direct", "stage1_only", "cag_kv_reuse", "cag_two_pass"):
        c[k].pop("texts", None)
    return c


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
    p.add_argument("--smoke", action="store_true", help="the tiny test tokenizer instead of the real Qwen3 one")
    r = sub.add_parser("run")
    r.add_argument("--inputs", type=Path, default=ROOT / "runs" / "bench")
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--builtin-batches", default="128")
    r.add_argument("--our-batches", default="128")
    r.add_argument("--our-samples", type=int, default=256, help="requests per timed run of ours (>= 2 batches)")
    r.add_argument("--cag-batch", type=int, default=0, help="batch of the CAG measurement; 0 skips it")
    r.add_argument("--cag-repeats", type=int, default=3, help="interleaved rounds of the CAG measurement (median)")
    r.add_argument("--smoke", action="store_true", help="CPU, 2-layer model, 8 tokens: checks the script only")
    args = parser.parse_args()
    if args.cmd == "prepare":
        prepare(args.out, args.samples, args.smoke)
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
            args.our_samples,
            args.cag_batch,
            args.cag_repeats,
        )


if __name__ == "__main__":
    main()
