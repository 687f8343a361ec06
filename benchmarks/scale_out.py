"""Scale-out on two GPUs: data-parallel evaluation, the MoE split over GPUs, and data-parallel training, each
against the same thing on one GPU, through the commands users type under `accelerate launch`.

Parts (one subcommand each; every one writes its JSON after each run, so partial results survive):
- `eval`: `covip_qwen3_vl` (Qwen3-VL-8B architecture, random weights, bf16) over `covip_caption` on our builder's
  test split, through the real `lmms_eval` command (rule judge), in 1 process on 1 GPU and in 2 processes on 2
  GPUs (`accelerate launch --multi_gpu`). Throughput: logged samples over the slowest rank's `generate_until`
  time (target >= 1.9x on 2 GPUs); then metrics and sample logs of the 2-GPU run against the 1-GPU run
  (`read_run`). Each process first runs the same command once untimed (`--warmup`), so that the compiled
  static-cache step is not in the timed run.
- `moe`: the Qwen3-VL-30B-A3B architecture (Qwen3-VL-8B's vision tower and config with Qwen3-30B-A3B's language
  model) through the same command in one process with `device_map=auto`, seeing 1 GPU and then 2: throughput and
  peak memory per GPU.
- `train`: `covip-train` (gspo preset, LoRA) under `accelerate launch --config_file trainer/configs/accelerate/X`:
  `single` (single_gpu.yaml, 1 GPU), `ddp` and `zero2` (ddp.yaml, zero2.yaml, 2 GPUs): seconds per optimizer
  step (TRL's `step_time`), completions per second, peak memory per GPU, scaling against `single`; `resume`:
  the ddp run killed (SIGKILL, launcher and ranks) once its first checkpoint is complete, then the same launch
  command again, which must continue from the last complete checkpoint.
Models are saved once under `--work` (random weights, seeded), so every run of a part loads the same weights with
`pretrained=DIR` offline. `accelerate launch` starts this script's `worker` in each process: it imports covip from
the working tree (nothing is installed on the GPU machine), registers our lmms-eval models as the package's entry
point would, calls the command's own `main`, and writes what the process measured (generation time, peak memory).
The only thing it adds to the run is a clock around `covip_qwen3_vl`'s `generate_until`, which lmms-eval calls
once per run and process.

  python benchmarks/trainer_step.py prepare --out runs/trainer_bench    # here: train split + real tokenizer
  python benchmarks/scale_out.py eval --inputs runs/trainer_bench --out eval.json     # on 2 GPUs; moe, train too
  python benchmarks/scale_out.py train --inputs runs/trainer_bench --out train.json --runs single,ddp,zero2,resume
  ... --smoke: the same launch commands on CPU, 2 processes (gloo), tiny models (covip.model_adapters.tiny_qwen3)
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from capeval_set import build_test_set  # noqa: E402
from qwen3_vl_8b import QWEN3_30B_A3B, build_qwen3_vl_8b  # noqa: E402
from worktree import check_working_tree, use_working_tree  # noqa: E402

# At import, so that the builder's worker processes and every process `accelerate launch` starts (they all run
# this script) import covip from the working tree: on the GPU machine nothing else provides it.
use_working_tree()

ROOT = Path(__file__).resolve().parents[1]
ACCELERATE_CONFIGS = ROOT / "trainer" / "configs" / "accelerate"
TARGET_SCALING = 1.9
# The language model of Qwen3-VL-30B-A3B is Qwen3-30B-A3B's; its vision tower is Qwen3-VL-8B's, projecting to 2048.
MOE_TEXT_KEYS = (
    "hidden_size",
    "intermediate_size",
    "moe_intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "num_experts",
    "num_experts_per_tok",
    "decoder_sparse_step",
)
# NVLink multicast stays off on the shared GPU hosts, also in the environments given to launched processes.
NO_MULTICAST = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}


@dataclass(frozen=True)
class EvalPart:
    """What differs between the two lmms_eval parts: the model, its arguments, and how GPUs are used."""

    model: str  # "dense" or "moe"
    model_args: str
    data_parallel: bool  # one process per GPU (else one process that sees every GPU)
    warmup: bool


EVAL_PARTS = {
    "eval": EvalPart("dense", "", data_parallel=True, warmup=True),
    # dynamic cache on an MoE model (`static_cache=auto` says why): nothing compiles, so no warm-up run
    "moe": EvalPart("moe", "device_map=auto", data_parallel=False, warmup=False),
}
# name -> (accelerate config, processes); `resume` is the ddp run killed and launched again
TRAIN_RUNS = {"single": ("single_gpu", 1), "ddp": ("ddp", 2), "zero2": ("zero2", 2), "resume": ("ddp", 2)}


# ---- models ---------------------------------------------------------------------------------------


def build_moe(tokenizer_dir: Path, device: str) -> tuple[Any, Any]:
    """Qwen3-VL-30B-A3B with random weights (bf16, sdpa): Qwen3-VL-8B's config (vision tower, rope, token ids) and
    processor, with Qwen3-30B-A3B's language model. 31.07 B parameters."""
    import torch
    from transformers import Qwen3VLMoeConfig, Qwen3VLMoeForConditionalGeneration

    dense, processor = build_qwen3_vl_8b(tokenizer_dir, "meta")  # the config and processor; no weights
    c = dense.config
    config = Qwen3VLMoeConfig(
        text_config={**c.text_config.to_dict(), **{k: QWEN3_30B_A3B[k] for k in MOE_TEXT_KEYS}},
        vision_config={**c.vision_config.to_dict(), "out_hidden_size": QWEN3_30B_A3B["hidden_size"]},
        image_token_id=c.image_token_id,
        video_token_id=c.video_token_id,
        vision_start_token_id=c.vision_start_token_id,
        vision_end_token_id=c.vision_end_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen3VLMoeForConditionalGeneration._from_config(
            config, dtype=torch.bfloat16, attn_implementation="sdpa"
        )
    model.generation_config = dense.generation_config
    return model.eval(), processor


def saved_model(kind: str, inputs: Path, work: Path, smoke: bool) -> tuple[Path, float]:
    """The random-weight model of `kind` saved under `work` (built once: every run loads the same weights), and the
    seconds it took to build and save it here (0 when it was already there)."""
    out = work / "models" / (f"tiny_{kind}" if smoke else kind)
    if (out / "config.json").is_file():
        return out, 0.0
    t0 = time.perf_counter()
    partial = out.with_name(out.name + ".partial")  # a killed save is never taken for a model
    shutil.rmtree(partial, ignore_errors=True)
    if smoke:
        from covip.model_adapters.tiny_qwen3 import build_tiny_qwen3_vl

        build_tiny_qwen3_vl(partial, moe=kind == "moe")
    else:
        import torch

        build = build_moe if kind == "moe" else build_qwen3_vl_8b
        model, processor = build(inputs / "tokenizer", "cuda")
        model.save_pretrained(partial)
        processor.save_pretrained(partial)
        del model
        gc.collect()
        torch.cuda.empty_cache()
    partial.rename(out)
    return out, round(time.perf_counter() - t0, 1)


# ---- launching -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_command(accelerate: list[str], processes: int, worker: list[str]) -> list[str]:
    """`accelerate launch ACCELERATE --num_processes N benchmarks/scale_out.py worker ...`."""
    return [
        sys.executable, "-m", "accelerate.commands.launch", *accelerate, "--num_processes", str(processes),
        "--main_process_port", str(free_port()), str(Path(__file__).resolve()), "worker", *worker,
    ]  # fmt: skip


def launch_env(work: Path, gpus: int, smoke: bool) -> dict[str, str]:
    env = {
        **os.environ,
        **NO_MULTICAST,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "COVIP_HOME": str(work / "home"),
        "COVIP_JUDGE": "rule",
    }
    if not smoke:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(gpus))
    return env


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:  # a file, not a pipe: a full pipe would block the ranks
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    """SIGKILL the launcher and every process under it. Killing the launcher's process group is not enough:
    torchrun starts each rank in a session of its own, and a rank orphaned that way goes on training."""
    import psutil  # a dependency of accelerate

    if proc.poll() is None:
        family = [proc, *psutil.Process(proc.pid).children(recursive=True)]  # before any dies and is re-parented
        for member in family:
            try:
                os.kill(member.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    proc.wait()


def run_launch(command: list[str], env: dict[str, str], log: Path, timeout: float) -> dict[str, Any]:
    """Run one launch to its end (killed at `timeout`): exit status, wall time, the log's tail when it failed."""
    t0 = time.perf_counter()
    proc = start(command, env, log)
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        code = None
    finally:
        stop(proc)
    result: dict[str, Any] = {"command": " ".join(command), "exit": code, "wall_s": round(time.perf_counter() - t0, 1)}
    if code != 0:
        result["error"] = f"timed out after {timeout:.0f} s" if code is None else f"exit status {code}"
        result["log_tail"] = log.read_text(errors="replace")[-3000:]
    return result


def rank_records(folder: Path, processes: int) -> list[dict[str, Any]]:
    """What each rank's worker wrote; an error names the ranks that wrote nothing."""
    records = [json.loads(p.read_text()) for p in sorted(folder.glob("rank*.json"))]
    if len(records) != processes:
        raise RuntimeError(f"{folder}: {len(records)} of {processes} ranks wrote their record")
    return records


def fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def versions(*names: str) -> dict[str, str]:
    found = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "missing"
    return found


def machine(smoke: bool) -> str:
    import torch

    if smoke or not torch.cuda.is_available():
        return "cpu (smoke)"
    return f"{torch.cuda.device_count()} x {torch.cuda.get_device_name()}"


def write(report: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))


