"""Evaluate every checkpoint of a run with lmms-eval, into directories the leaderboard accepts.

Each complete checkpoint (one with `covip_checkpoint.json`) gets its own lmms-eval run through
the `lmms_eval` console script (a subprocess, so one checkpoint's memory is freed before the
next) with `--model covip_qwen3_vl --model_args pretrained=<base>,lora=<checkpoint>` and
`--log_samples`. lmms-eval writes `<stamp>_results.json` and the sample logs under
`RUN_DIR/eval/checkpoint-N/<model>/`; we add a `card.yaml` there naming the checkpoint, so the
directory is a leaderboard submission as it stands. A checkpoint that already has results is
skipped (a killed evaluation resumes), and a run that wrote no results file is an error even
though lmms-eval exits 0.
"""

from __future__ import annotations

import datetime
import logging
import math
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from covip.trainer.checkpoints import complete_checkpoints, read_marker

logger = logging.getLogger(__name__)
MODEL = "covip_qwen3_vl"
RESULTS_GLOB = "*_results.json"


@dataclass(frozen=True)
class EvalRequest:
    """What to evaluate each checkpoint on, and how."""

    tasks: str = "covip_caption"
    model_args: str = ""  # extra `k=v,...` for the adapter (batch_size, max_pixels, ...)
    limit: int | None = None
    steps: tuple[int, ...] = ()  # only these checkpoint steps (empty: all)
    extra_args: tuple[str, ...] = ()  # passed to lmms_eval as they are


def lmms_eval_command() -> str:
    """The `lmms_eval` console script of this environment (CoViP tasks registered, honest exit status)."""
    beside = Path(sys.executable).parent / "lmms_eval"
    found = str(beside) if beside.is_file() else shutil.which("lmms_eval")
    if not found:
        raise FileNotFoundError("no `lmms_eval` console script found; is covip-bench installed in this environment?")
    return found


def results_files(directory: Path) -> list[Path]:
    return sorted(directory.rglob(RESULTS_GLOB)) if directory.is_dir() else []


def tensor_elements(directory: Path) -> int | None:
    """Elements of all tensors in a directory's safetensors files, from their headers (no weight is read)."""
    from safetensors import safe_open

    files = sorted(directory.glob("*.safetensors"))
    total = 0
    for path in files:
        with safe_open(str(path), framework="pt") as tensors:
            total += sum(math.prod(tensors.get_slice(key).get_shape()) for key in tensors.keys())
    return total if files else None


def model_directory(base: str) -> Path | None:
    """A base model's local directory: the path itself, or its snapshot in the Hugging Face cache."""
    if Path(base).is_dir():
        return Path(base)
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(base, local_files_only=True))
    except (OSError, ValueError):  # not cached (the evaluation loaded it, so rare) or not a hub id
        return None


def parameters(base: str, checkpoint: Path) -> str | None:
    """'<base> + <adapter> LoRA' in B/M/K, or None when the base model's weights are not on disk."""
    directory = model_directory(base)
    base_count = tensor_elements(directory) if directory else None
    lora_count = tensor_elements(checkpoint)
    if base_count is None or lora_count is None:
        return None
    return f"{_short(base_count)} + {_short(lora_count)} LoRA"


def _short(count: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= size:
            return f"{count / size:.3g}{unit}"
    return str(count)


def card(run_dir: Path, checkpoint: Path, marker: dict) -> dict:
    """The leaderboard model card of one checkpoint."""
    config = marker.get("config", {})
    size = parameters(marker["base_model"], checkpoint)
    return {
        "id": f"{run_dir.resolve().name}-step{marker['step']}",
        "name": f"{Path(marker['base_model']).name} + CoViP {config.get('preset', '?').upper()} LoRA, "
        f"step {marker['step']}",
        **({"parameters": size} if size else {}),
        "base_model": marker["base_model"],
        "method": f"covip-train preset {config.get('preset', '?')}, LoRA r{config.get('lora_r', '?')}, "
        f"config {marker['config_hash']}",
        "training_data": f"{config.get('data', '?')} ({config.get('split', 'train')} split)",
        "access": "open",
        "date": datetime.date.today().isoformat(),
    }


def command(base: str, checkpoint: Path, out: Path, request: EvalRequest) -> list[str]:
    model_args = f"pretrained={base},lora={checkpoint.resolve()}" + (
        f",{request.model_args}" if request.model_args else ""
    )
    cmd = [lmms_eval_command(), "--model", MODEL, "--model_args", model_args, "--tasks", request.tasks]
    cmd += ["--output_path", str(out), "--log_samples"]
    if request.limit is not None:
        cmd += ["--limit", str(request.limit)]
    return cmd + list(request.extra_args)


def evaluate_run(run_dir: str | Path, request: EvalRequest) -> list[Path]:
    """Evaluate the run's checkpoints; returns the submission directories (one per checkpoint)."""
    run = Path(run_dir)
    checkpoints = complete_checkpoints(run)
    if request.steps:
        checkpoints = [c for c in checkpoints if read_marker(c)["step"] in request.steps]
    if not checkpoints:
        raise FileNotFoundError(f"{run}: no complete checkpoint (checkpoint-N/covip_checkpoint.json) to evaluate")
    submissions = []
    for checkpoint in checkpoints:
        marker = read_marker(checkpoint)
        out = run / "eval" / checkpoint.name
        done = results_files(out)
        if not done:
            cmd = command(marker["base_model"], checkpoint, out, request)
            logger.info("evaluating %s: %s", checkpoint.name, " ".join(cmd))
            proc = subprocess.run(cmd, env=os.environ.copy(), check=False)
            done = results_files(out)
            if proc.returncode != 0 or not done:
                raise RuntimeError(
                    f"lmms_eval failed on {checkpoint} (exit {proc.returncode}, {len(done)} results file(s) in {out})"
                )
        else:
            logger.info("%s: already evaluated (%s)", checkpoint.name, done[0])
        submission = done[0].parent
        model_card = yaml.safe_dump(card(run, checkpoint, marker), sort_keys=False)
        (submission / "card.yaml").write_text(model_card, encoding="utf-8")
        submissions.append(submission)
    return submissions
