"""Leaderboard ingestion, validation (one test per rule) and aggregation, on hand-made submissions with
known scores and slopes. `make_submission` is shared with the site and browser tests."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest
import yaml

from covip.leaderboard.aggregate import leaderboard
from covip.leaderboard.cli import main
from covip.leaderboard.stats import fit_slope
from covip.leaderboard.submission import Limits, discover, load_submission
from covip.leaderboard.tasks import RECOMPUTE, catalogue
from covip.leaderboard.validate import validate
from covip.tasks.scoring import metrics

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

RESULTS = f"{STAMP}_results.json"
SAMPLES = f"{STAMP}_samples_covip_caption_1c.jsonl"


def results_edit(change):
    """A mutation of the submission's results JSON."""
    return lambda root: edit_json(root / RESULTS, change)


def record_edit(change, doc_id: int | None = None):
    """A mutation of the caption records (all, or the one of doc_id)."""

    def apply(root: Path) -> None:
        edit_records(
            samples_file(root), lambda row: change(row["covip_record"]) if doc_id in (None, row["doc_id"]) else None
        )

    return apply


def row_edit(change):
    """A mutation of the sample log's rows (doc_id and record)."""
    return lambda root: edit_records(samples_file(root), change)


def second_run(change=lambda doc: None):
    """A second results file (and its sample log) in the submission: a copy of the first, changed."""

    def apply(root: Path) -> None:
        other = "20260102_000000"
        shutil.copy(samples_file(root), root / f"{other}_samples_covip_caption_1c.jsonl")
        doc = json.loads((root / RESULTS).read_text())
        change(doc)
        (root / f"{other}_results.json").write_text(json.dumps(doc))

    return apply


def linked_out(name: str):
    """The submission's file moved out of it and replaced by a symlink to where it went."""

    def apply(root: Path) -> None:
        outside = root.parent / f"outside_{name}"
        (root / name).rename(outside)
        os.symlink(outside, root / name)

    return apply


def truncated_log(root: Path) -> None:
    samples_file(root).write_text("".join(samples_file(root).read_text().splitlines(keepends=True)[:2]))


def drop_question(record: dict) -> None:
    record["questions"].pop()
    record["verdicts"].pop()


