"""Leaderboard validation, one hostile submission per rule, on copies of real `lmms_eval` runs; the model card; and
the aggregation's arithmetic, checked by hand on typed records built for the purpose."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest
from leaderboard_edits import copy_run, edit_results, edit_rows, read_rows, results_file, samples_file, write_rows

from covip.leaderboard.aggregate import caption_score, diagnostic_score, leaderboard
from covip.leaderboard.cli import main
from covip.leaderboard.stats import fit_slope
from covip.leaderboard.submission import LIMITS, Limits, load_submission
from covip.leaderboard.validate import Options, validate
from covip.tasks.results.records import CaptionRecord, DiagnosticRecord, JudgeRef, Question, Verdict
from covip.tasks.results.run import find_runs

pytest_plugins = ["leaderboard_runs"]
TASK = "covip_caption_3c"


def problems_of(*roots: Path, limits: Limits = LIMITS) -> list[str]:
    subs = [load_submission(root, limits=limits) for root in find_runs(list(roots))]
    return [str(p) for report in validate(subs, Options(limits=limits)) for p in report.rejections]


@pytest.fixture
def good(real_runs, tmp_path: Path) -> Path:
    """The shortcut baseline's `--tasks covip_caption_3c` run (two samples), with a card."""
    return copy_run(real_runs["single"], tmp_path / "sub", card={"name": "Model A", "access": "open"})


def results_edit(change):
    return lambda root: edit_results(root, change)


def record_edit(change, doc_id: int | None = None):
    """A change of the records (all, or the one of doc_id)."""
    return lambda root: edit_rows(
        root, TASK, lambda row: change(row["covip_record"]) if doc_id in (None, row["doc_id"]) else None
    )


def row_edit(change):
    return lambda root: edit_rows(root, TASK, change)


def second_run(change=lambda doc: None):
    """A second results file (and its sample log) in the submission: a copy of the first, changed."""

    def apply(root: Path) -> None:
        stamp = "20990101_000000"
        shutil.copy(samples_file(root, TASK), root / f"{stamp}_samples_{TASK}.jsonl")
        doc = json.loads(results_file(root).read_text())
        change(doc)
        (root / f"{stamp}_results.json").write_text(json.dumps(doc))

    return apply


def linked_out(which):
    """The submission's file moved out of it and replaced by a symlink to where it went."""

    def apply(root: Path) -> None:
        path = which(root)
        outside = root.parent / f"outside_{path.name}"
        path.rename(outside)
        os.symlink(outside, path)

    return apply


def drop_last_question(record: dict) -> None:
    qid = record["questions"].pop()["qid"]
    record["verdicts"] = [v for v in record["verdicts"] if v["qid"] != qid]


def keep_first_line(root: Path) -> None:
    write_rows(root, TASK, read_rows(root, TASK)[:1])


def set_identity(path: list[str], value):
    def change(doc: dict) -> None:
        place = doc["configs"][TASK]["metadata"]["covip"]
        for key in path[:-1]:
            place = place[key]
        place[path[-1]] = value

    return results_edit(change)


