"""The RePIC tasks on the leaderboard, from real `lmms_eval` runs of the built-in baselines on the drawn RePIC fixture
(`leaderboard_runs.py`): validated like every task (numbers recomputed, captions tied to lmms-eval's logged response,
records checked against the RePIC files the run recorded), ranked in tables of their own (like with like: same RePIC
files, same retriever), a run holding CoViP and RePIC tasks split between the two, the site and the summary."""

from __future__ import annotations

import json
from html import unescape
from pathlib import Path

import pytest
from leaderboard_edits import copy_run, edit_results, edit_rows, read_rows, results_file, samples_file, write_rows

from covip.leaderboard.cli import main
from covip.leaderboard.site import slug
from covip.tasks.catalogue import catalogue
from covip.tasks.results.records import RECORD_KEY, RepicRecord
from covip.tasks.scoring import metrics

pytest_plugins = ["leaderboard_runs"]
pytestmark = pytest.mark.integration
REPIC_TASKS = sorted(name for name, info in catalogue().tasks.items() if info.family == "repic")
EVIL = "<script>alert(1)</script>"
SHOWN = ("precision", "recall", "f1", "name_precision", "name_recall", "name_f1", "retrieval_recall")


def validate(capsys, *args: str | Path) -> tuple[int, str, str]:
    code = main(["validate", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def build(capsys, out: Path, *args: str | Path) -> dict:
    assert main(["build", *map(str, args), "--out", str(out)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    return json.loads((out / "leaderboard.json").read_text(encoding="utf-8"))


def rules(err: str) -> set[str]:
    return {line.rsplit("[rule: ", 1)[1].rstrip("]") for line in err.splitlines() if "[rule: " in line}


def reported(run: Path, task: str) -> dict[str, float]:
    results = json.loads(results_file(run).read_text(encoding="utf-8"))["results"][task]
    return {name: results[f"{name},none"] for name in SHOWN}


def recomputed(run: Path, task: str) -> None:
    """Make a tampered RePIC task self-consistent, as a careful cheat would: every logged per-sample value and every
    reported aggregate recomputed from the (tampered) records with the package's own metrics."""
    info = catalogue().tasks[task]
    rows = read_rows(run, task)
    records = [RepicRecord.model_validate(row[RECORD_KEY]) for row in rows]
    for row, record in zip(rows, records, strict=True):
        row.update({name: metrics.sample_values(record)[name] for name in info.metrics})
    write_rows(run, task, rows)
    edit_results(
        run, lambda d: d["results"][task].update({f"{m},none": metrics.aggregate(m, records) for m in info.metrics})
    )


# --- validation: accepted, checked against the RePIC data, and tampering caught -----------------------------------


def test_baseline_runs_are_valid_and_checked_against_their_repic_files(repic_runs, capsys) -> None:
    code, out, err = validate(capsys, repic_runs["oracle"], repic_runs["blind"])
    assert code == 0, err
    assert f"{repic_runs['oracle']}: valid ({1 + len(REPIC_TASKS)} tasks" in out  # covip_caption_3c and the 10
    assert f"{repic_runs['blind']}: valid ({len(REPIC_TASKS)} tasks" in out
    assert out.count("benchmark checked") == 2


def test_without_the_repic_files_a_run_is_valid_but_not_checked_against_them(
    repic_runs, other_repic_data, tmp_path, capsys
) -> None:
    code, out, _ = validate(capsys, repic_runs["blind"], "--repic-data", tmp_path / "absent")
    assert code == 0 and f"benchmark not checked: no usable RePIC data at {tmp_path / 'absent'}" in out
    code, out, _ = validate(capsys, repic_runs["blind"], "--repic-data", other_repic_data)
    assert code == 0 and f"the RePIC files at {other_repic_data} are not the run's (their sha256 differ)" in out


def test_an_edited_metric_is_recomputed_from_the_records(repic_runs, tmp_path, capsys) -> None:
    sub = copy_run(repic_runs["blind"], tmp_path / "sub")
    edit_results(sub, lambda d: d["results"]["repic_4c_skip"].update({"f1,none": 100.0}))
    code, _, err = validate(capsys, sub)
    assert code == 2 and rules(err) == {"recompute"}
    assert (
        "task repic_4c_skip: results.repic_4c_skip.f1,none: reported 100.0, recomputed from 3 sample records 0.0" in err
    )


def test_an_edited_per_sample_value_is_recomputed_from_its_record(repic_runs, tmp_path, capsys) -> None:
    sub = copy_run(repic_runs["blind"], tmp_path / "sub")
    edit_rows(sub, "repic_2c_skip", lambda row: row["name_recall"].update(correct=2, score=100.0))
    code, _, err = validate(capsys, sub)
    assert code == 2 and rules(err) == {"recompute"}
    assert "task repic_2c_skip: line 1 (sample q0000): name_recall: logged" in err


def test_a_caption_that_is_not_the_logged_response_is_rejected(repic_runs, tmp_path, capsys) -> None:
    """The blind baseline's records given captions naming the ground truth, every number recomputed to match: only
    lmms-eval's own logged response (`filtered_resps`) tells."""
    sub = copy_run(repic_runs["blind"], tmp_path / "sub")
    task = "repic_2c_skip"
    edit_rows(sub, task, lambda row: row[RECORD_KEY].update(caption=" and ".join(row[RECORD_KEY]["gt"]) + "."))
    recomputed(sub, task)
    assert metrics.aggregate("f1", [RepicRecord.model_validate(r[RECORD_KEY]) for r in read_rows(sub, task)]) == 100
    code, _, err = validate(capsys, sub)
    assert code == 2 and rules(err) == {"output"}
    rows = read_rows(sub, task)
    assert err.count("covip_record.caption: differs from the model's response lmms-eval logged") == len(rows)


def test_a_shrunk_candidate_pool_is_rejected(repic_runs, tmp_path, capsys) -> None:
    """A wrong concept named counts as a miss only when it is in the pool: dropping it from one record's pool raises
    precision. The records of a task must share its pool, and the pool must be the RePIC data's."""
    sub = copy_run(repic_runs["blind"], tmp_path / "sub")
    task = "repic_2c_skip"

    def shrink(row: dict) -> None:
        record = row[RECORD_KEY]
        if row["doc_id"] == 0:
            record["pool"] = {key: name for key, name in record["pool"].items() if key in record["gt"]}

    edit_rows(sub, task, shrink)
    recomputed(sub, task)
    code, _, err = validate(capsys, sub)
    assert code == 2 and rules(err) == {"complete", "benchmark"}
    assert "line 1 (sample q0000): covip_record.pool: not the task's candidate pool" in err
    assert (
        "line 1 (sample q0000): covip_record.pool: differs from the RePIC data's candidate pool: <Baby_Q>: None" in err
    )


def test_records_are_checked_against_their_task_and_the_repic_data(repic_runs, tmp_path, capsys) -> None:
    sub = copy_run(repic_runs["blind"], tmp_path / "sub")
    edit_rows(sub, "repic_1c_myvlm_skip", lambda row: row[RECORD_KEY].update(mode="retrieval"))
    edit_rows(sub, "repic_2c_retrieval", lambda row: row[RECORD_KEY].update(image="./data/elsewhere.png"))
    rows = read_rows(sub, "repic_4c_skip")
    write_rows(sub, "repic_4c_skip", rows[:-1])  # a sample dropped, and the counts edited to match
    edit_results(sub, lambda d: d["n-samples"].update({"repic_4c_skip": {"original": 2, "effective": 2}}))
    for task in ("repic_1c_myvlm_skip", "repic_2c_retrieval", "repic_4c_skip"):
        recomputed(sub, task)
    code, _, err = validate(capsys, sub)
    assert code == 2
    assert "task repic_1c_myvlm_skip: line 1 (sample q0000): covip_record.mode: 'retrieval', but task" in err
    assert (
        "task repic_2c_retrieval: line 1 (sample q0000): covip_record.image: './data/elsewhere.png', the RePIC" in err
    )
    last = rows[-1][RECORD_KEY]["sample_id"]
    assert f"task repic_4c_skip: file: sample(s) {last} of the RePIC query file missing from the log" in err


def repic_identity(doc: dict, task: str) -> dict:
    return doc["configs"][task]["metadata"]["covip"]["repic"]


def test_a_retrieval_task_records_its_retriever_and_a_run_has_one(repic_runs, tmp_path, capsys) -> None:
    sub = copy_run(repic_runs["blind"], tmp_path / "sub")
    edit_results(sub, lambda d: repic_identity(d, "repic_2c_retrieval").update(retriever=None))
    code, _, err = validate(capsys, sub)
    assert code == 2 and rules(err) == {"identity"}
    assert "configs.repic_2c_retrieval.metadata.covip.repic.retriever: missing: a retrieval task records" in err
    sub = copy_run(repic_runs["blind"], tmp_path / "two")
    edit_results(sub, lambda d: repic_identity(d, "repic_4c_retrieval")["retriever"].update(grids=[1, 2]))
    code, _, err = validate(capsys, sub)
    assert code == 2 and rules(err) == {"identity"}
    assert "task repic_4c_retrieval: configs.repic_4c_retrieval.metadata.covip.repic.retriever: {" in err


# --- the leaderboard: RePIC tables of their own, like with like ---------------------------------------------------


def test_a_run_of_both_benchmarks_goes_to_both_tables(repic_runs, tmp_path, capsys) -> None:
    oracle, blind = repic_runs["oracle"], repic_runs["blind"]
    data = build(capsys, tmp_path / "site", oracle, blind)
    [covip] = data["models"]  # the oracle's CoViP part; the blind run has none
    assert covip["tasks"] == ["covip_caption_3c"] and covip["rank"] == 1
    assert [m["name"] for m in data["repic"]["models"]] == ["covip_oracle", "covip_blind"]
    assert [m["rank"] for m in data["repic"]["models"]] == [1, 2]
    [cohort] = data["repic"]["cohorts"]
    assert (
        cohort["label"].startswith("RePIC ranked: 10 tasks · RePIC files ")
        and "retriever colour-windows" in cohort["label"]
    )
    for entry, run in zip(data["repic"]["models"], (oracle, blind), strict=True):
        assert entry["data_checked"] == "checked" and entry["tasks"] == REPIC_TASKS
        for task in REPIC_TASKS:  # every number is lmms-eval's own, recomputed from the sample log
            assert {m: entry["repic"][task][m] for m in SHOWN} == pytest.approx(reported(run, task)), task
    oracle_entry = data["repic"]["models"][0]
    assert oracle_entry["score"] == 100.0  # the corrected F1 of a perfect caption
    assert oracle_entry["repic"]["repic_4c_skip"]["recall"] == pytest.approx(100 * 7 / 12)  # RePIC's key matching
    # the paper's Qwen3-VL-8B + RePIC rows stay in the CoViP tables, as reported rows
    assert "Qwen3-VL-8B + RePIC" in {row["model"] for row in data["reported"]["capeval_qas"]["rows"]}


def test_repic_runs_rank_together_only_on_the_same_files_and_retriever(repic_runs, tmp_path, capsys) -> None:
    copy_run(repic_runs["oracle_2c"], tmp_path / "files" / "a", card={"id": "oracle, RePIC files"})
    copy_run(repic_runs["other_data"], tmp_path / "files" / "b", card={"id": "oracle, other RePIC files"})
    data = build(capsys, tmp_path / "site", tmp_path / "files")
    labels = [c["label"] for c in data["repic"]["cohorts"]]
    assert len(labels) == 2 and labels[1].startswith("RePIC ranked apart (other RePIC files): 1 task")
    assert [m["rank"] for m in data["repic"]["models"]] == [1, 1]  # each ranked alone
    other = copy_run(repic_runs["blind"], tmp_path / "subs" / "other", card={"id": "blind, another retriever"})
    copy_run(repic_runs["blind"], tmp_path / "subs" / "blind")

    def retriever(doc: dict) -> None:
        for task in doc["configs"]:
            if task.endswith("_retrieval"):
                repic_identity(doc, task)["retriever"]["grids"] = [1, 2]

    edit_results(other, retriever)
    data = build(capsys, tmp_path / "retrievers", tmp_path / "subs")
    labels = [c["label"] for c in data["repic"]["cohorts"]]
    assert len(labels) == 2 and labels[1].startswith("RePIC ranked apart (another retriever): 10 tasks")


def test_the_site_shows_the_repic_table_model_and_sample_pages(repic_runs, tmp_path, capsys) -> None:
    oracle = repic_runs["oracle"]
    blind = copy_run(repic_runs["blind"], tmp_path / "blind", card={"name": EVIL})
    out = tmp_path / "site"
    build(capsys, out, oracle, blind)
    for path in out.rglob("*.html"):  # the model's name is text wherever it is shown
        assert "<script>alert" not in path.read_text(encoding="utf-8"), path
    raw = (out / "index.html").read_text(encoding="utf-8")
    assert raw.count("&lt;script&gt;alert(1)&lt;/script&gt;</a>") == 1 + len(REPIC_TASKS)
    index = unescape(raw)
    assert '<section class="cohort repic" id="repic-1">' in index and '<a href="#repic-1">RePIC ranked: ' in index
    assert "reproduce RePIC's own scoring exactly" in index and "match what the model was shown" in index
    assert index.count('<table class="sortable repic-task">') == len(REPIC_TASKS)
    assert "Qwen3-VL-8B + RePIC" in index  # the reported row, in the CoViP table
    both = (out / "models" / f"{slug('covip_oracle')}.html").read_text(encoding="utf-8")
    assert "<h2>Personalized captioning</h2>" in both and "<h2>RePIC</h2>" in both
    only = (out / "models" / f"{slug('covip_blind')}.html").read_text(encoding="utf-8")
    assert "<h2>Personalized captioning</h2>" not in only and "<h2>RePIC</h2>" in only
    assert "<dt>RePIC data</dt><dd>checked</dd>" in only
    page = (out / "models" / slug("covip_oracle") / "repic_4c_skip.html").read_text(encoding="utf-8")
    rows = read_rows(oracle, "repic_4c_skip")
    assert page.count('<section class="sample"') == len(rows)
    # per sample: the query image and a thumbnail of each concept shown, from the run's RePIC files
    assert page.count('src="../../img/') == sum(1 + len(r[RECORD_KEY]["shown"]) for r in rows)
    assert page.count('<tr class="slot">') == 4 * len(rows)
    assert '<td class="text"><code>&lt;tinman&gt;</code></td><td class="text">Tin Man</td>' in page
    assert '<span class="muted">none</span>' in page and '<span class="ok">correct</span>' in page


def test_every_task_family_of_the_catalogue_is_scored() -> None:
    """Every task family the catalogue knows is checked, scored and shown (none is rejected as unknown)."""
    from covip.leaderboard.validate import SCORED_FAMILIES
    from covip.tasks.catalogue import FAMILIES

    assert set(SCORED_FAMILIES) == set(FAMILIES)


def test_sample_log_of_a_repic_task_is_required(repic_runs, tmp_path, capsys) -> None:
    sub = copy_run(repic_runs["oracle_2c"], tmp_path / "sub")
    samples_file(sub, "repic_2c_skip").unlink()
    code, _, err = validate(capsys, sub)
    assert code == 2 and rules(err) == {"sample-log"}
