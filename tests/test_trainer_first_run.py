"""A trainer user's first run: the documented CPU smoke run with no download, the errors met before it, and the
fast rollout path (static cache, eval-mode policy) switched on where it applies."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from covip.model_adapters.qwen3_vl import cache_length
from covip.model_adapters.tiny_qwen3 import build_tiny_qwen3_vl
from covip.trainer.cli import example_config, main
from covip.trainer.config import resolve
from covip.trainer.data import build_rows, load_samples
from covip.trainer.train import build_trainer, longest_rollout, rollout_cache

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def documented_commands() -> list[list[str]]:
    """The first-run commands exactly as the shipped `cpu_smoke` config documents them (the README shows them)."""
    lines = example_config("cpu_smoke").read_text().splitlines()
    return [shlex.split(line[2:]) for line in lines if line.startswith("# covip-")]


def test_the_documented_cpu_first_run_trains_without_a_download(tmp_path: Path) -> None:
    commands = documented_commands()
    assert [c[:2] for c in commands] == [
        ["covip-data", "build"],
        ["covip-train", "make-tiny-model"],
        ["covip-train", "--config"],
    ]
    for command in commands:
        proc = subprocess.run(
            [str(BIN / command[0]), *command[1:]], cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=600
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "runs" / "smoke"
    assert (run / "checkpoint-2" / "covip_checkpoint.json").is_file(), "two steps, then the final checkpoint"
    assert "run directory: runs/smoke" in proc.stdout


def test_missing_split_and_unreachable_hub_name_their_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["--data", str(empty), "--output_dir", str(tmp_path / "r0"), "--use_cpu", "true"]) == 2
    err = capsys.readouterr().err
    assert f"covip-data build --split train --tasks caption --out {empty}" in err and "Traceback" not in err

    from covip.tasks.builder.build import BuildConfig, build

    data = tmp_path / "data"
    build(BuildConfig(out=data, seed=1, per_bucket=1, split="train", buckets=(1,), tasks=("caption",)))
    assert main(["--data", str(data), "--output_dir", str(tmp_path / "r1"), "--use_cpu", "true"]) == 2
    err = capsys.readouterr().err
    assert "cannot load the model 'Qwen/Qwen3-VL-8B-Instruct'" in err and "covip-train make-tiny-model DIR" in err


def test_fast_rollouts_use_the_static_cache_with_the_policy_in_eval_mode(tmp_path: Path) -> None:
    from covip.tasks.builder.build import BuildConfig, build

    cpu = {"use_cpu": True, "bf16": False, "gradient_checkpointing": False}
    assert rollout_cache(resolve(cpu), None) is None, "auto on a CPU: TRL's dynamic cache"
    assert rollout_cache(resolve({**cpu, "rollout_cache": "dynamic"}), None) is None
    with pytest.raises(ValueError, match="rollout_cache must be one of auto, static, dynamic"):
        resolve({"rollout_cache": "compiled"})

    data = tmp_path / "data"
    build(BuildConfig(out=data, seed=2, per_bucket=1, split="train", buckets=(1,), tasks=("caption",)))
    config = resolve(
        {
            **cpu,
            "rollout_cache": "static",
            "preset": "gspo",
            "steps_per_generation": 1,
            "model": str(build_tiny_qwen3_vl(tmp_path / "tiny")),
            "data": str(data),
            "output_dir": str(tmp_path / "run"),
            "max_steps": 1,
            "max_completion_length": 6,
            "max_pixels": 1024,
            "lora_r": 4,
            "lora_alpha": 8,
            "save_steps": 100,
        }
    )
    trainer = build_trainer(config)
    assert trainer.generation_config.cache_implementation == "static"
    assert trainer.generation_config.disable_compile is False, "TRL turns compilation off; the fast path needs it"
    policy = trainer.accelerator.unwrap_model(trainer.model)
    seen = []
    generate = policy.generate

    def spy(*args, **kwargs):
        config = kwargs["generation_config"]
        seen.append((policy.training, any(m.training for m in policy.modules()), config, kwargs["input_ids"].shape[1]))
        return generate(*args, **kwargs)

    policy.generate = spy
    try:
        trainer.train()
    finally:
        del policy.generate
    [(training, any_training, generation_config, prompt_tokens)] = seen
    assert not training and not any_training, "rollouts sample the policy without dropout"
    assert generation_config.cache_implementation == "static"
    rows = build_rows(load_samples(str(data))[1], data)
    assert longest_rollout(rows, trainer.processing_class, 6) == prompt_tokens + 6, "the cache is sized exactly"
    assert generation_config.max_cache_len == cache_length(prompt_tokens + 6)
    assert policy.training, "training resumes in train mode"
    assert trainer.state.global_step == 1
