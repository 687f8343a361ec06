"""Leaderboard test fixtures made by real `lmms_eval` runs on the session's small benchmark (and, for the RePIC
tasks, on the drawn RePIC fixture `python -m covip.tasks.repic.fixture` writes).

A pytest plugin (test modules load it with `pytest_plugins`), so that the runs are made once per session whichever
leaderboard test module asks first. Each run directory is a real `--output_path DIR --log_samples` output (or one
without `--log_samples`); tests copy one (`leaderboard_edits.copy_run`) before changing it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from leaderboard_edits import lmms_run

CAPTION_TASKS = "covip_caption,covip_caption_blind,covip_caption_noctx"
# name -> (lmms_eval arguments, whether the run logs its samples)
RUNS: dict[str, tuple[list[str], bool]] = {
    "full": (["--model", "covip_retrieval", "--tasks", "covip_*"], True),
    "oracle": (["--model", "covip_oracle", "--tasks", CAPTION_TASKS], True),
    "retrieval": (["--model", "covip_retrieval", "--tasks", CAPTION_TASKS], True),
    "shortcut": (["--model", "covip_shortcut", "--tasks", CAPTION_TASKS], True),
    "blind": (["--model", "covip_blind", "--tasks", CAPTION_TASKS], True),
    "single": (["--model", "covip_shortcut", "--tasks", "covip_caption_3c"], True),
    "oracle_3c": (["--model", "covip_oracle", "--tasks", "covip_caption_3c"], True),
    "no_log": (["--model", "covip_oracle", "--tasks", "covip_caption_1c"], False),
}


# name -> lmms_eval arguments of the RePIC runs, on the drawn RePIC data (the oracle also captions the benchmark)
REPIC_RUNS: dict[str, list[str]] = {
    "oracle": ["--model", "covip_oracle", "--tasks", "covip_caption_3c,repic_*"],  # CoViP and RePIC in one run
    "blind": ["--model", "covip_blind", "--tasks", "repic_*"],
    "oracle_2c": ["--model", "covip_oracle", "--tasks", "repic_2c_skip"],
}


@pytest.fixture(scope="session")
def other_benchmark(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second small benchmark (another seed): other samples, another data fingerprint."""
    from covip.tasks.builder.build import BuildConfig, build

    out = tmp_path_factory.mktemp("bench_other")
    build(BuildConfig(out=out, seed=8, per_bucket=2, diag_samples=3))
    return out


@pytest.fixture(scope="session")
def real_runs(tmp_path_factory: pytest.TempPathFactory, small_benchmark: Path) -> dict[str, Path]:
    """Every run of `RUNS` on the small benchmark, by name (read-only: copy one before changing it)."""
    root = tmp_path_factory.mktemp("lmms_runs")
    return {name: lmms_run(args, small_benchmark, root / name, logged) for name, (args, logged) in RUNS.items()}


@pytest.fixture(scope="session")
def other_data_run(tmp_path_factory: pytest.TempPathFactory, other_benchmark: Path) -> Path:
    """The oracle's captioning run (same tasks as `real_runs["oracle"]`) on the other benchmark."""
    return lmms_run(RUNS["oracle"][0], other_benchmark, tmp_path_factory.mktemp("lmms_other") / "oracle")


@pytest.fixture(scope="session")
def repic_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The drawn RePIC directory, in RePIC's layout (read-only)."""
    from covip.tasks.repic.fixture import write_fixture

    return write_fixture(tmp_path_factory.mktemp("repic_data"))


@pytest.fixture(scope="session")
def other_repic_data(tmp_path_factory: pytest.TempPathFactory, repic_data: Path) -> Path:
    """The RePIC directory with one query less in the 2-concept query file: other RePIC files (other sha256)."""
    out = tmp_path_factory.mktemp("repic_other") / "repic"
    shutil.copytree(repic_data, out)
    queries = out / "data/query_tot/2_concept_query_templates.json"
    doc = json.loads(queries.read_text(encoding="utf-8"))
    doc.pop(next(iter(doc)))
    queries.write_text(json.dumps(doc, indent=4), encoding="utf-8")
    return out


@pytest.fixture(scope="session")
def repic_runs(
    tmp_path_factory: pytest.TempPathFactory, small_benchmark: Path, repic_data: Path, other_repic_data: Path
) -> dict[str, Path]:
    """Every run of `REPIC_RUNS` on the RePIC fixture, and `other_data`: the oracle's `repic_2c_skip` on the other
    RePIC files (read-only: copy one before changing it)."""
    root = tmp_path_factory.mktemp("repic_runs")
    runs = {
        name: lmms_run(args, small_benchmark, root / name, COVIP_DATA_REPIC=str(repic_data))
        for name, args in REPIC_RUNS.items()
    }
    other = REPIC_RUNS["oracle_2c"]
    runs["other_data"] = lmms_run(other, small_benchmark, root / "other_data", COVIP_DATA_REPIC=str(other_repic_data))
    return runs