# ---- the worker (one per process, started by accelerate launch) ----------------------------------


def register_models() -> None:
    """Our lmms-eval models, as the package's entry point registers them where covip is installed."""
    from lmms_eval.models import MODEL_REGISTRY_V2

    from covip.model_adapters.registry import manifests

    for manifest in manifests():
        MODEL_REGISTRY_V2.register_manifest(manifest, overwrite=True)


class GenerationClock:
    """Wall time of every `covip_qwen3_vl.generate_until` call in this process (lmms-eval makes one per run).
    Replies come back on the CPU, so the time includes every GPU kernel of the generation."""

    def __init__(self) -> None:
        from covip.model_adapters.qwen3_vl import Qwen3VL

        self.calls: list[dict[str, Any]] = []
        generate_until = Qwen3VL.generate_until
        calls = self.calls

        def timed(adapter, requests):  # noqa: ANN001, ANN202 - lmms-eval's entry point, unchanged
            t0 = time.perf_counter()
            results = generate_until(adapter, requests)
            calls.append({"requests": len(requests), "seconds": round(time.perf_counter() - t0, 2)})
            return results

        Qwen3VL.generate_until = timed


def process_devices() -> list[int]:
    """The GPUs this process uses: its own in a data-parallel run, else every visible one (device_map)."""
    import torch

    from covip.model_adapters.processes import process_device, world_size

    if not torch.cuda.is_available():
        return []
    return [process_device().index] if world_size() > 1 else list(range(torch.cuda.device_count()))