# Each case: a change, then what the rejection says ({R}: the results file, {S}: the sample log, {T}: the task; a
# tuple: parts it says, in order) and the rule it names.
MUTATIONS = [
    pytest.param(results_edit(lambda d: d.pop("versions")), "{R}: versions: missing", "schema", id="no-versions"),
    pytest.param(
        results_edit(lambda d: d.update({"n-samples": [3]})),
        "{R}: n-samples: must be an object, got list",
        "readable",
        id="field-wrong-type",
    ),
    pytest.param(
        results_edit(lambda d: d["results"].update({TASK: [1]})),
        "{R}: task {T}: results.{T}: must be an object of metrics, got list",
        "readable",
        id="task-results-not-object",
    ),
    pytest.param(
        results_edit(lambda d: d["results"].update({"covip_caption_9c": {}})),
        "{R}: task covip_caption_9c: results.covip_caption_9c: not a CoViP or RePIC task this package ships",
        "task",
        id="unknown-task",
    ),
    pytest.param(
        results_edit(lambda d: d["versions"].update({TASK: 0.5})),
        "{R}: task {T}: versions.{T}: version 0.5; this package's task is version 2.0",
        "task",
        id="unknown-version",
    ),
    pytest.param(
        results_edit(lambda d: d["configs"][TASK]["metadata"].pop("covip")),
        "{R}: task {T}: configs.{T}.metadata.covip: missing",
        "identity",
        id="no-identity",
    ),
    pytest.param(
        set_identity(["data", "samples_sha256"], "not-a-hash"),
        "{R}: task {T}: configs.{T}.metadata.covip.data.samples_sha256: String should match pattern",
        "identity",
        id="identity-field",
    ),
    pytest.param(
        set_identity(["judge"], None),
        "{R}: task {T}: configs.{T}.metadata.covip.judge: missing: a caption task is judged",
        "identity",
        id="identity-without-judge",
    ),
    pytest.param(
        record_edit(lambda r: r.pop("judge"), doc_id=0),
        ("{S}: task {T}: line 1: covip_record", ": Value error, judged record without its judge"),
        "readable",
        id="no-judge",
    ),
    pytest.param(
        record_edit(lambda r: r["judge"].update(id="rule:rule-v1:strict:other"), doc_id=1),
        "{S}: task {T}: line 2 (sample test_3c_0001): covip_record.judge: rule:rule-v1:strict:other, but the task's "
        "config records judge rule:rule-v1:strict:",
        "identity",
        id="another-judge",
    ),
    pytest.param(
        lambda root: samples_file(root, TASK).unlink(),
        "{R}: task {T}: results.{T}: no sample log {S} (run with --log_samples)",
        "sample-log",
        id="no-sample-log",
    ),
    pytest.param(
        keep_first_line, "{S}: task {T}: file: 1 samples logged, but the run counted 2", "complete", id="log-cut"
    ),
    pytest.param(
        results_edit(lambda d: d["n-samples"][TASK].update({"original": 10})),
        "{R}: task {T}: n-samples.{T}: 2 of 10 samples evaluated: not the whole test set",
        "complete",
        id="subset-evaluated",
    ),
    pytest.param(
        results_edit(lambda d: d["config"].update(limit=2)),
        "{R}: config.limit: run with --limit 2",
        "complete",
        id="limit",
    ),
    pytest.param(
        row_edit(lambda row: row.update(doc_id=5) if row["doc_id"] == 1 else None),
        "{S}: task {T}: doc_id: doc ids are not 0..1 once each",
        "complete",
        id="doc-ids-not-0..n-1",
    ),
    pytest.param(
        record_edit(lambda r: r.update(sample_id="test_3c_0000"), doc_id=1),
        "{S}: task {T}: covip_record.sample_id: sample 'test_3c_0000' logged 2 times",
        "complete",
        id="repeated-sample",
    ),
    pytest.param(
        record_edit(lambda r: r.update(control="blind"), doc_id=0),
        "{S}: task {T}: line 1 (sample test_3c_0000): covip_record.control: 'blind', but task {T} is 'none'",
        "complete",
        id="record-of-another-task",
    ),
    pytest.param(
        record_edit(lambda r: r.update(verdicts=[], judge=None), doc_id=0),
        "{S}: task {T}: line 1 (sample test_3c_0000): covip_record.verdicts: missing: the sample was not judged",
        "complete",
        id="not-judged",
    ),
    pytest.param(
        record_edit(lambda r: r["verdicts"].pop(), doc_id=0),
        ("{S}: task {T}: line 1: covip_record", ": Value error, verdicts must cover each question once"),
        "readable",
        id="question-without-verdict",
    ),
    pytest.param(
        record_edit(lambda r: r["verdicts"].append(r["verdicts"][0]), doc_id=0),
        ("{S}: task {T}: line 1: covip_record", ": Value error, verdicts must cover each question once"),
        "readable",
        id="question-judged-twice",
    ),
    pytest.param(
        record_edit(drop_last_question, doc_id=1),
        "{S}: task {T}: line 2 (sample test_3c_0001): covip_record.questions: concept {last} (",
        "complete",
        id="concept-missing-a-question",
    ),
    pytest.param(
        record_edit(lambda r: r["questions"][1].update(qid=r["questions"][0]["qid"]), doc_id=0),
        ("{S}: task {T}: line 1: covip_record", ": Value error, question ids repeat"),
        "readable",
        id="question-ids-repeat",
    ),
    pytest.param(
        record_edit(lambda r: r.pop("questions"), doc_id=0),
        ("{S}: task {T}: line 1: covip_record.", "questions: Field required"),
        "readable",
        id="no-questions",
    ),
    pytest.param(
        row_edit(lambda row: row.update(filtered_resps=["Something else."]) if row["doc_id"] == 0 else None),
        "{S}: task {T}: line 1 (sample test_3c_0000): covip_record.caption: differs from the model's response",
        "output",
        id="record-not-the-logged-response",
    ),
    pytest.param(
        row_edit(lambda row: row["acc_neg"].update(correct=18) if row["doc_id"] == 0 else None),
        "{S}: task {T}: line 1 (sample test_3c_0000): acc_neg: logged {{",
        "recompute",
        id="logged-per-sample-value",
    ),
    pytest.param(
        results_edit(lambda d: d["results"][TASK].pop("acc_pos,none")),
        "{R}: task {T}: results.{T}.acc_pos,none: missing: the task's metric_list declares it",
        "recompute",
        id="declared-metric-missing",
    ),
    pytest.param(
        results_edit(lambda d: d["results"][TASK].update({"bleu,none": 1.0})),
        "{R}: task {T}: results.{T}.bleu,none: a metric the leaderboard cannot recompute",
        "recompute",
        id="metric-not-recomputable",
    ),
    pytest.param(
        results_edit(lambda d: d["results"][TASK].update({"acc_neg,none": 90.0})),
        "{R}: task {T}: results.{T}.acc_neg,none: reported 90.0, recomputed from 2 sample records 0.0",
        "recompute",
        id="aggregate-differs",
    ),
    pytest.param(
        results_edit(lambda d: d["results"][TASK].update({"acc_neg,none": math.nan})),
        "{R}: task {T}: results.{T}.acc_neg,none: NaN or infinite value",
        "numbers",
        id="nan",
    ),
    pytest.param(
        record_edit(lambda r: r["judge"]["decoding"].update(t=math.inf), doc_id=1),
        "{S}: task {T}: line 2 (sample test_3c_0001): covip_record.judge.decoding.t: NaN or infinite value",
        "numbers",
        id="infinity",
    ),
    pytest.param(second_run(), "results.{T}: task also reported by {R}", "readable", id="task-reported-twice"),
    pytest.param(
        second_run(lambda d: d["config"].update(model="model_b")),
        "config.model: results files of different models in one submission: ['covip_shortcut', 'model_b']",
        "identity",
        id="several-models",
    ),
    pytest.param(
        linked_out(lambda root: samples_file(root, TASK)), "{S}: task {T}: path: resolves to", "readable", id="log-out"
    ),
    pytest.param(linked_out(results_file), "{R}: path: resolves to", "readable", id="results-symlinked-out"),
    pytest.param(linked_out(lambda root: root / "card.yaml"), "card.yaml: path: resolves to", "card", id="card-out"),
    pytest.param(
        lambda root: (root / "card.yaml").write_text("name: A\nacess: open\n"),
        "card.yaml: card.acess: unknown card field",
        "card",
        id="card-unknown-field",
    ),
    pytest.param(
        lambda root: (root / "card.yaml").write_text("access: weights\n"),
        "card.yaml: card.access: must be one of",
        "card",
        id="card-bad-access",
    ),
    pytest.param(
        lambda root: (root / "card.yaml").write_text("parameters: [8, 30]\n"),
        "card.yaml: card.parameters: must be a string or a number, got list",
        "card",
        id="card-value-wrong-type",
    ),
    pytest.param(
        lambda root: (root / "card.yaml").write_text("[" * 5000 + "]" * 5000),
        "card.yaml: file: not valid YAML",
        "card",
        id="card-nested-too-deeply",
    ),
]


