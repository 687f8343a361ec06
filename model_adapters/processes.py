"""lmms-eval's contract for several processes: which device this process owns.

`accelerate launch` and `torchrun` start one process per rank with `LOCAL_RANK` and `WORLD_SIZE`
set; lmms-eval then sets each model's `rank` and `world_size`, gives each rank its shard of the
docs, and gathers small tensors on `model.device` (NCCL needs them on that rank's GPU, gloo on the
CPU). Every CoViP adapter takes its device from here, so one process never lands on another's GPU.
"""

from __future__ import annotations

import os

import torch


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def process_device() -> torch.device:
    """This process's GPU (`cuda:LOCAL_RANK`) when there is one, else the CPU."""
    if torch.cuda.is_available():
        return torch.device(f"cuda:{local_rank() % torch.cuda.device_count()}")
    return torch.device("cpu")
