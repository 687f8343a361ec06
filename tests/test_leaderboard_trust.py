"""Submissions and ranking you can trust: each case of the submissions issue, on real `lmms_eval` runs.

Every fixture is a real run (`leaderboard_runs.py`); a dishonest submission is a copy of one, changed the way a
cheat would change it, and made self-consistent where the case says so (every aggregate and per-sample value
recomputed with the package's own metrics), so that only the rule under test can catch it.
"""

from __future__ import annotations

import fnmatch
import html
import json
import math
from pathlib import Path

import pytest
from leaderboard_edits import (
    consistent,
    copy_run,
    edit_results,
    edit_rows,
    read_rows,
    results_file,
    samples_file,
    write_rows,
)

from covip.leaderboard.cli import main
from covip.leaderboard.stats import fit_slope
from covip.tasks.catalogue import catalogue

pytest_plugins = ["leaderboard_runs"]


def validate(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["validate", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def build(capsys, out: Path, *args: str) -> tuple[int, dict | None]:
    code = main(["build", *map(str, args), "--out", str(out)])
    capsys.readouterr()
    data = out / "leaderboard.json"
    return code, json.loads(data.read_text(encoding="utf-8")) if data.is_file() else None


def rejections(err: str, rule: str) -> list[str]:
    return [line for line in err.splitlines() if line.endswith(f"[rule: {rule}]")]


# --- 1. every task loaded and recomputed, whatever the run's shape; no sample log, no entry ----------------------


def test_the_readmes_glob_run_checks_every_task_and_fills_its_row(real_runs, tmp_path, capsys) -> None:
    """`lmms_eval --tasks 'covip_*'` then `covip-leaderboard build`: every task is read and the row is not empty."""
    everything = sorted(fnmatch.filter(catalogue().tasks, "covip_*"))
    code, out, _ = validate(capsys, real_runs["full"])
    assert code == 0
    assert f"valid ({len(everything)} tasks" in out
    code, data = build(capsys, tmp_path / "site", real_runs["full"])
    assert code == 0
    [entry] = data["models"]
    assert entry["tasks"] == everything and entry["rank"] == 1
    assert entry["caption"]["overall"]["n"] == sum(
        len(read_rows(real_runs["full"], f"covip_caption_{b}c")) for b in "1234"
    )
    assert set(entry["diagnostics"]) == {"lsd", "lar", "itr"}


@pytest.mark.parametrize(
    ("run", "task"),
    [
        ("full", "covip_caption_2c"),
        ("full", "covip_caption_4c_noctx"),
        ("full", "covip_lsd_cag"),
        ("full", "covip_lar"),
        ("full", "covip_itr_blind"),
        ("oracle", "covip_caption_1c_blind"),  # a task of a group (`--tasks covip_caption_blind`)
        ("single", "covip_caption_3c"),  # `--tasks covip_caption_3c`
    ],
)
def test_a_reported_score_of_any_task_is_recomputed(real_runs, tmp_path, capsys, run: str, task: str) -> None:
    sub = copy_run(real_runs[run], tmp_path / "sub")
    metric = catalogue().tasks[task].metrics[0]
    edit_results(
        sub, lambda d: d["results"][task].update({f"{metric},none": d["results"][task][f"{metric},none"] + 17.5})
    )
    code, _, err = validate(capsys, sub)
    assert code == 2
    [line] = rejections(err, "recompute")
    assert f"{results_file(sub).name}: task {task}: results.{task}.{metric},none: reported" in line


def test_a_run_without_its_sample_log_is_rejected(real_runs, tmp_path, capsys) -> None:
    """A run made without --log_samples cannot be checked, so it is not published."""
    code, _, err = validate(capsys, real_runs["no_log"])
    assert code == 2
    [line] = rejections(err, "sample-log")
    assert f"{results_file(real_runs['no_log']).name}: task covip_caption_1c:" in line and "--log_samples" in line
    code, data = build(capsys, tmp_path / "site", real_runs["no_log"])
    assert code == 2 and data is None  # nothing valid: no site


# --- 2. runs tied to what made them --------------------------------------------------------------------------------


def test_edited_scores_with_the_sample_log_deleted_are_rejected(real_runs, tmp_path, capsys) -> None:
    task = "covip_caption_3c"
    sub = copy_run(real_runs["single"], tmp_path / "sub")
    edit_results(sub, lambda d: d["results"][task].update({"acc_pos,none": 100.0, "acc_neg,none": 100.0}))
    samples_file(sub, task).unlink()
    code, _, err = validate(capsys, sub)
    assert code == 2 and rejections(err, "sample-log")


def right_answer(record: dict, question: dict) -> str:
    return question["gold"] if question["concept"] in record["positives"] else "D"


@pytest.mark.parametrize(("run", "task"), [("single", "covip_caption_3c"), ("full", "covip_lar_blind")])
def test_rule_verdicts_flipped_to_right_are_caught_by_re_judging(real_runs, tmp_path, capsys, run, task) -> None:
    """Wrong verdicts flipped to right, every number recomputed to match: the rule judge, re-run, disagrees."""
    sub = copy_run(real_runs[run], tmp_path / "sub")
    flipped = 0

    def flip(row: dict) -> None:
        nonlocal flipped
        record = row["covip_record"]
        if record["kind"] == "diagnostic":
            flipped += record["verdict"] != "correct"
            record["verdict"] = "correct"
            return
        questions = {q["qid"]: q for q in record["questions"]}
        for verdict in record["verdicts"]:
            right = right_answer(record, questions[verdict["qid"]])
            flipped += verdict["pred"] != right
            verdict["pred"] = right

    edit_rows(sub, task, flip)
    assert flipped, "the fixture must have wrong verdicts to flip"
    consistent(sub, task)
    code, _, err = validate(capsys, sub)
    assert code == 2
    found = rejections(err, "rejudge")
    assert found and all(f"task {task}: line " in line and "(sample " in line for line in found)
    assert not rejections(err, "recompute")  # the cheat is self-consistent: only re-judging catches it


def test_fabricated_captions_are_caught_against_the_logged_responses(real_runs, tmp_path, capsys) -> None:
    """The blind baseline's captions replaced by the oracle's, re-judged and recomputed: every record is caught."""
    from covip.judges.registry import make_judge
    from covip.tasks.results.records import CaptionRecord
    from covip.tasks.scoring.judging import judge_captions

    sub = copy_run(real_runs["blind"], tmp_path / "sub")
    tasks = [f"covip_caption_{b}c" for b in "1234"]
    records = 0
    for task in tasks:
        oracle = {
            r["covip_record"]["sample_id"]: r["covip_record"]["caption"] for r in read_rows(real_runs["oracle"], task)
        }
        rows = read_rows(sub, task)
        fake = [
            CaptionRecord.model_validate({**r["covip_record"], "caption": oracle[r["covip_record"]["sample_id"]]})
            for r in rows
        ]
        for row, record in zip(rows, judge_captions(fake, make_judge("rule")), strict=True):
            row["covip_record"] = record.model_dump(mode="json")
        write_rows(sub, task, rows)
        consistent(sub, task)
        records += len(rows)
    code, _, err = validate(capsys, sub)
    assert code == 2
    found = rejections(err, "output")
    assert len(found) == records
    assert all("covip_record.caption: differs from the model's response" in line for line in found)
    assert not rejections(err, "rejudge") and not rejections(err, "recompute")


def test_records_are_checked_against_the_benchmark(real_runs, tmp_path, capsys) -> None:
    """A leaked concept passed off as present (numbers recomputed): the record differs from the benchmark's."""
    task = "covip_caption_3c"
    sub = copy_run(real_runs["single"], tmp_path / "sub")

    def pass_off(row: dict) -> None:
        record = row["covip_record"]
        if row["doc_id"] == 0:
            record["positives"].append(next(i for i in range(len(record["names"])) if i not in record["positives"]))

    edit_rows(sub, task, pass_off)
    consistent(sub, task)
    code, _, err = validate(capsys, sub)
    assert code == 2
    [line] = rejections(err, "benchmark")
    assert f"task {task}: line 1 (sample test_3c_0000): covip_record.positives:" in line


def test_a_dropped_sample_is_caught_against_the_benchmark(real_runs, tmp_path, capsys) -> None:
    task = "covip_caption_3c"
    sub = copy_run(real_runs["single"], tmp_path / "sub")
    write_rows(sub, task, read_rows(sub, task)[:1])
    edit_results(sub, lambda d: d["n-samples"][task].update(original=1, effective=1))
    consistent(sub, task)
    code, _, err = validate(capsys, sub)
    assert code == 2
    [line] = rejections(err, "benchmark")
    assert f"task {task}:" in line and "test_3c_0001" in line


# --- 3. like with like ----------------------------------------------------------------------------------------------


def test_unlike_runs_are_ranked_apart_and_labelled(real_runs, other_data_run, tmp_path, capsys) -> None:
    subs = tmp_path / "subs"
    copy_run(real_runs["oracle"], subs / "full", card={"id": "oracle-full"})
    copy_run(real_runs["retrieval"], subs / "retrieval", card={"id": "retrieval-full"})
    copy_run(real_runs["oracle_3c"], subs / "part", card={"id": "oracle-3c-only"})
    copy_run(other_data_run, subs / "other", card={"id": "oracle-other-data"})
    code, data = build(capsys, tmp_path / "site", subs)
    assert code == 0
    cohort = {m["id"]: m["cohort"] for m in data["models"]}
    assert cohort["oracle-full"] == cohort["retrieval-full"]
    assert len({cohort["oracle-full"], cohort["oracle-3c-only"], cohort["oracle-other-data"]}) == 3
    ranks = {m["id"]: m["rank"] for m in data["models"]}
    assert ranks["oracle-3c-only"] == ranks["oracle-other-data"] == 1  # each first among its like only
    labels = {c["id"]: c["label"] for c in data["cohorts"]}
    assert "tasks" in labels[cohort["oracle-3c-only"]] and "data" in labels[cohort["oracle-other-data"]]
    assert labels[cohort["oracle-full"]].startswith("Ranked")
    index = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert index.count('<table class="sortable ranked"') == 3
    assert all(label in index for label in labels.values())


# --- 4. a ranking leaking cannot win; slopes the data cannot support --------------------------------------------


def harmonic(p: float, n: float) -> float:
    return 2 * p * n / (p + n) if p + n else 0.0


def test_the_ranking_score_cannot_be_won_by_leaking(real_runs, tmp_path, capsys) -> None:
    subs = tmp_path / "subs"
    for name in ("oracle", "retrieval", "shortcut", "blind"):
        copy_run(real_runs[name], subs / name)
    code, data = build(capsys, tmp_path / "site", subs)
    assert code == 0
    models = {m["model"]: m for m in data["models"]}
    shortcut = models["covip_shortcut"]["caption"]["overall"]
    assert shortcut["acc_pos"] == 100.0 and shortcut["acc_neg"] == 0.0  # recalls everything by leaking everything
    for entry in models.values():
        overall = entry["caption"]["overall"]
        assert overall["score"] == pytest.approx(harmonic(overall["acc_pos"], overall["acc_neg"]))
    assert models["covip_oracle"]["rank"] == 1
    assert models["covip_shortcut"]["rank"] > models["covip_retrieval"]["rank"]
    assert models["covip_shortcut"]["rank"] == models["covip_blind"]["rank"]  # both score 0
    index = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    table = index.split('<table class="sortable ranked"', 1)[1].split("</table>", 1)[0]
    assert "Score" in table and "Acc+" in table and "Acc−" in table
    rows = table.split("<tbody>", 1)[1].split("</tbody>", 1)[0].split("<tr>")[1:]
    assert all(row.count("<td") == row.count("data-v=") for row in rows)  # every cell sorts


def test_slopes_the_data_cannot_support_are_marked_and_not_drawn(real_runs, tmp_path, capsys) -> None:
    code, data = build(capsys, tmp_path / "site", real_runs["retrieval"])
    assert code == 0
    [entry] = data["models"]
    assert entry["slope"]["reliable"] is False and entry["slope"]["reason"]
    index = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert 'class="fit"' not in index and html.escape(entry["slope"]["reason"]) in index


def test_a_slope_on_two_distinct_recognition_values_is_unreliable() -> None:
    """The issue's case: every sample but one at F1 1.0 gives a line through two points, with a zero-width CI."""
    points = [(1.0, 1.0)] * 99 + [(0.5, 0.25)]
    fit = fit_slope(points)
    assert fit.slope == pytest.approx(1.5) and not fit.reliable
    assert "2 distinct" in fit.reason


def test_a_slope_the_data_supports_is_reliable_and_drawn() -> None:
    from covip.leaderboard import svg

    xs = [i / 20 for i in range(21)] * 2
    points = [(x, min(1.0, max(0.0, 0.2 + 0.6 * x + (0.1 if i % 2 else -0.1)))) for i, x in enumerate(xs)]
    fit = fit_slope(points)
    assert fit.reliable and fit.reason == "" and 0.5 < fit.slope < 0.7
    assert fit.ci95[0] < fit.slope < fit.ci95[1]
    chart = svg.scatter([svg.Series("m", svg.color(0), points, (fit.slope, fit.intercept))], "t")
    assert chart.count('class="fit"') == 1
    assert 'class="fit"' not in svg.scatter([svg.Series("m", svg.color(0), points, None)], "t")


@pytest.mark.parametrize(
    ("points", "reason"),
    [
        ([(0.0, 0.0), (1.0, 1.0)], "2 samples"),
        ([(1.0, 0.5)] * 30, "every sample"),
        ([(x / 4, x / 4) for x in range(5)] * 1, "5 samples"),
        ([(1.0, 1.0)] * 40 + [(0.0, 0.0), (0.5, 0.5), (0.25, 0.25)], "3 samples away from"),
    ],
)
def test_slope_reliability_reasons(points, reason: str) -> None:
    fit = fit_slope(points)
    assert not fit.reliable and reason in fit.reason


# --- 5. every rejection named, exit 2, the batch still reported ---------------------------------------------------


def test_a_too_deeply_nested_results_file_is_a_named_problem_and_the_batch_goes_on(real_runs, tmp_path, capsys):
    subs = tmp_path / "subs"
    good = copy_run(real_runs["oracle"], subs / "good")
    deep = copy_run(real_runs["single"], subs / "deep")
    results_file(deep).write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    code, out, err = validate(capsys, subs)
    assert code == 2
    assert f"{good}: valid" in out
    [line] = rejections(err, "readable")
    assert f"{deep}/{results_file(deep).name}:" in line and "nested too deeply" in line
    code, data = build(capsys, tmp_path / "site", subs)
    assert code == 2  # a rejection is an error, but it does not hide the valid submissions
    assert [m["model"] for m in data["models"]] == ["covip_oracle"]
    [rejected] = data["rejected"]
    assert rejected["path"] == str(deep) and "nested too deeply" in rejected["problems"][0]
    assert "nested too deeply" in (tmp_path / "site" / "index.html").read_text(encoding="utf-8")


def test_a_rejection_names_file_task_record_field_and_rule(real_runs, tmp_path, capsys) -> None:
    task = "covip_caption_3c"
    sub = copy_run(real_runs["single"], tmp_path / "sub")
    edit_rows(sub, task, lambda row: row["covip_record"].update(bucket=2) if row["doc_id"] == 1 else None)
    code, _, err = validate(capsys, sub)
    assert code == 2
    name = samples_file(sub, task).name
    expected = f"{sub}/{name}: task {task}: line 2 (sample test_3c_0001): covip_record.bucket: 2, but task {task} is"
    assert any(line.strip().startswith(expected) and line.endswith("[rule: complete]") for line in err.splitlines())


def test_numbers_must_be_finite(real_runs, tmp_path, capsys) -> None:
    task = "covip_caption_3c"
    sub = copy_run(real_runs["single"], tmp_path / "sub")
    edit_results(sub, lambda d: d["results"][task].update({"acc_neg,none": math.nan}))
    code, _, err = validate(capsys, sub)
    assert code == 2
    assert any(
        f"task {task}: results.{task}.acc_neg,none: NaN or infinite" in line for line in rejections(err, "numbers")
    )