def test_valid_submission_exits_0(good: Path, capsys) -> None:
    assert problems_of(good) == []
    assert main(["validate", str(good)]) == 0
    verdicts = sum(len(row["covip_record"]["verdicts"]) for row in read_rows(good, TASK))
    expected = f"{good}: valid (1 tasks, 2 samples; rule judge re-run on {verdicts} verdicts; benchmark checked)"
    assert expected in capsys.readouterr().out


@pytest.mark.parametrize(("mutate", "expected", "rule"), MUTATIONS)
def test_each_rule_rejects_its_mutation(good: Path, mutate, expected: str, rule: str) -> None:
    last = len(read_rows(good, TASK)[1]["covip_record"]["names"]) - 1  # the concept of the last question
    names = {"R": results_file(good).name, "S": samples_file(good, TASK).name, "T": TASK, "last": last}
    mutate(good)
    found = problems_of(good)
    parts = [part.format(**names) for part in ((expected,) if isinstance(expected, str) else expected)]
    assert any(all(part in p for part in parts) and p.endswith(f"[rule: {rule}]") for p in found), found


def test_rejection_exits_2_and_prints_each_problem(good: Path, capsys) -> None:
    edit_rows(good, TASK, lambda row: row["covip_record"].update(control="noctx"))
    assert main(["validate", str(good)]) == 2
    err = capsys.readouterr().err
    assert f"{good}: REJECTED (2 problem(s))" in err
    assert (
        f"{good}/{samples_file(good, TASK).name}: task {TASK}: line 2 (sample test_3c_0001): covip_record.control"
        in err
    )


