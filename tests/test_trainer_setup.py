"""The trainer's setup without training: vLLM options reach TRL, the shipped accelerate configs load, the CLI
fails cleanly on bad input, and evaluation cards state the model's size."""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path

import pytest
import torch
from accelerate.commands.config.config_args import load_config_from_file
from safetensors.torch import save_file
from trl import GRPOConfig
from trl.import_utils import is_vllm_available

from covip.model_adapters.tiny_qwen3 import build_tiny_qwen3_vl
from covip.trainer.cli import eval_parser, main
from covip.trainer.config import FIELDS, resolve
from covip.trainer.evaluate import card
from covip.trainer.train import build_trainer, grpo_args, rollout_kwargs

CPU = {"use_cpu": True, "bf16": False, "gradient_checkpointing": False}
VLLM = {
    "use_vllm": True,
    "vllm_mode": "server",
    "vllm_server_base_url": "http://gpu7:8123",
    "vllm_server_host": "gpu7",
    "vllm_server_port": 8123,
    "vllm_server_timeout": 30.0,
    "vllm_gpu_memory_utilization": 0.55,
    "vllm_tensor_parallel_size": 2,
    "vllm_max_model_length": 4096,
    "vllm_enable_sleep_mode": True,
}


def test_vllm_options_reach_trl_with_trl_defaults() -> None:
    ours = [name for name in FIELDS if name == "use_vllm" or name.startswith("vllm_")]
    assert sorted(ours) == sorted(VLLM), "a vLLM field without a test value"
    trl_fields = {f.name: f for f in dataclasses.fields(GRPOConfig)}
    for name in ours:
        assert FIELDS[name].default == trl_fields[name].default, f"{name}: our default differs from TRL's"
    args = grpo_args(resolve({**CPU, **VLLM}))
    assert {name: getattr(args, name) for name in VLLM} == VLLM
    assert grpo_args(resolve(CPU)).use_vllm is False


def test_vllm_rollouts_suppress_vision_tokens_and_keep_the_run_identity() -> None:
    model_config = type("Config", (), {"image_token_id": 7, "video_token_id": 8, "vision_start_token_id": 5})()
    assert rollout_kwargs(resolve(CPU), model_config) == {"suppress_tokens": [5, 7, 8]}
    assert rollout_kwargs(resolve({**CPU, "use_vllm": True}), model_config) == {
        "logit_bias": {5: -100.0, 7: -100.0, 8: -100.0}
    }, "vLLM's SamplingParams has no suppress_tokens"
    base = resolve({**CPU, "use_vllm": True})
    moved = resolve({**CPU, **VLLM, "vllm_max_model_length": None})
    assert base.config_hash() == moved.config_hash(), "where vLLM runs is not what is trained"
    assert base.config_hash() != resolve(CPU).config_hash(), "the rollout engine is"
    with pytest.raises(ValueError, match="vllm_mode"):
        resolve({"vllm_mode": "remote"})


@pytest.mark.skipif(is_vllm_available(), reason="vLLM is installed")
def test_use_vllm_without_vllm_fails_before_loading_anything(tmp_path: Path) -> None:
    config = resolve({**CPU, "use_vllm": True, "data": str(tmp_path / "missing"), "output_dir": str(tmp_path)})
    with pytest.raises(ImportError, match=r"pip install 'trl\[vllm\]'"):
        build_trainer(config)


def test_shipped_accelerate_configs_load_with_accelerate() -> None:
    shipped = Path(str(resources.files("covip.trainer") / "configs" / "accelerate"))
    expected = {"single_gpu": "NO", "ddp": "MULTI_GPU", "zero2": "DEEPSPEED", "zero3": "DEEPSPEED", "fsdp": "FSDP"}
    assert sorted(p.stem for p in shipped.glob("*.yaml")) == sorted(expected)
    for name, kind in expected.items():
        path = shipped / f"{name}.yaml"
        loaded = load_config_from_file(str(path))  # accelerate's own loader: unknown keys are an error
        assert loaded.distributed_type.value == kind, name
        assert loaded.num_processes == (1 if name == "single_gpu" else 4)
        assert f"--config_file trainer/configs/accelerate/{name}.yaml" in path.read_text().splitlines()[0]
        if kind == "DEEPSPEED":
            assert loaded.deepspeed_config["zero_stage"] == int(name[-1])


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--bf16", "maybe"], "--bf16"),
        (["--reward_weights", "[1]"], "--reward_weights"),
        (["--learning_rate", "fast"], "learning_rate"),
    ],
)
def test_a_bad_flag_is_a_clean_error_naming_it(argv: list[str], named: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*argv, "--print_config"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("covip-train: ") and named in err and "Traceback" not in err


def test_evaluate_without_checkpoints_is_a_clean_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "checkpoint-5").mkdir()  # killed mid-save: no marker
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "no complete checkpoint" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["evaluate", str(tmp_path), "--steps", "50,last"])
    assert exited.value.code == 2 and "comma-separated integers" in capsys.readouterr().err
    assert "leaderboard rejects" in " ".join(eval_parser().format_help().split())


def test_card_states_base_and_adapter_sizes(tmp_path: Path) -> None:
    from transformers import AutoModelForImageTextToText

    base = build_tiny_qwen3_vl(tmp_path / "base")
    total = sum(p.numel() for p in AutoModelForImageTextToText.from_pretrained(base).parameters())
    assert 1e5 < total < 1e6, "the tiny model's size changed: adapt the expected unit"
    checkpoint = tmp_path / "run" / "checkpoint-2"
    checkpoint.mkdir(parents=True)
    adapter = {"a.lora_A.weight": torch.zeros(4, 64), "a.lora_B.weight": torch.zeros(64, 4)}
    save_file(adapter, checkpoint / "adapter_model.safetensors")
    marker = {"step": 2, "base_model": str(base), "config_hash": "0" * 16, "config": {"preset": "gspo", "lora_r": 4}}
    size = card(tmp_path / "run", checkpoint, marker)["parameters"]
    assert size == f"{total / 1e3:.3g}K + 512 LoRA"
    unknown = card(tmp_path / "run", checkpoint, {**marker, "base_model": "nobody/not-cached"})
    assert "parameters" not in unknown, "a size we cannot read is left out, never guessed"
