"""Leaderboard ingestion, validation (one test per rule) and aggregation, on hand-made submissions with
known scores and slopes. `make_submission` is shared with the site and browser tests."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import yaml

from covip.leaderboard.aggregate import leaderboard
from covip.leaderboard.cli import main
from covip.leaderboard.stats import fit_slope
from covip.leaderboard.submission import discover, load_submission
from covip.leaderboard.tasks import RECOMPUTE, catalogue
from covip.leaderboard.validate import validate
from covip.tasks import metrics

EVIL = "<script>alert(1)</script>"
STAMP = "20260101_000000"
# Which context names (1c: concept 0 positive, 1 and 2 distractors) a caption says, for a wanted recognition F1.
SAID_FOR_F1 = {0.0: [], 0.5: [0, 1, 2], 2 / 3: [0, 1], 1.0: [0]}
JUDGE = {"backend": "rule", "model": "rule-v1", "preset": "strict", "id": "rule:rule-v1:strict:test"}


def caption_record(
    sample_id: str, bucket: int, said: list[int], right: int, leaked: int = 0, caption: str = ""
) -> dict:
    """A judged caption record: `right` of concept 0's questions correct, `leaked` negative answers not D."""
    names = [f"Name{sample_id.replace('_', '')}x{j}" for j in range(3 * bucket)]
    positives = list(range(bucket))
    caption = caption or "Caption: " + " and ".join(names[i] for i in said) + "."
    questions, verdicts, leaks = [], [], leaked
    for j in range(len(names)):
        for k in range(3):
            qid = f"c{j}.Q{k + 1}"
            options = {"A": f"place {j}{k}a", "B": f"place {j}{k}b", "C": f"place {j}{k}c", "D": "cannot be determined"}
            questions.append(
                {
                    "qid": qid,
                    "concept": j,
                    "positive": j in positives,
                    "question": f"Where {j}?",
                    "options": options,
                    "gold": "A",
                }
            )
            if j in positives:
                pred = "A" if (j > 0 or k < right) else "B"
            else:
                pred = "A" if leaks > 0 else "D"
                leaks -= pred == "A"
            verdicts.append({"qid": qid, "concept": j, "positive": j in positives, "gold": "A", "pred": pred})
    return {
        "sample_id": sample_id,
        "bucket": bucket,
        "control": "none",
        "caption": caption,
        "names": names,
        "positives": positives,
        "mentioned": sorted(metrics.mentioned(caption, names)),
        "recognition_f1": metrics.recognition_f1(caption, names, positives),
        "questions": questions,
        "verdicts": verdicts,
        "judge": dict(JUDGE),
    }


def write_results(root: Path, model: str, tasks: dict[str, list[dict]], data: dict | None = None, card=None) -> Path:
    """An lmms-eval output directory as CoViP's `lmms_eval` writes it: results JSON plus one sample log per task."""
    tables, _ = catalogue()
    root.mkdir(parents=True, exist_ok=True)
    results: dict = {}
    for task, records in tasks.items():
        family = tables[task].family
        results[task] = {"alias": task, "covip_record,none": []}
        for name, fn in RECOMPUTE[family].items():
            if name in tables[task].metrics:
                results[task][f"{name},none"] = fn(records)
                results[task][f"{name}_stderr,none"] = "N/A"
        lines = "".join(json.dumps({"doc_id": i, "covip_record": r}) + "\n" for i, r in enumerate(records))
        (root / f"{STAMP}_samples_{task}.jsonl").write_text(lines)
    location = (data or {}).get("location", "/nonexistent/benchmark")
    doc = {
        "results": results,
        "group_subtasks": {},
        "configs": {t: {"task": t, "test_split": "test"} for t in tasks},
        "versions": {t: tables[t].version for t in tasks},
        "n-samples": {t: {"original": len(r), "effective": len(r)} for t, r in tasks.items()},
        "config": {"model": model, "model_args": "", "limit": None},
        "date": STAMP,
        "covip": {
            "judge": {"backend": "rule", "options": {}},
            "data": {
                t: {"location": location, "manifest_sha256": (data or {}).get("manifest"), "version": 1.0}
                for t in tasks
            },
            "packages": {"covip-bench": "0.1.0"},
        },
    }
    path = root / f"{STAMP}_results.json"
    path.write_text(json.dumps(doc))
    if card is not None:
        (root / "card.yaml").write_text(yaml.safe_dump(card))
    return path


def make_submission(root: Path, model: str, f1s: list[float], right: list[int], card=None, data=None) -> Path:
    """A 1-concept captioning submission whose samples have the given recognition F1s and Acc+ (right of 3)."""
    records = [
        caption_record(f"test_1c_{i:04d}", 1, SAID_FOR_F1[min(SAID_FOR_F1, key=lambda k: abs(k - f))], r)
        for i, (f, r) in enumerate(zip(f1s, right, strict=True))
    ]
    return write_results(root, model, {"covip_caption_1c": records}, data=data, card=card)