@pytest.mark.parametrize(
    ("where", "value", "expected"),
    [
        ("preset", "paper", "covip_caption_1c_blind.metadata.covip.preset: 'paper', but task covip_caption_1c"),
        (
            "data",
            {"location": "x", "manifest_sha256": None, "samples_sha256": "0" * 64, "samples": 8},
            "covip_caption_1c_blind.metadata.covip.data.samples_sha256: '000",
        ),
    ],
)
def test_one_preset_and_one_dataset_per_submission(real_runs, tmp_path, where: str, value, expected: str) -> None:
    sub = copy_run(real_runs["oracle"], tmp_path / "sub")
    edit_results(sub, lambda d: d["configs"]["covip_caption_1c_blind"]["metadata"]["covip"].update({where: value}))
    found = problems_of(sub)
    assert any(expected in p and p.endswith("[rule: identity]") for p in found), found


def test_duplicate_model_ids_are_rejected(real_runs, tmp_path: Path) -> None:
    copy_run(real_runs["single"], tmp_path / "one")
    copy_run(real_runs["single"], tmp_path / "two")
    found = problems_of(tmp_path)
    assert (
        sum("config.model: duplicate model id 'covip_shortcut'" in p and "[rule: unique-id]" in p for p in found) == 2
    )


def test_duplicate_model_ids_from_cards_are_rejected(real_runs, tmp_path: Path) -> None:
    copy_run(real_runs["single"], tmp_path / "one", card={"id": "shared"})
    copy_run(real_runs["oracle_3c"], tmp_path / "two", card={"id": "shared"})
    found = problems_of(tmp_path)
    assert sum("card.yaml: card.id: duplicate model id 'shared'" in p for p in found) == 2


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        (Limits(results_bytes=100), "{R}: size: "),
        (Limits(samples_bytes=100), "{S}: task {T}: size: "),
        (Limits(card_bytes=5), "card.yaml: size: "),
        (Limits(records_per_task=1), "{S}: task {T}: file: more than 1 samples"),
        (Limits(text_chars=10), "{S}: task {T}: line 1: covip_record: answer over 10 characters"),
        (Limits(card_chars=4), "card.yaml: card.name: 7 characters is over the limit of 4"),
    ],
    ids=["results-file", "sample-log", "card-file", "record-count", "caption-length", "card-value"],
)
def test_absurd_sizes_are_rejected(good: Path, limits: Limits, expected: str) -> None:
    expected = expected.format(R=results_file(good).name, S=samples_file(good, TASK).name, T=TASK)
    found = problems_of(good, limits=limits)
    assert any(expected in p for p in found), found


