"""Shared fixtures: a small benchmark built once per session with the real builder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="session")
def small_benchmark(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-samples-per-bucket test split with 3 samples per diagnostic task (seed 7)."""
    from covip.tasks.builder.build import BuildConfig, build

    out = tmp_path_factory.mktemp("bench")
    build(BuildConfig(out=out, seed=7, per_bucket=2, diag_samples=3))
    return out
