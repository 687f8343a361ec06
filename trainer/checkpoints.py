"""Checkpoints that say what they are, and resuming from the latest complete one after a kill.

HF's Trainer writes `checkpoint-N/` (LoRA adapter, optimizer, scheduler, RNG, trainer state).
After it has finished, our callback writes `covip_checkpoint.json` there: base model, adapter
path, step, config hash, and the reward statistics logged since the previous checkpoint. The file
is written last and atomically, so a checkpoint without it was interrupted mid-save and is never
resumed from nor evaluated.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

MARKER = "covip_checkpoint.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def complete_checkpoints(run_dir: str | Path) -> list[Path]:
    """Checkpoint directories of a run that carry the marker, by step."""
    run = Path(run_dir)
    found = [(int(m.group(1)), p) for p in run.glob("checkpoint-*") if (m := _CHECKPOINT.match(p.name))]
    return [p for _, p in sorted(found) if (p / MARKER).is_file()]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    done = complete_checkpoints(run_dir)
    return done[-1] if done else None


def read_marker(checkpoint: str | Path) -> dict[str, Any]:
    return json.loads((Path(checkpoint) / MARKER).read_text(encoding="utf-8"))


def _write_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def reward_statistics(log_history: list[dict[str, Any]], after_step: int) -> dict[str, Any]:
    """Mean of each logged reward/judge/clip metric over the log entries after `after_step`."""
    keys = ("reward", "reward_std", "rewards/", "judge/", "clip_ratio/", "ratio/", "completions/mean_length", "kl")
    sums: dict[str, list[float]] = {}
    for entry in log_history:
        if entry.get("step", 0) <= after_step:
            continue
        for key, value in entry.items():
            if key.startswith(keys) and isinstance(value, (int, float)) and math.isfinite(value):
                sums.setdefault(key, []).append(float(value))
    stats = {key: sum(v) / len(v) for key, v in sorted(sums.items())}
    return {"steps": [after_step + 1, max((e.get("step", 0) for e in log_history), default=after_step)], **stats}


class CheckpointMarker(TrainerCallback):
    """Writes `covip_checkpoint.json` into every checkpoint once HF has saved it."""

    def __init__(self, base_model: str, config_hash: str, config: dict[str, Any]) -> None:
        self.base_model, self.config_hash, self.config = base_model, config_hash, config
        self.last_step = 0

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: ANN001 - HF callback signature
        self.last_step = state.global_step  # resumed runs start counting statistics here
        return control

    def on_save(self, args, state, control, **kwargs):  # noqa: ANN001 - HF callback signature
        if not state.is_world_process_zero:
            return control
        checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if not (checkpoint / "adapter_config.json").is_file():
            raise FileNotFoundError(f"{checkpoint}: no LoRA adapter was saved; cannot mark the checkpoint")
        _write_atomic(
            checkpoint / MARKER,
            {
                "base_model": self.base_model,
                "adapter": str(checkpoint.resolve()),
                "step": state.global_step,
                "epoch": state.epoch,
                "max_steps": state.max_steps,
                "config_hash": self.config_hash,
                "config": self.config,
                "rewards": reward_statistics(state.log_history, self.last_step),
            },
        )
        self.last_step = state.global_step
        return control
