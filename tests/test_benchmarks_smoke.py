"""The GPU benchmarks' CPU smoke modes: each script runs end to end with 2-layer models and the tiny tokenizer,
importing `covip.*` exactly as on the GPU machine, where covip is not installed: the interpreter runs without
`site` (`-S`), so the editable install's `.pth` finder is not there, in the script or in the processes it
spawns, and only `benchmarks/worktree.py` provides covip. Nothing is measured here; the scripts are checked
before GPU time is spent on them."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
# site-packages as a plain path entry (no .pth file runs), and whatever PYTHONPATH already held
PYTHONPATH = os.pathsep.join(p for p in (sysconfig.get_paths()["purelib"], os.environ.get("PYTHONPATH")) if p)
ENV = {
    **os.environ,
    "PYTHONPATH": PYTHONPATH,
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
# Without `site`, the venv's CPU-torchvision shim (a .pth file, scripts/torchvision_cpu_shim.py) must be applied
# by hand; it concerns this machine's CPU torch only. Then the script runs as __main__.
NO_SITE = (
    "import runpy, sys, types; sys.modules.setdefault('torchvision._meta_registrations', "
    "types.ModuleType('torchvision._meta_registrations')); sys.argv = sys.argv[1:]; "
    "runpy.run_path(sys.argv[0], run_name='__main__')"
)
# lmms-eval's built-in qwen3_vl module imports decord (for videos) at the top: without it the built-in cannot run
needs_builtin = pytest.mark.skipif(
    importlib.util.find_spec("decord") is None,
    reason="lmms-eval's qwen3_vl imports decord: pip install decord==0.6.0 to check the built-in's path",
)


def script(*args: str | Path, timeout: int = 600) -> str:
    """Run a benchmark script (or `-c CODE`) as on the GPU machine: covip is not installed there."""
    command = [*map(str, args)] if args[0] == "-c" else ["-c", NO_SITE, *map(str, args)]
    proc = subprocess.run(
        [sys.executable, "-S", *command], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def throughput_inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    script(BENCH / "qwen3_vl_throughput.py", "prepare", "--out", out, "--samples", 2, "--smoke")
    return out


@needs_builtin
def test_throughput_smoke_runs_the_real_builtin_and_our_adapter(throughput_inputs: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    args = ["--builtin-batches", 2, "--our-batches", 2, "--our-samples", 4, "--cag-batch", 2, "--cag-repeats", 1]
    script(BENCH / "qwen3_vl_throughput.py", "run", "--inputs", throughput_inputs, "--out", out, "--smoke", *args)
    report = json.loads(out.read_text())
    assert report["prompt_tokens_ours"] == report["prompt_tokens_builtin"], "both paths see the same prompts"
    assert report["builtin"]["2"]["output_tokens"] == [8] and report["ours"]["2"]["output_tokens"] == [8]
    assert report["cag"]["same_answers"] == 2 and report["covip_modules"] > 0


def test_judge_smoke_scores_and_generates(tmp_path: Path) -> None:
    inputs = tmp_path / "judge"
    script(BENCH / "judge_hf.py", "prepare", "--out", inputs, "--per-bucket", 1, "--smoke")
    out = tmp_path / "r.json"
    script(BENCH / "judge_hf.py", "run", "--inputs", inputs, "--out", out, "--smoke", "--sequential-tokens", 4)
    report = json.loads(out.read_text())
    assert report["questions"] == 90 and report["captions"] == 4
    score = report["score"]
    assert score["letters"]["error"] == 0 and sum(score["letters"].values()) == 90
    assert score["shared_prefixes"] == 4, "each caption's tokens are encoded once"
    assert report["one_at_a_time"]["questions"] == 2


@needs_builtin
def test_full_eval_smoke_runs_every_stage(throughput_inputs: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    args = ["--per-bucket", 1, "--batch", 2, "--new-tokens", 4, "--builtin-batch", 2, "--builtin-slice", 4]
    script(
        BENCH / "full_eval.py", "--tokenizer", throughput_inputs / "tokenizer", "--out", out, "--data", tmp_path / "d",
        "--smoke", "--sequential-tokens", 4, *args,
    )  # fmt: skip
    report = json.loads(out.read_text())
    assert list(report["stages"]) == ["load_policy", "generate", "load_judge", "judge", "aggregate"]
    assert report["samples"] == 4 and report["questions"] == 90 and report["output_tokens"] == [4]
    assert sorted(report["accuracy_by_bucket"]) == ["1", "2", "3", "4"]
    assert report["reference_way_extrapolated"]["builtin_qwen3_vl"]["slice_samples"] == 4


def test_trainer_step_smoke_compares_the_rollout_paths(tmp_path: Path) -> None:
    inputs, out = tmp_path / "trainer", tmp_path / "r.json"
    script(BENCH / "trainer_step.py", "prepare", "--out", inputs, "--samples", 2, "--smoke")
    runs = ("reference_dynamic", "reference")
    args = ["--inputs", inputs, "--out", out, "--smoke", "--runs", ",".join(f"{r}:1" for r in runs)]
    script(BENCH / "trainer_step.py", "run", *args)
    report = json.loads(out.read_text())
    assert [report[k]["rollout_cache"] for k in runs] == ["dynamic", "static"]
    assert all(len(report[k]["steps"]) == 1 for k in runs) and report["covip_modules"] > 0


CATCH = """
import sys
sys.path.insert(0, sys.argv[1])
import worktree
worktree.use_working_tree()
sys.meta_path[0].dirs.pop("covip.model_adapters")  # the mapping the trainer benchmark once missed
try:
    import covip.model_adapters.processes