def test_default_size_limits(good: Path) -> None:
    huge = "Name " + "x" * 100_000
    edit_rows(good, TASK, lambda row: row.update(filtered_resps=[huge]) or row["covip_record"].update(caption=huge))
    (good / "card.yaml").write_text(f"notes: {'n' * 600}\n")
    found = problems_of(good)
    assert any("line 1: covip_record: answer over 100000 characters" in p for p in found), found
    assert any("card.yaml: card.notes: 600 characters is over the limit of 500" in p for p in found), found


@pytest.mark.parametrize(
    ("task", "change", "expected", "rule"),
    [
        ("covip_lsd", {"mode": "cag"}, "covip_record.mode: 'cag', but task covip_lsd is 'direct'", "complete"),
        ("covip_itr", {"reference": "BANANA"}, "covip_record.reference: 'BANANA', the benchmark's is", "benchmark"),
        (
            "covip_lsd_cag",
            {"preset": "paper"},
            "covip_record.preset: 'paper', but the task's config records",
            "identity",
        ),
        ("covip_lar", {"response": "x" * 100_001}, "line 1: covip_record: answer over 100000 characters", "readable"),
    ],
    ids=["mode", "reference", "preset", "response-length"],
)
def test_diagnostic_record_rules(real_runs, tmp_path: Path, task: str, change: dict, expected: str, rule: str) -> None:
    sub = copy_run(real_runs["full"], tmp_path / "sub")
    edit_rows(sub, task, lambda row: row["covip_record"].update(change) if row["doc_id"] == 0 else None)
    found = problems_of(sub)
    assert any(f"task {task}: " in p and expected in p and p.endswith(f"[rule: {rule}]") for p in found), found


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (
            "validate",
            [
                "doc ids 0..n-1",
                "Rules (each rejection names the file, task, record, field and rule)",
                "Exit status: 0 when every submission is valid; 2 when any is rejected",
            ],
        ),
        (
            "build",
            ["every check of `covip-leaderboard validate`", "the rejected submissions listed apart", "--spot-check"],
        ),
    ],
)
def test_help_describes_rules_and_exit_codes(command: str, expected: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert all(text in out for text in expected), out


# --- model card: given, or derived from the results' metadata ---------------------------------------------------


def entry_of(root: Path, card: Path | None = None) -> dict:
    [report] = validate([load_submission(root, card)])
    assert report.valid, [str(p) for p in report.rejections]
    [entry] = leaderboard([report])["models"]
    return entry


def test_card_date_is_accepted_as_iso_text(good: Path, tmp_path: Path) -> None:
    (good / "card.yaml").write_text("name: Model A\ndate: 2025-01-01\n")  # YAML reads a date, not a string
    entry = entry_of(good)
    assert entry["card"]["date"] == "2025-01-01" and "date" not in entry["card_derived"]
    assert main(["build", str(good), "--out", str(tmp_path / "site")]) == 0


def test_card_option_needs_a_single_submission(real_runs, tmp_path: Path, capsys) -> None:
    copy_run(real_runs["single"], tmp_path / "subs" / "one")
    copy_run(real_runs["oracle_3c"], tmp_path / "subs" / "two")
    card = tmp_path / "card.yaml"
    card.write_text("name: X\n")
    assert main(["validate", str(tmp_path / "subs"), "--card", str(card)]) == 2
    assert "--card applies to one submission" in capsys.readouterr().err
    assert main(["validate", str(tmp_path / "subs" / "one"), "--card", str(card)]) == 0
    assert entry_of(tmp_path / "subs" / "one", card)["name"] == "X"


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
        ("some_model", "device=cpu", {}),
    ],
)
def test_card_fields_derived_from_the_results(real_runs, tmp_path: Path, model: str, args: str, derived: dict) -> None:
    sub = copy_run(real_runs["single"], tmp_path / "sub")
    edit_results(sub, lambda d: d["config"].update(model=model, model_args=args))
    stamp = json.loads(results_file(sub).read_text())["date"]
    entry = entry_of(sub)
    date = f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}"
    assert entry["card"] == {**derived, "date": date}
    assert entry["card_derived"] == sorted([*derived, "date"])
    assert entry["card_source"] == "none (no card given)"
    assert entry["id"] == (f"{model}({args})" if args else model)


