"""`covip-train` data-parallel: two processes under `accelerate launch --multi_gpu` (gloo on the CPU), killed after
a checkpoint and resumed by the same launch command, as a multi-GPU run would be."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from covip.model_adapters.tiny_qwen3 import build_tiny_qwen3_vl
from covip.trainer.checkpoints import MARKER, complete_checkpoints, read_marker

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent

# The trainer's own CLI, holding still after its first checkpoint so that the test can kill it there.
HOLD_AFTER_CHECKPOINT_1 = """
import sys, time
from transformers import TrainerCallback
from covip.trainer import train
from covip.trainer.cli import main

class Hold(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        if state.global_step == 1:
            time.sleep(600)

build = train.build_trainer
train.build_trainer = lambda config: build(config, callbacks=[Hold()])
sys.exit(main(sys.argv[1:]))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(script: Path, config: Path, log: Path) -> subprocess.Popen:
    """`accelerate launch --multi_gpu --num_processes 2 SCRIPT --config CONFIG`, in a process group of its own."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [str(BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2"]
    command += ["--main_process_port", str(free_port()), str(script), "--config", str(config)]
    with log.open("wb") as out:  # a file, not a pipe: a full pipe would block the children
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def test_two_processes_train_and_resume_after_a_kill(tmp_path: Path) -> None:
    from covip.tasks.builder.build import BuildConfig, build

    data = tmp_path / "data"
    build(BuildConfig(out=data, seed=3, per_bucket=1, split="train", tasks=("caption",)))
    run = tmp_path / "run"
    values = {
        "preset": "gspo",
        "steps_per_generation": 1,
        "model": str(build_tiny_qwen3_vl(tmp_path / "tiny")),
        "data": str(data),
        "output_dir": str(run),
        "max_samples": 2,
        "max_steps": 2,
        "save_steps": 1,
        "max_completion_length": 8,
        "max_pixels": 1024,
        "lora_r": 4,
        "lora_alpha": 8,
        "use_cpu": True,
        "bf16": False,
        "gradient_checkpointing": False,
    }
    config = tmp_path / "two.yaml"
    config.write_text(yaml.safe_dump(values))
    hold = tmp_path / "hold.py"
    hold.write_text(HOLD_AFTER_CHECKPOINT_1)
    first = launch(hold, config, tmp_path / "first.log")
    deadline = time.time() + 240
    try:
        while not (run / "checkpoint-1" / MARKER).is_file():
            assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            assert time.time() < deadline, "no checkpoint within 240 s"
            time.sleep(0.2)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the launcher and both ranks
        first.wait()
    assert [read_marker(c)["step"] for c in complete_checkpoints(run)] == [1], "killed after the first step"

    trainer = BIN / "covip-train"
    second = launch(trainer, config, tmp_path / "second.log")
    assert second.wait(timeout=300) == 0, (tmp_path / "second.log").read_text()[-3000:]
    log = (tmp_path / "second.log").read_text()
    assert "resuming from" in log and "checkpoint-1" in log
    assert log.count("training rows:") == 2, "one training process per rank"
    state = json.loads((run / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    assert [e["step"] for e in state["log_history"] if "loss" in e] == [1, 2], "continues the killed run's history"
    assert [read_marker(c)["step"] for c in complete_checkpoints(run)] == [1, 2]