CAPTION = "covip_caption_1c"
MUTATIONS = [
    pytest.param(results_edit(lambda d: d.pop("versions")), f"{RESULTS}: versions: missing", id="no-versions"),
    pytest.param(
        results_edit(lambda d: d.update({"n-samples": [3]})),
        f"{RESULTS}: n-samples: must be an object, got list",
        id="field-wrong-type",
    ),
    pytest.param(
        results_edit(lambda d: d["results"].update({CAPTION: [1]})),
        f"{RESULTS}: results.{CAPTION}: must be an object of metrics, got list",
        id="task-results-not-object",
    ),
    pytest.param(
        results_edit(lambda d: d["results"].update({"covip_caption_9c": {}})),
        f"{RESULTS}: results.covip_caption_9c: unknown task",
        id="unknown-task",
    ),
    pytest.param(
        results_edit(lambda d: d["versions"].update({CAPTION: 0.5})),
        f"{RESULTS}: versions.{CAPTION}: version 0.5",
        id="unknown-version",
    ),
    pytest.param(
        results_edit(lambda d: d["covip"].pop("judge")),
        f"{RESULTS}: covip.judge.backend: judge configuration missing",
        id="no-judge-config",
    ),
    pytest.param(
        record_edit(lambda r: r.pop("judge")), f"{SAMPLES}: line 1: covip_record.judge.id: missing", id="no-judge"
    ),
    pytest.param(
        record_edit(lambda r: r["judge"].update(id="rule:rule-v1:strict:other"), doc_id=2),
        "judge.id: several judges in one submission",
        id="two-judges",
    ),
    pytest.param(
        record_edit(lambda r: r["judge"].update(backend="openai")),
        f"{SAMPLES}: line 1: covip_record.judge.backend: 'openai', but the results' covip.judge.backend is 'rule'",
        id="judge-backend-mismatch",
    ),
    pytest.param(
        lambda root: samples_file(root).unlink(),
        f"{RESULTS}: results.{CAPTION}: no per-sample log {SAMPLES} (run with --log_samples)",
        id="no-sample-log",
    ),
    pytest.param(truncated_log, f"{SAMPLES}: file: 2 samples logged, but the run counted 3", id="incomplete-log"),
    pytest.param(
        results_edit(lambda d: d["n-samples"][CAPTION].update({"original": 10})),
        f"{RESULTS}: n-samples.{CAPTION}: 3 of 10 samples evaluated",
        id="subset-evaluated",
    ),
    pytest.param(
        results_edit(lambda d: d["config"].update(limit=2)),
        f"{RESULTS}: config.limit: run with --limit 2",
        id="limit",
    ),
    pytest.param(
        row_edit(lambda row: row.update(doc_id=5) if row["doc_id"] == 2 else None),
        f"{SAMPLES}: doc_id: doc ids are not 0..2 once each",
        id="doc-ids-not-0..n-1",
    ),
    pytest.param(
        record_edit(lambda r: r.update(sample_id="test_1c_0000"), doc_id=2),
        f"{SAMPLES}: covip_record.sample_id: sample 'test_1c_0000' logged 2 times",
        id="repeated-sample",
    ),
    pytest.param(
        record_edit(lambda r: r.update(recognition_f1=1.0), doc_id=0),
        f"{SAMPLES}: line 1: covip_record.recognition_f1: logged 1.0, recomputed from the caption 0.0",
        id="tampered-f1",
    ),
    pytest.param(
        record_edit(lambda r: r["verdicts"].pop(), doc_id=0),
        f"{SAMPLES}: line 1: covip_record.verdicts: no verdict for question(s) c2.Q3",
        id="question-without-verdict",
    ),
    pytest.param(
        record_edit(lambda r: r["verdicts"].append(r["verdicts"][0]), doc_id=0),
        f"{SAMPLES}: line 1: covip_record.verdicts: question(s) c0.Q1 judged more than once",
        id="question-judged-twice",
    ),
    pytest.param(
        record_edit(drop_question, doc_id=1),
        f"{SAMPLES}: line 2: covip_record.questions: concept 2 (Nametest1c0001x2) has 2 questions, not 3",
        id="concept-missing-a-question",
    ),
    pytest.param(
        record_edit(lambda r: r["verdicts"][3].update(concept=2), doc_id=0),
        f"{SAMPLES}: line 1: covip_record.verdicts[3].concept: 2, but question c1.Q1 is of concept 1",
        id="verdict-of-another-concept",
    ),
    pytest.param(
        record_edit(lambda r: r["questions"][1].update(qid="c0.Q1"), doc_id=0),
        f"{SAMPLES}: line 1: covip_record.questions: question ids repeat",
        id="question-ids-repeat",
    ),
    pytest.param(
        record_edit(lambda r: r.pop("questions"), doc_id=0),
        f"{SAMPLES}: line 1: covip_record.questions: missing",
        id="no-questions",
    ),
    pytest.param(
        results_edit(lambda d: d["results"][CAPTION].pop("acc_pos,none")),
        f"{RESULTS}: results.{CAPTION}.acc_pos,none: missing: the task's metric_list declares it",
        id="declared-metric-missing",
    ),
    pytest.param(
        results_edit(lambda d: d["results"][CAPTION].update({"bleu,none": 1.0})),
        f"{RESULTS}: results.{CAPTION}.bleu,none: a metric the leaderboard cannot recompute",
        id="metric-not-recomputable",
    ),
    pytest.param(
        results_edit(lambda d: d["results"][CAPTION].update({"acc_neg,none": math.nan})),
        f"{RESULTS}: results.{CAPTION}.acc_neg,none: NaN or infinite value",
        id="nan",
    ),
    pytest.param(
        record_edit(lambda r: r.update(extra=[math.inf]), doc_id=2),
        f"{SAMPLES}: line 3: covip_record.extra[0]: NaN or infinite value",
        id="infinity",
    ),
    pytest.param(
        second_run(),
        f"20260102_000000_results.json: results.{CAPTION}: task also reported by {RESULTS}",
        id="task-reported-twice",
    ),
    pytest.param(
        second_run(lambda d: d["config"].update(model="model_b")),
        "config.model: results files of different models in one submission: ['model_a', 'model_b']",
        id="several-models",
    ),
    pytest.param(linked_out(SAMPLES), f"{SAMPLES}: path: resolves to", id="sample-log-symlinked-out"),
    pytest.param(linked_out(RESULTS), f"{RESULTS}: path: resolves to", id="results-symlinked-out"),
    pytest.param(linked_out("card.yaml"), "card.yaml: path: resolves to", id="card-symlinked-out"),
    pytest.param(
        lambda root: (root / "card.yaml").write_text("name: A\nacess: open\n"),
        "card.yaml: card.acess: unknown card field",
        id="card-unknown-field",
    ),
    pytest.param(
        lambda root: (root / "card.yaml").write_text("access: weights\n"),
        "card.yaml: card.access: must be one of",
        id="card-bad-access",
    ),
    pytest.param(
        lambda root: (root / "card.yaml").write_text("parameters: [8, 30]\n"),
        "card.yaml: card.parameters: must be a string or a number, got list",
        id="card-value-wrong-type",
    ),
]


def test_valid_submission_exits_0(good: Path, capsys) -> None:
    assert problems_of(good) == []
    assert main(["validate", str(good)]) == 0
    assert "valid" in capsys.readouterr().out