def edit_json(path: Path, change) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def edit_records(path: Path, change) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:
        change(row)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def samples_file(root: Path, task: str = "covip_caption_1c") -> Path:
    return root / f"{STAMP}_samples_{task}.jsonl"


def problems_of(*roots: Path) -> list[str]:
    subs = [load_submission(r) for r in discover(list(roots))]
    return [str(p) for problems in validate(subs).values() for p in problems]


@pytest.fixture
def good(tmp_path: Path) -> Path:
    make_submission(tmp_path / "sub", "model_a", [0.0, 0.5, 1.0], [0, 3, 3], card={"name": "Model A", "access": "open"})
    return tmp_path / "sub"


# --- validation: one test per rule ------------------------------------------------------------------


def test_valid_submission_exits_0(good: Path, capsys) -> None:
    assert main(["validate", str(good)]) == 0
    assert "valid" in capsys.readouterr().out


def test_schema_missing_record_field_names_file_line_and_field(good: Path, capsys) -> None:
    edit_records(samples_file(good), lambda row: row["covip_record"].pop("verdicts") if row["doc_id"] == 1 else None)
    assert main(["validate", str(good)]) == 2
    err = capsys.readouterr().err
    assert f"{STAMP}_samples_covip_caption_1c.jsonl: line 2: covip_record.verdicts" in err


def test_schema_results_without_versions(good: Path) -> None:
    edit_json(good / f"{STAMP}_results.json", lambda d: d.pop("versions"))
    assert any("_results.json: versions: missing" in p for p in problems_of(good))


def test_schema_results_field_of_wrong_type(good: Path) -> None:
    edit_json(good / f"{STAMP}_results.json", lambda d: d.update({"n-samples": [3]}))
    assert any("_results.json: n-samples: must be an object, got list" in p for p in problems_of(good))


def test_unknown_task_is_rejected(good: Path) -> None:
    edit_json(good / f"{STAMP}_results.json", lambda d: d["results"].update({"covip_caption_9c": {}}))
    assert any("results.covip_caption_9c: unknown task" in p for p in problems_of(good))


def test_unknown_task_version_is_rejected(good: Path) -> None:
    edit_json(good / f"{STAMP}_results.json", lambda d: d["versions"].update({"covip_caption_1c": 0.5}))
    assert any("versions.covip_caption_1c: version 0.5" in p for p in problems_of(good))


def test_missing_judge_configuration_is_rejected(good: Path) -> None:
    edit_json(good / f"{STAMP}_results.json", lambda d: d["covip"].pop("judge"))
    assert any("covip.judge.backend: judge configuration missing" in p for p in problems_of(good))


def test_records_without_judge_or_with_two_judges_are_rejected(good: Path) -> None:
    def second_judge(row: dict) -> None:
        if row["doc_id"] == 2:
            row["covip_record"]["judge"]["id"] = "rule:rule-v1:strict:other"

    edit_records(samples_file(good), second_judge)
    assert any("several judges in one submission" in p for p in problems_of(good))
    edit_records(samples_file(good), lambda row: row["covip_record"].pop("judge"))
    assert any("line 1: covip_record.judge.id: missing" in p for p in problems_of(good))


def test_missing_sample_log_is_rejected(good: Path) -> None:
    samples_file(good).unlink()
    assert any("no per-sample log" in p and "--log_samples" in p for p in problems_of(good))


def test_incomplete_sample_log_is_rejected(good: Path) -> None:
    path = samples_file(good)
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:2]))
    found = problems_of(good)
    assert any("2 samples logged, but the run counted 3" in p for p in found)


def test_limited_run_is_rejected(good: Path) -> None:
    edit_json(good / f"{STAMP}_results.json", lambda d: d["n-samples"]["covip_caption_1c"].update({"original": 10}))
    assert any("3 of 10 samples evaluated" in p for p in problems_of(good))


def test_aggregate_mismatch_rejects_with_both_numbers(good: Path, capsys) -> None:
    edit_json(good / f"{STAMP}_results.json", lambda d: d["results"]["covip_caption_1c"].update({"acc_pos,none": 90.0}))
    assert main(["validate", str(good)]) == 2
    err = capsys.readouterr().err
    assert "results.covip_caption_1c.acc_pos,none: reported 90.0, recomputed from 3 sample records 66.66" in err


def test_tampered_recognition_f1_is_rejected(good: Path) -> None:
    edit_records(samples_file(good), lambda row: row["covip_record"].update({"recognition_f1": 1.0}))
    assert any(
        "line 1: covip_record.recognition_f1: logged 1.0, recomputed from the caption 0.0" in p
        for p in problems_of(good)
    )


