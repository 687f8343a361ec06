"""`covip-leaderboard summary` on real runs of every shape (`--tasks 'covip_*'`, a single task, the `_blind`/`_noctx`
groups, the RePIC tasks): its numbers are recomputed from the sample logs and equal what lmms-eval itself reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from leaderboard_edits import copy_run, read_rows, results_file, samples_file

from covip.leaderboard.cli import main
from covip.tasks.catalogue import catalogue
from covip.tasks.scoring.metrics import CAPTION_METRICS

pytest_plugins = ["leaderboard_runs"]
BUCKETS = ("1c", "2c", "3c", "4c")


def reported(run: Path, task: str, metric: str) -> float:
    return json.loads(results_file(run).read_text())["results"][task][f"{metric},none"]


def test_summary_of_runs_of_every_shape_equals_what_lmms_eval_reported(real_runs, tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs"
    for name in ("full", "oracle", "single"):
        copy_run(real_runs[name], runs / name)
    assert main(["summary", str(runs)]) == 0
    table = json.loads((runs / "summary.json").read_text())
    # the full run (covip_retrieval, every task) and the group run (covip_oracle) are named by model
    full, groups, single = table["covip_retrieval"], table["covip_oracle"], table["covip_shortcut"]
    for bucket in BUCKETS:
        task = f"covip_caption_{bucket}"
        for metric in CAPTION_METRICS:
            assert full[bucket][metric] == pytest.approx(reported(real_runs["full"], task, metric)), (task, metric)
            assert groups[bucket][metric] == pytest.approx(reported(real_runs["oracle"], task, metric)), (task, metric)
    assert single["3c"]["acc_neg"] == pytest.approx(reported(real_runs["single"], "covip_caption_3c", "acc_neg"))
    assert set(single) == {"3c", "overall", "diagnostics", "judges", "repic"} and single["repic"] == {}
    for control in ("blind", "noctx"):
        # pooled over the buckets: every positive (negative) question of the control's four tasks
        rows = [r for b in BUCKETS for r in read_rows(real_runs["oracle"], f"covip_caption_{b}_{control}")]
        for metric in ("acc_pos", "acc_neg"):
            correct = sum(r[metric]["correct"] for r in rows)
            total = sum(r[metric]["total"] for r in rows)
            assert groups[control][metric] == pytest.approx(100 * correct / total)
    lar = [r["lar_acc"] for r in read_rows(real_runs["full"], "covip_lar_cag")]
    assert full["diagnostics"]["lar"]["cag"]["score"] == pytest.approx(sum(lar) / len(lar))
    markdown = (runs / "summary.md").read_text()
    assert "| covip_retrieval |" in markdown and "| covip_shortcut |" in markdown and "LSD (direct" in markdown
    assert "score: harmonic mean of Acc+ and Acc−" in markdown


def test_runs_of_one_model_are_told_apart_by_directory(real_runs, tmp_path: Path) -> None:
    copy_run(real_runs["oracle"], tmp_path / "runs" / "a")
    copy_run(real_runs["oracle_3c"], tmp_path / "runs" / "b")
    assert main(["summary", str(tmp_path / "runs")]) == 0
    assert set(json.loads((tmp_path / "runs" / "summary.json").read_text())) == {"covip_oracle [a]", "covip_oracle [b]"}


def test_missing_sample_log_is_an_error(real_runs, tmp_path: Path, capsys) -> None:
    run = copy_run(real_runs["single"], tmp_path / "runs" / "m")
    samples_file(run, "covip_caption_3c").unlink()
    assert main(["summary", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "no sample log" in err and "--log_samples" in err


def test_summary_lists_repic_tasks_in_a_table_of_their_own(repic_runs, tmp_path: Path) -> None:
    """The oracle's run holds covip_caption_3c and every RePIC task; the blind run only RePIC tasks."""
    runs = tmp_path / "runs"
    for name in ("oracle", "blind"):
        copy_run(repic_runs[name], runs / name)
    assert main(["summary", str(runs)]) == 0
    table = json.loads((runs / "summary.json").read_text())
    repic_tasks = sorted(name for name, info in catalogue().tasks.items() if info.family == "repic")
    shown = ("precision", "recall", "f1", "name_precision", "name_recall", "name_f1", "retrieval_recall")
    for name, model in (("oracle", "covip_oracle"), ("blind", "covip_blind")):
        assert sorted(table[model]["repic"]) == repic_tasks
        for task in repic_tasks:
            got = {metric: table[model]["repic"][task][metric] for metric in shown}
            assert got == pytest.approx({m: reported(repic_runs[name], task, m) for m in shown}), (model, task)
    markdown = (runs / "summary.md").read_text()
    assert "| covip_oracle | repic_4c_skip | 3 | 100.0 / 58.3 / 73.7 | 100.0 / 100.0 / 100.0 | 100.0 |" in markdown
    assert "| covip_blind | repic_2c_skip | 4 | 0.0 / 0.0 / 0.0 | 0.0 / 0.0 / 0.0 | 100.0 |" in markdown
    # the CoViP table lists the oracle only: the blind run has no CoViP task
    blind_rows = [line for line in markdown.splitlines() if line.startswith("| covip_blind |")]
    assert len(blind_rows) == len(repic_tasks) and all("| repic_" in line for line in blind_rows)
    assert table["covip_oracle"]["3c"]["acc_pos"] == pytest.approx(
        reported(repic_runs["oracle"], "covip_caption_3c", "acc_pos")
    )