def test_card_values_win_over_derived_ones(real_runs, tmp_path: Path) -> None:
    card = {"method": "CoViP GSPO", "date": "2026-02-01", "parameters": "8B"}
    sub = copy_run(real_runs["single"], tmp_path / "sub", card=card)
    edit_results(sub, lambda d: d["config"].update(model="covip_qwen3_vl", model_args="pretrained=base,lora=/ckpt"))
    entry = entry_of(sub)
    assert entry["card"] == {**card, "base_model": "base", "notes": "adapter: /ckpt", "access": "open"}
    assert entry["card_derived"] == ["access", "base_model", "notes"]


# --- aggregation arithmetic, by hand ------------------------------------------------------------------------------

JUDGE = JudgeRef(id="rule:test", backend="rule", model="rule-v1", preset="strict")


def caption_record(
    sample_id: str, bucket: int, right: int, leaked: int = 0, said: tuple[int, ...] = (0,)
) -> CaptionRecord:
    """A judged record: `right` of concept 0's 3 questions answered correctly, `leaked` negative answers not D."""
    names = [f"Name{sample_id}x{j}" for j in range(3 * bucket)]
    questions, verdicts = [], []
    for j in range(len(names)):
        for k in range(3):
            qid = f"c{j}.Q{k}"
            questions.append(
                Question(qid=qid, concept=j, question="?", options=dict(zip("ABCD", "wxyz", strict=True)), gold="A")
            )
            if j < bucket:
                pred = "A" if (j > 0 or k < right) else "B"
            else:
                pred, leaked = ("A", leaked - 1) if leaked > 0 else ("D", leaked)
            verdicts.append(Verdict(qid=qid, pred=pred))
    caption = " and ".join(names[i] for i in said)
    return CaptionRecord(
        sample_id=sample_id,
        bucket=bucket,
        control="none",
        caption=caption,
        names=names,
        positives=list(range(bucket)),
        questions=questions,
        verdicts=verdicts,
        judge=JUDGE,
    )


def test_bucket_scores_by_hand() -> None:
    one = [caption_record("s1", 1, 3), caption_record("s2", 1, 0, leaked=3, said=())]  # 3/6 right, 3/12 leaked
    two = [caption_record("s3", 2, 2, said=(0, 1))]  # concept 0: 2 of 3, concept 1: 3 of 3
    score = caption_score(one)
    assert score["acc_pos"] == pytest.approx(50.0) and score["acc_neg"] == pytest.approx(75.0)
    assert score["score"] == pytest.approx(2 * 50 * 75 / 125)
    assert caption_score(two)["acc_pos"] == pytest.approx(100 * 5 / 6)
    pooled = caption_score(one + two)
    assert pooled["acc_pos"] == pytest.approx(100 * 8 / 12) and pooled["acc_neg"] == pytest.approx(100 * 21 / 24)
    assert pooled["recognition_f1"] == pytest.approx((1.0 + 0.0 + 1.0) / 3)