def test_duplicate_model_ids_are_rejected(tmp_path: Path) -> None:
    make_submission(tmp_path / "one", "same_model", [1.0], [3])
    make_submission(tmp_path / "two", "same_model", [0.0], [0])
    found = problems_of(tmp_path)
    assert sum(f"{STAMP}_results.json: config.model: duplicate model id 'same_model'" in p for p in found) == 2


def test_nan_and_infinity_are_rejected(good: Path) -> None:
    edit_json(
        good / f"{STAMP}_results.json", lambda d: d["results"]["covip_caption_1c"].update({"acc_neg,none": math.nan})
    )
    edit_records(samples_file(good), lambda row: row["covip_record"].update({"extra": [math.inf]}))
    found = problems_of(good)
    assert any("_results.json: results.covip_caption_1c.acc_neg,none: NaN or infinite value" in p for p in found)
    assert any("line 3: covip_record.extra[0]: NaN or infinite value" in p for p in found)


def test_absurd_sizes_are_rejected(tmp_path: Path) -> None:
    record = caption_record("test_1c_0000", 1, [0], 3, caption="Name" + "x" * 100_001)
    write_results(tmp_path / "sub", "big", {"covip_caption_1c": [record]}, card={"notes": "n" * 600})
    found = problems_of(tmp_path / "sub")
    assert any("line 1: covip_record.caption: 100005 characters is over the limit" in p for p in found)
    assert any("card.yaml: card.notes: 600 characters is over the limit" in p for p in found)