@pytest.mark.parametrize(("mutate", "expected"), MUTATIONS)
def test_each_rule_rejects_its_mutation(good: Path, mutate, expected: str) -> None:
    mutate(good)
    found = problems_of(good)
    assert any(expected in p for p in found), found


def test_rejection_exits_2_naming_file_line_and_field(good: Path, capsys) -> None:
    edit_records(samples_file(good), lambda row: row["covip_record"].pop("verdicts") if row["doc_id"] == 1 else None)
    assert main(["validate", str(good)]) == 2
    assert f"{SAMPLES}: line 2: covip_record.verdicts: missing or empty" in capsys.readouterr().err


def test_aggregate_mismatch_rejects_with_both_numbers(good: Path, capsys) -> None:
    edit_json(good / RESULTS, lambda d: d["results"][CAPTION].update({"acc_pos,none": 90.0}))
    assert main(["validate", str(good)]) == 2
    err = capsys.readouterr().err
    assert f"results.{CAPTION}.acc_pos,none: reported 90.0, recomputed from 3 sample records 66.66" in err


def test_duplicate_model_ids_are_rejected(tmp_path: Path) -> None:
    make_submission(tmp_path / "one", "same_model", [1.0], [3])
    make_submission(tmp_path / "two", "same_model", [0.0], [0])
    found = problems_of(tmp_path)
    assert sum(f"{RESULTS}: config.model: duplicate model id 'same_model'" in p for p in found) == 2


def test_duplicate_model_ids_from_cards_are_rejected(tmp_path: Path) -> None:
    make_submission(tmp_path / "one", "model_one", [1.0], [3], card={"id": "shared"})
    make_submission(tmp_path / "two", "model_two", [0.0], [0], card={"id": "shared"})
    found = problems_of(tmp_path)
    assert sum("card.yaml: card.id: duplicate model id 'shared'" in p for p in found) == 2


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        (Limits(results_bytes=100), f"{RESULTS}: size: "),
        (Limits(samples_bytes=100), f"{SAMPLES}: size: "),
        (Limits(card_bytes=5), "card.yaml: size: "),
        (Limits(records_per_task=2), f"{SAMPLES}: file: more than 2 samples"),
        (Limits(text_chars=10), f"{SAMPLES}: line 2: covip_record.caption: 68 characters is over the limit of 10"),
        (Limits(card_chars=4), "card.yaml: card.name: 7 characters is over the limit of 4"),
    ],
    ids=["results-file", "sample-log", "card-file", "record-count", "caption-length", "card-value"],
)
def test_absurd_sizes_are_rejected(good: Path, limits: Limits, expected: str) -> None:
    found = [str(p) for ps in validate([load_submission(good, limits=limits)], limits).values() for p in ps]
    assert any(expected in p for p in found), found


def test_default_size_limits(tmp_path: Path) -> None:
    record = caption_record("test_1c_0000", 1, [0], 3, caption="Name" + "x" * 100_001)
    write_results(tmp_path / "sub", "big", {CAPTION: [record]}, card={"notes": "n" * 600})
    found = problems_of(tmp_path / "sub")
    assert any("line 1: covip_record.caption: 100005 characters is over the limit of 100000" in p for p in found)
    assert any("card.yaml: card.notes: 600 characters is over the limit of 500" in p for p in found)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"score": 101.0}, "line 1: covip_record.score: 101.0 is not a number in [0, 100]"),
        ({"score": -1}, "line 1: covip_record.score: -1 is not a number in [0, 100]"),
        ({"response": "x" * 100_001}, "line 1: covip_record.response: 100001 characters is over the limit"),
        ({"mode": "cag"}, "line 1: covip_record.mode: 'cag', but task covip_lsd is 'direct'"),
    ],
    ids=["score-over-100", "score-negative", "response-length", "mode"],
)
def test_diagnostic_record_rules(tmp_path: Path, change: dict, expected: str) -> None:
    records = [diagnostic_record(f"d{i}", "lsd", "direct", s) for i, s in enumerate([40.0, 60.0])]
    write_results(tmp_path / "sub", "diag_model", {"covip_lsd": records})
    assert problems_of(tmp_path / "sub") == []
    edit_records(samples_file(tmp_path / "sub", "covip_lsd"), lambda row: row["covip_record"].update(change))
    found = problems_of(tmp_path / "sub")
    assert any(f"{STAMP}_samples_covip_lsd.jsonl: {expected}" in p for p in found), found


