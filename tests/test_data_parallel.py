"""Data-parallel evaluation: two processes (torchrun, gloo on the CPU) give the single process's metrics and logs.

lmms-eval gives each rank its shard of the docs; each rank judges its own responses in its judging stage, and rank
0 gathers the per-sample values and logged samples. So metrics must equal a one-process run, and every logged
sample must carry its verdicts.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from lmms_runner import OFFLINE, run_lmms_eval

from covip.tasks.results.run import read_run

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent
TASKS = "covip_caption,covip_lar"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metric_values(results: dict) -> dict[tuple[str, str], float]:
    return {
        (task, key): value
        for task, values in results["results"].items()
        if task.startswith("covip_") and task != "covip_caption"
        for key, value in values.items()
        if "," in key and "stderr" not in key and isinstance(value, (int, float))
    }


def test_two_processes_give_the_single_process_metrics_and_complete_logs(small_benchmark, tmp_path):
    args = ["--model", "covip_retrieval", "--tasks", TASKS]
    single = run_lmms_eval(args, small_benchmark, tmp_path / "one")
    assert single.code == 0, single.output[-3000:]

    env = {**os.environ, **OFFLINE, "COVIP_DATA": str(small_benchmark), "COVIP_HOME": str(tmp_path / "home")}
    launch = [str(BIN / "torchrun"), "--nproc_per_node", "2", "--master_port", str(free_port()), str(BIN / "lmms_eval")]
    proc = subprocess.run(
        [*launch, *args, "--output_path", str(tmp_path / "two"), "--log_samples"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    [results_file] = (tmp_path / "two").rglob("*_results.json")

    one, two = metric_values(single.results), metric_values(read_run(results_file.parent).results[results_file])
    assert one.keys() == two.keys() and len(one) > 10
    for key, value in one.items():
        assert math.isclose(value, two[key], rel_tol=1e-12, abs_tol=1e-12), (key, value, two[key])

    logged_one, logged_two = read_run(single.run_dir), read_run(results_file.parent)
    assert not logged_one.problems and not logged_two.problems
    assert set(logged_two.tasks) == set(logged_one.tasks)
    for name, task in logged_two.tasks.items():
        by_id = {r.sample_id: r for r in logged_one.tasks[name].records}
        assert sorted(by_id) == sorted(r.sample_id for r in task.records), name  # every sample logged once
        for record in task.records:
            assert record == by_id[record.sample_id], (name, record.sample_id)  # verdicts included
            assert record.verdicts if record.kind == "caption" else record.verdict
