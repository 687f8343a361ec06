"""Every `repic_*` task through the real `lmms_eval` command, on the drawn fixture in RePIC's layout, with the
built-in baselines; the logged records read back, rescored, and scored again as RePIC caption files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from lmms_runner import run_lmms_eval

from covip.tasks.catalogue import catalogue
from covip.tasks.cli.judge import main as judge_main
from covip.tasks.repic.fixture import write_fixture
from covip.tasks.results.run import read_run
from covip.tasks.scoring import metrics

pytestmark = pytest.mark.integration
TASKS = sorted(name for name, info in catalogue().tasks.items() if info.family == "repic")
PRF = ("precision", "recall", "f1")


@pytest.fixture(scope="module")
def repic_dir(tmp_path_factory) -> Path:
    return write_fixture(tmp_path_factory.mktemp("repic"))


def _metrics(run, task: str) -> dict[str, float]:
    return {k.split(",")[0]: v for k, v in run.results["results"][task].items() if k.endswith(",none")}


def test_ten_tasks_from_one_template():
    assert len(TASKS) == 10
    assert {(catalogue().tasks[t].bucket, catalogue().tasks[t].mode) for t in TASKS} == {
        (b, m) for b in (1, 2, 4) for m in ("skip", "retrieval")
    }


def test_oracle_scores_100_on_names_and_shows_the_key_shortfall(repic_dir, tmp_path, capsys):
    run = run_lmms_eval(
        ["--model", "covip_oracle", "--tasks", "repic_*"], None, tmp_path / "out", COVIP_DATA_REPIC=str(repic_dir)
    )
    assert run.code == 0, run.output[-3000:]
    for task in TASKS:
        got = _metrics(run, task)
        assert [got[f"name_{m}"] for m in PRF] == [100.0] * 3, task
        if task.startswith("repic_4c"):  # `<tinman>` / `Tin Man` and `<red fox>` / `Red Fox`: 5 of 12 slots lost
            assert (got["precision"], got["recall"]) == (100.0, 100 * 7 / 12), task
        else:  # keys are the display names at 1 and 2 concepts
            assert [got[m] for m in PRF] == [100.0] * 3, task
        if task.endswith("_skip"):
            assert got["retrieval_recall"] == 100.0
        assert got["model_blocked"] == 0
    identity = run.results["configs"]["repic_4c_retrieval"]["metadata"]["covip"]
    assert identity["data"]["location"] == str(repic_dir) and identity["repic"]["retriever"]["name"] == "colour-windows"
    assert len(identity["repic"]["sha256"]["database"]) == 64

    logged = read_run(run.run_dir).raise_problems()
    database = repic_dir / "data/database_tot/database_4_concepts/database_mod.json"
    for task in TASKS:
        log = logged.tasks[task]
        records = log.records
        for metric in (*PRF, "name_recall", "retrieval_recall"):  # the aggregation is a pure function of the records
            assert metrics.aggregate(metric, records) == pytest.approx(log.metric(metric)), (task, metric)
        first = records[0]
        assert first.request == "Give a personalized caption of this image." and first.caption.startswith("A ")
    # the records as a RePIC caption file: `covip-judge repic` gives what the task reported (same pool)
    rows = [[r.image, r.gt, r.caption, r.request] for r in logged.tasks["repic_4c_skip"].records]
    (tmp_path / "captions.json").write_text(json.dumps(rows))
    capsys.readouterr()
    assert judge_main(["repic", str(tmp_path / "captions.json"), "--concepts", "4", "--database", str(database)]) == 0
    scored = json.loads(capsys.readouterr().out)
    reported = _metrics(run, "repic_4c_skip")
    assert {m: scored[m] for m in (*PRF, "name_recall")} == pytest.approx(
        {m: reported[m] for m in (*PRF, "name_recall")}
    )


def test_blind_names_nobody(repic_dir, tmp_path):
    tasks = ["repic_1c_myvlm_retrieval", "repic_2c_skip", "repic_4c_retrieval"]
    run = run_lmms_eval(
        ["--model", "covip_blind", "--tasks", ",".join(tasks)], None, tmp_path / "out", COVIP_DATA_REPIC=str(repic_dir)
    )
    assert run.code == 0, run.output[-3000:]
    for task in tasks:
        got = _metrics(run, task)
        assert [got[m] for m in (*PRF, "name_precision", "name_recall", "name_f1")] == [0.0] * 6, task


def test_shortcut_and_retrieval_baselines_read_the_repic_prompt(repic_dir, tmp_path):
    tasks = "repic_2c_skip,repic_4c_retrieval"
    shortcut = run_lmms_eval(
        ["--model", "covip_shortcut", "--tasks", tasks], None, tmp_path / "s", COVIP_DATA_REPIC=str(repic_dir)
    )
    assert shortcut.code == 0, shortcut.output[-3000:]
    # it recites every shown concept's line: with retrieval skipped those are exactly the ground truth
    assert [_metrics(shortcut, "repic_2c_skip")[m] for m in PRF] == [100.0] * 3
    retrieval = run_lmms_eval(
        ["--model", "covip_retrieval", "--tasks", tasks], None, tmp_path / "r", COVIP_DATA_REPIC=str(repic_dir)
    )
    assert retrieval.code == 0, retrieval.output[-3000:]
    got = _metrics(retrieval, "repic_4c_retrieval")
    # it names only concepts it was shown, so never more ground truth than the retriever showed it
    assert 0 < got["name_recall"] <= got["retrieval_recall"] < 100


def test_missing_or_bad_data_is_named(repic_dir, tmp_path):
    run = run_lmms_eval(
        ["--model", "covip_oracle", "--tasks", "repic_2c_skip"], None, COVIP_DATA_REPIC=str(tmp_path / "none")
    )
    assert run.code == 2 and "no RePIC data at" in run.output and "COVIP_DATA_REPIC" in run.output
    broken = tmp_path / "broken"
    shutil.copytree(repic_dir, broken)
    (broken / "data/database_tot/database_2_concepts/Zed.png").unlink()
    run = run_lmms_eval(["--model", "covip_oracle", "--tasks", "repic_2c_skip"], None, COVIP_DATA_REPIC=str(broken))
    assert run.code == 1
    assert "database_2_concepts/database_mod.json: concept <Zed>: field 'image': no such image" in run.output