def test_card_date_is_accepted_as_iso_text(good: Path, tmp_path: Path) -> None:
    (good / "card.yaml").write_text("name: Model A\ndate: 2025-01-01\n")  # YAML reads a date, not a string
    subs = [load_submission(good)]
    assert problems_of(good) == []
    entry = leaderboard(subs)["models"][0]
    assert entry["card"]["date"] == "2025-01-01" and "date" not in entry["card_derived"]
    assert main(["build", str(good), "--out", str(tmp_path / "site")]) == 0


def test_card_option_needs_a_single_submission(tmp_path: Path, capsys) -> None:
    make_submission(tmp_path / "one", "m1", [1.0], [3])
    make_submission(tmp_path / "two", "m2", [1.0], [3])
    card = tmp_path / "card.yaml"
    card.write_text("name: X\n")
    assert main(["validate", str(tmp_path), "--card", str(card)]) == 2
    assert "--card applies to one submission" in capsys.readouterr().err
    assert main(["validate", str(tmp_path / "one"), "--card", str(card)]) == 0


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("validate", ["doc ids 0..n-1", "Exit status: 0 when every submission is valid, 2 when any is invalid"]),
        ("build", ["every check of `covip-leaderboard validate`", "Exit status: 0 when the site is written"]),
    ],
)
def test_help_describes_checks_and_exit_codes(command: str, expected: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert all(text in out for text in expected), out


# --- model card: given, or derived from the results' metadata ---------------------------------------------------


@pytest.mark.parametrize(
    ("model", "args", "derived"),
    [
        (
            "covip_qwen3_vl",
            "pretrained=Qwen/Qwen3-VL-8B-Instruct,lora=/ckpt/gspo/step-100",
            {
                "base_model": "Qwen/Qwen3-VL-8B-Instruct",
                "method": "LoRA adapter",
                "notes": "adapter: /ckpt/gspo/step-100",
                "access": "open",
            },
        ),
        ("covip_vllm", "pretrained=/models/merged", {"base_model": "/models/merged", "access": "open"}),
        ("covip_gpt", "model=gpt-4o", {"access": "api"}),
        ("covip_gemini", "model=gemini-2.5-flash", {"access": "api"}),
        ("covip_oracle", "", {"method": "baseline (oracle, shipped with CoViP bench)"}),
        ("covip_retrieval", "", {"method": "baseline (retrieval, shipped with CoViP bench)"}),
        ("some_model", "device=cpu", {}),
    ],
)
def test_card_fields_derived_from_the_results(tmp_path: Path, model: str, args: str, derived: dict) -> None:
    make_submission(tmp_path / "sub", model, [1.0], [3])
    edit_json(tmp_path / "sub" / RESULTS, lambda d: d["config"].update(model_args=args))
    entry = leaderboard([load_submission(tmp_path / "sub")])["models"][0]
    assert entry["card"] == {**derived, "date": "2026-01-01"}
    assert entry["card_derived"] == sorted([*derived, "date"])
    assert entry["card_source"] == "none (no card given)"


def test_card_values_win_over_derived_ones(tmp_path: Path) -> None:
    card = {"method": "CoViP GSPO", "date": "2026-02-01", "parameters": "8B"}
    make_submission(tmp_path / "sub", "covip_qwen3_vl", [1.0], [3], card=card)
    edit_json(tmp_path / "sub" / RESULTS, lambda d: d["config"].update(model_args="pretrained=base,lora=/ckpt"))
    entry = leaderboard([load_submission(tmp_path / "sub")])["models"][0]
    assert entry["card"] == {**card, "base_model": "base", "notes": "adapter: /ckpt", "access": "open"}
    assert entry["card_derived"] == ["access", "base_model", "notes"]


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


@pytest.mark.parametrize(
    ("right", "half"),
    [
        # c = 3,3,2,2,1,1 of t = 3: p = 2/3, c - p·t = 1,1,0,0,-1,-1 → var = 6/5 · 4 / 18² = 2/135
        ([3, 3, 2, 2, 1, 1], 1.959964 * math.sqrt(2 / 135)),
        # every sample 2 of 3: no between-sample spread → zero width (18 independent questions: ±0.218)
        ([2, 2, 2, 2, 2, 2], 0.0),
    ],
)
def test_clustered_interval_by_hand(tmp_path: Path, right: list[int], half: float) -> None:
    make_submission(tmp_path / "sub", "m", [1.0] * len(right), right)
    overall = leaderboard([load_submission(tmp_path / "sub")])["models"][0]["caption"]["overall"]
    assert overall["acc_pos"] == pytest.approx(100 * 2 / 3)
    assert overall["acc_pos_ci95"] == pytest.approx([100 * (2 / 3 - half), 100 * (2 / 3 + half)])
    assert overall["acc_neg_ci95"] == pytest.approx([100.0, 100.0])  # every distractor question answered D
    if half:  # wider than treating the 18 questions as independent: sqrt(p(1 - p) / 18) = 1/9
        assert half > 1.959964 / 9


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