def peak_memory(devices: list[int], reset: bool = False) -> dict[str, float]:
    import torch

    if reset:
        for i in devices:
            torch.cuda.reset_peak_memory_stats(i)
    return {f"cuda:{i}": round(torch.cuda.max_memory_allocated(i) / 2**30, 1) for i in devices}


def warmup_argv(argv: list[str]) -> list[str]:
    """The same lmms_eval arguments, writing under `<output_path>-warmup`."""
    return [f"{a}-warmup" if i and argv[i - 1] == "--output_path" else a for i, a in enumerate(argv)]


def worker(command: str, record: Path, warmup: bool, argv: list[str]) -> int:
    """Run `lmms_eval` (twice with `warmup`: untimed, then timed) or `covip-train` with these arguments, as their
    console scripts do, then write this rank's record."""
    rank = int(os.environ.get("RANK", "0"))
    devices = process_devices()
    runs = []
    if command == "lmms_eval":
        register_models()
        from covip.tasks.cli.lmms_eval import main

        clock = GenerationClock()
        for args in [warmup_argv(argv)] * warmup + [argv]:
            clock.calls.clear()
            peak_memory(devices, reset=True)
            code = main(list(args))
            runs.append({"exit": code, "generate": list(clock.calls), "peak_gib": peak_memory(devices)})
            gc.collect()
            if code:
                break
    else:
        from covip.trainer.cli import main

        code = main(list(argv))
        runs.append({"exit": code, "peak_gib": peak_memory(devices)})
    data = {"rank": rank, "devices": devices, "runs": runs, "covip_modules": len(check_working_tree())}
    record.mkdir(parents=True, exist_ok=True)
    (record / f"rank{rank}.json").write_text(json.dumps(data))
    return code