def test_path_escaping_the_submission_is_rejected(good: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.jsonl"
    outside.write_text(samples_file(good).read_text())
    samples_file(good).unlink()
    os.symlink(outside, samples_file(good))
    assert any("outside the submission directory" in p and "samples_covip_caption_1c" in p for p in problems_of(good))


def test_card_with_unknown_field_or_bad_access_is_rejected(good: Path) -> None:
    (good / "card.yaml").write_text(yaml.safe_dump({"name": "A", "acess": "open", "access": "weights"}))
    found = problems_of(good)
    assert any("card.yaml: card.acess: unknown card field" in p for p in found)
    assert any("card.yaml: card.access: must be one of" in p for p in found)


def test_card_option_needs_a_single_submission(tmp_path: Path, capsys) -> None:
    make_submission(tmp_path / "one", "m1", [1.0], [3])
    make_submission(tmp_path / "two", "m2", [1.0], [3])
    card = tmp_path / "card.yaml"
    card.write_text("name: X\n")
    assert main(["validate", str(tmp_path), "--card", str(card)]) == 2
    assert "--card applies to one submission" in capsys.readouterr().err
    assert main(["validate", str(tmp_path / "one"), "--card", str(card)]) == 0


# --- aggregation: known scores and slopes ---------------------------------------------------------------


def test_per_bucket_and_overall_scores(tmp_path: Path) -> None:
    one = [caption_record("s1", 1, [0], 3), caption_record("s2", 1, [], 0, leaked=3)]  # 1c: 3/6 right, 3/12 leaked
    two = [caption_record("s3", 2, [0, 1], 2)]  # 2c: concept 0 has 2/3 right, concept 1 3/3 → 5/6
    write_results(tmp_path / "sub", "m", {"covip_caption_1c": one, "covip_caption_2c": two})
    subs = [load_submission(tmp_path / "sub")]
    assert not any(validate(subs).values())
    entry = leaderboard(subs)["models"][0]
    assert entry["caption"]["1c"]["acc_pos"] == pytest.approx(50.0)
    assert entry["caption"]["1c"]["acc_neg"] == pytest.approx(100 * 9 / 12)
    assert entry["caption"]["2c"]["acc_pos"] == pytest.approx(100 * 5 / 6)
    assert entry["caption"]["overall"]["acc_pos"] == pytest.approx(100 * 8 / 12)
    assert entry["caption"]["overall"]["acc_neg"] == pytest.approx(100 * 21 / 24)
    lo, hi = entry["caption"]["overall"]["acc_pos_ci95"]
    assert lo < 100 * 8 / 12 < hi
    assert entry["caption"]["overall"]["recognition_f1"] == pytest.approx((1.0 + 0.0 + 1.0) / 3)


def test_slope_of_points_on_a_line() -> None:
    fit = fit_slope([(0.0, 0.0), (0.5, 1 / 3), (1.0, 2 / 3), (1.0, 2 / 3)])
    assert fit.slope == pytest.approx(2 / 3) and fit.intercept == pytest.approx(0.0, abs=1e-12)
    assert fit.r == pytest.approx(1.0) and fit.stderr == pytest.approx(0.0, abs=1e-9)


def test_slope_by_hand() -> None:
    # x = 0, .5, 1; y = 0, 1, 1: Sxx = .5, Sxy = .5 → m = 1, b = 1/6; SSE = 1/6 → stderr = sqrt(1/6 / 1 / .5)
    fit = fit_slope([(0.0, 0.0), (0.5, 1.0), (1.0, 1.0)])
    assert fit.slope == pytest.approx(1.0)
    assert fit.intercept == pytest.approx(1 / 6)
    assert fit.r == pytest.approx(0.5 / math.sqrt(0.5 * 2 / 3))
    assert fit.stderr == pytest.approx(math.sqrt(1 / 3))
    half = 12.706204736 * math.sqrt(1 / 3)  # t(0.975, 1 df)
    assert fit.ci95 == pytest.approx((1.0 - half, 1.0 + half))


def test_slope_from_a_submission_and_undefined_slope(tmp_path: Path) -> None:
    make_submission(tmp_path / "a", "model_a", [0.0, 0.5, 1.0], [0, 3, 3])  # Acc+ 0, 1, 1 as above
    make_submission(tmp_path / "b", "model_b", [1.0, 1.0, 1.0], [1, 2, 3])
    subs = [load_submission(r) for r in discover([tmp_path])]
    models = {m["id"]: m for m in leaderboard(subs)["models"]}
    assert models["model_a"]["slope"]["slope"] == pytest.approx(1.0)
    assert models["model_a"]["slope"]["intercept"] == pytest.approx(1 / 6)
    assert models["model_b"]["slope"]["slope"] is None
    assert "1.00 for every sample" in models["model_b"]["slope"]["reason"]


def test_reported_rows_are_apart_and_unranked(tmp_path: Path) -> None:
    make_submission(tmp_path / "a", "model_a", [1.0, 1.0], [3, 3])
    make_submission(tmp_path / "b", "model_b", [1.0, 0.0], [3, 0])
    data = leaderboard([load_submission(r) for r in discover([tmp_path])])
    assert [(m["id"], m["rank"]) for m in data["models"]] == [("model_a", 1), ("model_b", 2)]
    slopes = {r["model"]: r["slope"] for r in data["reported"]["recognition_vs_retrieval"]["rows"]}
    assert slopes == {"Qwen3-VL-8B (base)": 0.35, "Qwen3-VL-8B + RePIC": 0.39, "Qwen3-VL-8B + CoViP": 0.65}
    assert all("rank" not in r for r in data["reported"]["capeval_qas"]["rows"])


def diagnostic_record(sample_id: str, task: str, mode: str, score: float) -> dict:
    record = {
        "sample_id": sample_id,
        "task": task,
        "mode": mode,
        "control": "none",
        "preset": "covip",
        "response": f"I saw it at place {score}",
        "reference": "place",
        "score": score,
    }
    if task == "lar":
        record.update(verdict="correct" if score else "wrong", judge=dict(JUDGE))
    return record


def test_diagnostics_direct_and_cag_as_data(tmp_path: Path) -> None:
    tasks = {
        "covip_lsd": [diagnostic_record(f"d{i}", "lsd", "direct", s) for i, s in enumerate([40.0, 50.0, 60.0])],
        "covip_lsd_cag": [diagnostic_record(f"d{i}", "lsd", "cag", s) for i, s in enumerate([100.0, 100.0])],
        "covip_lar": [diagnostic_record(f"d{i}", "lar", "direct", s) for i, s in enumerate([0.0, 100.0])],
    }
    write_results(tmp_path / "sub", "diag_model", tasks)
    subs = [load_submission(tmp_path / "sub")]
    assert not any(validate(subs).values())
    diag = leaderboard(subs)["models"][0]["diagnostics"]
    assert diag["lsd"]["direct"]["score"] == pytest.approx(50.0)
    assert diag["lsd"]["cag"]["score"] == pytest.approx(100.0)
    assert diag["lar"]["direct"]["score"] == pytest.approx(50.0)
    half = 4.302652730 * 10 / math.sqrt(3)  # t(0.975, 2 df) * sd / sqrt(n)
    assert diag["lsd"]["direct"]["score_ci95"] == pytest.approx([50 - half, 50 + half])
    assert diag["lar"]["direct"]["score_ci95"] == pytest.approx([0.0, 100.0])  # clipped to the score's range
    edit_json(
        tmp_path / "sub" / f"{STAMP}_results.json", lambda d: d["results"]["covip_lsd"].update({"lsd_f1,none": 40})
    )
    assert any("covip_lsd.lsd_f1,none: reported 40" in p for p in problems_of(tmp_path / "sub"))


def test_every_shipped_task_metric_can_be_recomputed() -> None:
    tasks, groups = catalogue()
    assert {"covip_caption_1c", "covip_caption_4c_noctx"} <= set(tasks) and "covip_caption" in groups
    for info in tasks.values():
        missing = set(info.metrics) - set(RECOMPUTE[info.family])
        assert not missing, f"{info.name}: no recomputation for {missing}"