except ModuleNotFoundError as exc:
    print("caught:", exc)
"""


def test_a_package_missing_from_the_import_map_fails_here_as_on_the_gpu() -> None:
    assert "caught: No module named 'covip.model_adapters'" in script("-c", CATCH, BENCH)


# ---- benchmarks/scale_out.py: the launch commands of the 2-GPU runs, with 2 CPU processes (gloo) ------------------
# Left out to save CI time, as their launch paths are tested elsewhere: the `moe` part (the `eval` part's one-process
# launch with `device_map=auto` added, which has nothing to split on a CPU) and the `resume` run (kill and resume
# under a 2-process `accelerate launch`: tests/test_multi_process_training.py).
needs_deepspeed = pytest.mark.skipif(
    importlib.util.find_spec("deepspeed") is None,
    reason="the ZeRO-2 run needs DeepSpeed (benchmarks/README.md: the wheel built with DS_BUILD_OPS=0, and hjson)",
)


@pytest.fixture(scope="module")
def scale_out_inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("scale_out")
    script(BENCH / "trainer_step.py", "prepare", "--out", out, "--samples", 2, "--smoke")
    return out


def scale_out_args(part: str, inputs: Path, tmp_path: Path, *args: str | int) -> list:
    """`benchmarks/scale_out.py PART --smoke ...` writing under tmp_path, its report to tmp_path/PART.json."""
    out, work = tmp_path / f"{part}.json", tmp_path / "work"
    return [BENCH / "scale_out.py", part, "--inputs", inputs, "--work", work, "--out", out, "--smoke", *args]


def scale_out(part: str, inputs: Path, tmp_path: Path, *args: str | int) -> dict:
    script(*scale_out_args(part, inputs, tmp_path, *args))
    return json.loads((tmp_path / f"{part}.json").read_text())


def test_scale_out_eval_two_processes_give_the_one_process_run(scale_out_inputs: Path, tmp_path: Path) -> None:
    report = scale_out("eval", scale_out_inputs, tmp_path, "--per-bucket", 2, "--batch", 2, "--new-tokens", 4)
    one, two = report["runs"]["1"], report["runs"]["2"]
    assert "accelerate.commands.launch --multi_gpu --num_processes 2" in two["command"]
    assert one["requests_per_rank"] == [8] and two["requests_per_rank"] == [4, 4], "each rank its shard"
    assert len(two["warmup_generate_s_per_rank"]) == 2 and two["covip_modules"] > 0
    same = report["same_as_one_gpu"]["2"]
    assert same["samples"] == 8 and same["metrics"] == 32 and not same["problems"]
    assert same["records_identical"] and same["metrics_identical"], same
    assert report["scaling"]["2"] > 0


def test_scale_out_train_under_the_ddp_config(scale_out_inputs: Path, tmp_path: Path) -> None:
    ddp = scale_out("train", scale_out_inputs, tmp_path, "--runs", "ddp", "--steps", 2)["ddp"]
    assert f"--config_file {ROOT}/trainer/configs/accelerate/ddp.yaml --num_processes 2" in ddp["command"]
    assert ddp["processes"] == 2 and len(ddp["step_time_s"]) == 2 and ddp["completions_per_step"] == 8
    assert ddp["covip_modules"] > 0


@needs_deepspeed
def test_scale_out_train_zero2(scale_out_inputs: Path, tmp_path: Path) -> None:
    zero2 = scale_out("train", scale_out_inputs, tmp_path, "--runs", "zero2", "--steps", 1)["zero2"]
    assert zero2["processes"] == 2 and len(zero2["step_time_s"]) == 1
    assert sorted(p.name for p in (tmp_path / "work" / "train" / "zero2" / "run").rglob("*zero_pp_rank_*")) == [
        "bf16_zero_pp_rank_0_mp_rank_00_optim_states.pt",
        "bf16_zero_pp_rank_1_mp_rank_00_optim_states.pt",
    ], "optimizer state sharded over the two ranks"


@pytest.mark.skipif(importlib.util.find_spec("deepspeed") is not None, reason="DeepSpeed is installed here")
def test_scale_out_zero2_without_deepspeed_says_so(scale_out_inputs: Path, tmp_path: Path) -> None:
    args = scale_out_args("train", scale_out_inputs, tmp_path, "--runs", "zero2")
    command = [sys.executable, "-S", "-c", NO_SITE, *args]
    proc = subprocess.run(list(map(str, command)), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((tmp_path / "train.json").read_text())
    assert report["zero2"]["error"].startswith("not run: DeepSpeed is not installed")