# ---- eval and moe ----------------------------------------------------------------------------------


def metric_values(results: dict[str, Any]) -> dict[str, float]:
    """`task/metric` -> value for every numeric metric of a results file (stderr left out)."""
    return {
        f"{task}/{key}": value
        for task, values in results.get("results", {}).items()
        for key, value in values.items()
        if "," in key and "stderr" not in key and isinstance(value, (int, float))
    }


def compare_runs(one: Path, two: Path) -> dict[str, Any]:
    """Metrics and per-sample records (caption, verdicts) of the run in `two` against the run in `one`."""
    from covip.tasks.results.run import read_run

    [a_file], [b_file] = sorted(one.rglob("*_results.json")), sorted(two.rglob("*_results.json"))
    a, b = read_run(a_file.parent), read_run(b_file.parent)
    va, vb = metric_values(json.loads(a_file.read_text())), metric_values(json.loads(b_file.read_text()))
    # sums over ranks gathered in another order may differ in the last bits
    differing = sorted(k for k in va.keys() | vb.keys() if k not in va or k not in vb or abs(va[k] - vb[k]) > 1e-9)
    first = {(t, r.sample_id): r for t, task in a.tasks.items() for r in task.records}
    second = {(t, r.sample_id): r for t, task in b.tasks.items() for r in task.records}
    changed = sorted(f"{t}/{s}" for t, s in first.keys() | second.keys() if first.get((t, s)) != second.get((t, s)))
    return {
        "metrics": len(va),
        "samples": len(first),
        "metrics_identical": not differing,
        "records_identical": not changed,
        "differing_metrics": {k: [va.get(k), vb.get(k)] for k in differing[:20]},
        "differing_samples": changed[:20],
        "differing_samples_count": len(changed),
        "problems": [str(p) for p in a.problems + b.problems],
    }