@pytest.mark.parametrize(
    ("right", "half"),
    [
        # c = 3,3,2,2,1,1 of t = 3: p = 2/3, c - p·t = 1,1,0,0,-1,-1 → var = 6/5 · 4 / 18² = 2/135
        ([3, 3, 2, 2, 1, 1], 1.959964 * math.sqrt(2 / 135)),
        # every sample 2 of 3: no between-sample spread → zero width (18 independent questions: ±0.218)
        ([2, 2, 2, 2, 2, 2], 0.0),
    ],
)
def test_clustered_interval_by_hand(right: list[int], half: float) -> None:
    overall = caption_score([caption_record(f"s{i}", 1, r) for i, r in enumerate(right)])
    assert overall["acc_pos"] == pytest.approx(100 * 2 / 3)
    assert overall["acc_pos_ci95"] == pytest.approx([100 * (2 / 3 - half), 100 * (2 / 3 + half)])
    assert overall["acc_neg_ci95"] == pytest.approx([100.0, 100.0])  # every distractor question answered D
    if half:  # wider than treating the 18 questions as independent: sqrt(p(1 - p) / 18) = 1/9
        assert half > 1.959964 / 9


def test_slope_by_hand() -> None:
    # x = 0, .5, 1; y = 0, 1, 1: Sxx = .5, Sxy = .5 → m = 1, b = 1/6; SSE = 1/6 → stderr = sqrt(1/6 / 1 / .5)
    fit = fit_slope([(0.0, 0.0), (0.5, 1.0), (1.0, 1.0)])
    assert fit.slope == pytest.approx(1.0)
    assert fit.intercept == pytest.approx(1 / 6)
    assert fit.r == pytest.approx(0.5 / math.sqrt(0.5 * 2 / 3))
    assert fit.stderr == pytest.approx(math.sqrt(1 / 3))
    half = 12.706204736 * math.sqrt(1 / 3)  # t(0.975, 1 df)
    assert fit.ci95 == pytest.approx((1.0 - half, 1.0 + half))
    assert not fit.reliable  # three samples support no slope


def test_diagnostic_interval_by_hand() -> None:
    def itr(i: int, said: bool) -> DiagnosticRecord:
        response = "SKS, I saw it." if said else "I saw it."
        return DiagnosticRecord(
            sample_id=f"d{i}",
            task="itr",
            mode="direct",
            control="none",
            preset="covip",
            response=response,
            reference="SKS",
        )

    score = diagnostic_score([itr(0, True), itr(1, True), itr(2, False)])
    sd = math.sqrt(((100 / 3) ** 2 * 2 + (200 / 3) ** 2) / 2)
    half = 4.302652730 * sd / math.sqrt(3)  # t(0.975, 2 df) · sd / √n
    assert score["score"] == pytest.approx(200 / 3)
    assert score["score_ci95"] == pytest.approx([max(0.0, 200 / 3 - half), min(100.0, 200 / 3 + half)])


def test_reported_rows_are_apart_and_unranked(real_runs, tmp_path: Path) -> None:
    copy_run(real_runs["oracle"], tmp_path / "a")
    copy_run(real_runs["blind"], tmp_path / "b")
    data = leaderboard(validate([load_submission(r) for r in find_runs([tmp_path])]))
    assert [(m["model"], m["rank"]) for m in data["models"]] == [("covip_oracle", 1), ("covip_blind", 2)]
    slopes = {r["model"]: r["slope"] for r in data["reported"]["recognition_vs_retrieval"]["rows"]}
    assert slopes == {"Qwen3-VL-8B (base)": 0.35, "Qwen3-VL-8B + RePIC": 0.39, "Qwen3-VL-8B + CoViP": 0.65}
    assert all("rank" not in r for r in data["reported"]["capeval_qas"]["rows"])