def eval_run(part: EvalPart, gpus: int, model: Path, data: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One lmms_eval launch on `gpus` GPUs: throughput of the timed run, peak memory per GPU, where it wrote."""
    from covip.tasks.results.run import read_run

    folder = fresh(args.work / args.command / f"gpus{gpus}")
    processes = gpus if part.data_parallel else 1
    model_args = ",".join(filter(None, [f"pretrained={model}", part.model_args]))
    lmms = ["--model", "covip_qwen3_vl", "--model_args", model_args, "--batch_size", str(args.batch)]
    lmms += ["--tasks", args.tasks]
    lmms += ["--gen_kwargs", f"max_new_tokens={args.new_tokens}", "--output_path", str(folder / "run"), "--log_samples"]
    worker_args = ["--record", str(folder / "ranks"), *(["--warmup"] * part.warmup), "lmms_eval", "--", *lmms]
    command = launch_command(["--multi_gpu"] * (processes > 1), processes, worker_args)
    env = {**launch_env(args.work, gpus, args.smoke), "COVIP_DATA": str(data)}
    result = {"gpus": gpus, "processes": processes, **run_launch(command, env, folder / "launch.log", args.timeout)}
    if result["exit"] != 0:
        return result
    records = rank_records(folder / "ranks", processes)
    [results_file] = sorted((folder / "run").rglob("*_results.json"))
    samples = sum(len(t.records) for t in read_run(results_file.parent).tasks.values())
    timed = [r["runs"][-1]["generate"] for r in records]
    if any(len(calls) != 1 for calls in timed):
        raise RuntimeError(f"expected one generate_until call per rank and run, got {timed}")
    slowest = max(calls[0]["seconds"] for calls in timed)
    result |= {
        "samples": samples,
        "requests_per_rank": [calls[0]["requests"] for calls in timed],
        "generate_s_per_rank": [calls[0]["seconds"] for calls in timed],
        "samples_per_s": round(samples / slowest, 3),
        "peak_gib": {k: v for r in records for k, v in r["runs"][-1]["peak_gib"].items()},
        "covip_modules": min(r["covip_modules"] for r in records),
        "output": str(folder / "run"),
    }
    if part.warmup:
        result["warmup_generate_s_per_rank"] = [r["runs"][0]["generate"][0]["seconds"] for r in records]
    return result


def run_eval(args: argparse.Namespace) -> int:
    part = EVAL_PARTS[args.command]
    report: dict[str, Any] = {
        "part": args.command,
        "machine": machine(args.smoke),
        "versions": versions("torch", "transformers", "accelerate", "lmms_eval"),
        "settings": {k: str(v) for k, v in vars(args).items() if k != "command"},
    }
    model, report["model_build_s"] = saved_model(part.model, args.inputs, args.work, args.smoke)
    data = build_test_set(args.data or args.work / f"test_set_{args.per_bucket}", args.per_bucket)
    runs: dict[int, dict[str, Any]] = {}
    for gpus in args.gpus:
        runs[gpus] = eval_run(part, gpus, model, data, args)
        report["runs"] = {str(g): r for g, r in runs.items()}
        write(report, args.out)
        print(json.dumps({k: v for k, v in runs[gpus].items() if k != "log_tail"}), flush=True)
    done = {g: r for g, r in runs.items() if r["exit"] == 0}
    if 1 in done and len(done) > 1:
        base = done[1]
        report["scaling"] = {str(g): round(r["samples_per_s"] / base["samples_per_s"], 3) for g, r in done.items()}
        report["target_scaling"] = TARGET_SCALING if part.data_parallel else None
        report["same_as_one_gpu"] = {
            str(g): compare_runs(Path(base["output"]), Path(r["output"])) for g, r in done.items() if g != 1
        }
    write(report, args.out)
    print(json.dumps(report, indent=2))
    return 0 if len(done) == len(runs) else 1


# ---- train -----------------------------------------------------------------------------------------


def train_values(model: Path, args: argparse.Namespace, output_dir: Path, steps: int, save_steps: int) -> dict:
    """covip-train's config: the gspo preset with LoRA, the rule judge, on the prepared train split."""
    smoke = args.smoke
    return {
        "preset": "gspo",
        "model": str(model),
        "data": str(args.inputs / "data"),
        "output_dir": str(output_dir),
        "max_steps": steps,
        "save_steps": save_steps,
        "max_completion_length": 8 if smoke else args.new_tokens,
        "num_generations": 4,
        "per_device_train_batch_size": 4,
        **({"steps_per_generation": 1} if smoke else {}),  # one prompt per rank and step: the smoke set is tiny
        "lora_r": 4 if smoke else 64,
        "lora_alpha": 8 if smoke else 128,
        "bf16": True,  # the accelerate configs' mixed precision, which DeepSpeed requires to match (CPU too)
        "use_cpu": smoke,
        "gradient_checkpointing": not smoke,
        **({"max_pixels": 1024} if smoke else {}),
        "judge": "rule",
        "recognition_ratio": 0.0,
        "report_to": "none",
        "resume": "auto",
        "seed": 0,
    }


def train_launch(name: str, model: Path, args: argparse.Namespace, steps: int, save_steps: int):
    """The folder, launch command and environment of train run `name`; its output directory starts empty."""
    import yaml

    config_name, processes = TRAIN_RUNS[name]
    folder = fresh(args.work / "train" / name)
    config = folder / "config.yaml"
    config.write_text(yaml.safe_dump(train_values(model, args, folder / "run", steps, save_steps)))
    worker_args = ["--record", str(folder / "ranks"), "covip-train", "--", "--config", str(config)]
    accelerate = ["--config_file", str(ACCELERATE_CONFIGS / f"{config_name}.yaml")]
    command = launch_command(accelerate, processes, worker_args)
    return folder, command, launch_env(args.work, processes, args.smoke)


def final_state(run: Path) -> dict[str, Any]:
    from covip.trainer.checkpoints import latest_checkpoint

    checkpoint = latest_checkpoint(run)
    if checkpoint is None:
        raise RuntimeError(f"{run}: no complete checkpoint")
    return json.loads((checkpoint / "trainer_state.json").read_text())


def measure_train(name: str, model: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Seconds per optimizer step (TRL's `step_time` on rank 0: rollouts, rewards, update), completions per
    second, and each rank's peak GPU memory."""
    from covip.trainer.config import load_yaml, resolve

    _, processes = TRAIN_RUNS[name]
    folder, command, env = train_launch(name, model, args, args.steps, args.steps)
    result = {"processes": processes, **run_launch(command, env, folder / "launch.log", args.timeout)}
    if result["exit"] != 0:
        return result
    records = rank_records(folder / "ranks", processes)
    history = final_state(folder / "run")["log_history"]
    times = [e["step_time"] for e in history if "step_time" in e]
    if len(times) != args.steps:
        raise RuntimeError(f"{folder}: {len(times)} step times logged for {args.steps} steps")
    config = resolve(load_yaml(folder / "config.yaml"))
    # completions are generated every `steps_per_generation` steps; the first cycle also warms up (compiles)
    steady = times[config.steps_per_generation :] or times[1:] or times
    completions = config.per_device_train_batch_size * config.gradient_accumulation_steps * processes
    mean = sum(steady) / len(steady)
    return result | {
        "step_time_s": [round(t, 2) for t in times],
        "s_per_step": round(mean, 2),
        "s_per_step_counted_from": len(times) - len(steady) + 1,
        "completions_per_step": completions,
        "completions_per_s": round(completions / mean, 3),
        "peak_gib": {k: v for r in records for k, v in r["runs"][-1]["peak_gib"].items()},
        "covip_modules": min(r["covip_modules"] for r in records),
    }


def kill_and_resume(model: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The ddp run with a checkpoint every step, killed once its first checkpoint is complete, then launched again
    with the same command: it must resume from the last complete checkpoint and continue the same history."""
    from covip.trainer.checkpoints import complete_checkpoints, read_marker

    steps = args.resume_steps
    folder, command, env = train_launch("resume", model, args, steps, save_steps=1)
    run = folder / "run"
    first = start(command, env, folder / "first.log")
    deadline = time.time() + args.timeout
    try:
        while not complete_checkpoints(run) and first.poll() is None and time.time() < deadline:
            time.sleep(0.2)
    finally:
        stop(first)  # SIGKILL to the launcher and every rank
    at_kill = [read_marker(c)["step"] for c in complete_checkpoints(run)]
    result: dict[str, Any] = {"killed_with_checkpoints": at_kill, "first_exit": first.returncode}
    if not at_kill:
        result["error"] = "no complete checkpoint before the first launch ended"
        result["log_tail"] = (folder / "first.log").read_text(errors="replace")[-3000:]
        return result
    result |= run_launch(command, env, folder / "second.log", args.timeout)
    if result["exit"] != 0:
        return result
    log = (folder / "second.log").read_text(errors="replace")
    resumed = re.findall(r"resuming from \S*?(checkpoint-\d+)", log)
    state = final_state(run)
    losses = [e["step"] for e in state["log_history"] if "loss" in e]
    result |= {
        "resumed_from": resumed,
        "final_step": state["global_step"],
        "logged_steps": losses,
        "continued": resumed == [f"checkpoint-{at_kill[-1]}"] * TRAIN_RUNS["resume"][1]  # said by every rank
        and state["global_step"] == steps
        and losses == list(range(1, steps + 1)),
    }
    return result


def run_train(args: argparse.Namespace) -> int:
    report: dict[str, Any] = json.loads(args.out.read_text()) if args.out.is_file() else {}
    report |= {
        "part": "train",
        "machine": machine(args.smoke),
        "versions": versions("torch", "transformers", "accelerate", "trl", "peft", "deepspeed"),
    }
    model, report["model_build_s"] = saved_model("dense", args.inputs, args.work, args.smoke)
    ok = True
    for name in args.runs:
        settings = {k: str(v) for k, v in vars(args).items() if k != "command"}
        if TRAIN_RUNS[name][0].startswith("zero") and importlib.util.find_spec("deepspeed") is None:
            result = {"error": "not run: DeepSpeed is not installed (benchmarks/README.md: the deepspeed wheel)"}
        elif name == "resume":
            result = kill_and_resume(model, args)
        else:
            result = measure_train(name, model, args)
        ok &= "error" not in result and result.get("continued", True)
        report[name] = {"settings": settings, **result}
        write(report, args.out)  # runs of earlier calls stay in the file; this call's replace theirs
        print(json.dumps({k: v for k, v in result.items() if k != "log_tail"}), flush=True)
    single = report.get("single", {}).get("completions_per_s")
    report["scaling"] = {
        name: round(report[name]["completions_per_s"] / single, 3)
        for name in ("ddp", "zero2")
        if single and report.get(name, {}).get("completions_per_s")
    }
    write(report, args.out)
    print(json.dumps(report, indent=2))
    return 0 if ok else 1


# ---- command line ----------------------------------------------------------------------------------


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    parts = {}
    for name, text in (("eval", "data-parallel lmms_eval"), ("moe", "the MoE split over GPUs"), ("train", "")):
        s = sub.add_parser(name, help=text or "covip-train with DDP and ZeRO-2, and a kill-and-resume")
        s.add_argument("--inputs", type=Path, required=True, help="a `trainer_step.py prepare` folder")
        s.add_argument("--out", type=Path, required=True, help="result JSON")
        s.add_argument("--work", type=Path, default=ROOT / "runs" / "scale_out", help="models, data and runs")
        s.add_argument("--timeout", type=float, default=540, help="seconds one launch may take")
        s.add_argument("--smoke", action="store_true", help="CPU, 2 processes (gloo), tiny models")
        parts[name] = s
    for name, (per_bucket, batch, tokens) in {"eval": (64, 64, 256), "moe": (16, 16, 128)}.items():
        s = parts[name]
        s.add_argument("--gpus", type=lambda v: [int(g) for g in v.split(",")], default=[1, 2])
        s.add_argument("--tasks", default="covip_caption")
        s.add_argument("--per-bucket", type=int, default=per_bucket, help="test samples per bucket (1-4 concepts)")
        s.add_argument("--data", type=Path, help="where the test set is built (default: under --work)")
        s.add_argument("--batch", type=int, default=batch, help="covip_qwen3_vl batch_size")
        s.add_argument("--new-tokens", type=int, default=tokens)
    t = parts["train"]
    t.add_argument("--runs", type=lambda v: v.split(","), default=list(TRAIN_RUNS), help=", ".join(TRAIN_RUNS))
    t.add_argument("--steps", type=int, default=8, help="optimizer steps per measured run")
    t.add_argument("--resume-steps", type=int, default=3, help="steps of the kill-and-resume run")
    t.add_argument("--new-tokens", type=int, default=512, help="max_completion_length")
    w = sub.add_parser("worker", help="what accelerate launch starts in each process")
    w.add_argument("--record", type=Path, required=True, help="folder of the ranks' records")
    w.add_argument("--warmup", action="store_true", help="lmms_eval: run the command once untimed first")
    w.add_argument("program", choices=("lmms_eval", "covip-train"))
    w.add_argument("argv", nargs=argparse.REMAINDER, help="-- then the command's arguments")
    args = p.parse_args()
    if args.command == "worker":
        return worker(args.program, args.record, args.warmup, args.argv[1:] if args.argv[:1] == ["--"] else args.argv)
    unknown = [r for r in getattr(args, "runs", []) if r not in TRAIN_RUNS]
    if unknown:
        p.error(f"unknown run(s) {unknown}; choose among {', '.join(TRAIN_RUNS)}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `timeout`: stop the launched process groups too
    args.work.mkdir(parents=True, exist_ok=True)
    return run_train(args) if args.command == "train" else run_eval(args)


if __name__ == "__main__":
    sys.exit(main())
