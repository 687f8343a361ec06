"""`covip-data validate`: 0 on a good dataset, 2 on a bad one, naming file, record and field."""

import json
import shutil
import subprocess
import sys

import pytest

from covip.tasks.cli.data import main
from covip.tasks.data.canonical import load_caption_dataset
from covip.tasks.data.schema import DataError


@pytest.fixture
def dataset(small_benchmark, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(small_benchmark, root)
    return root


def edit_record(root, index, change):
    path = root / "caption_test.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    change(rows[index], rows)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows[index]["sample_id"]


def validate(root, capsys):
    code = main(["validate", str(root)])
    return code, capsys.readouterr().err


def test_good_dataset_is_valid(dataset, capsys):
    assert main(["validate", str(dataset)]) == 0
    out = capsys.readouterr().out
    assert "OK: 8 samples" in out and "caption_test.jsonl" in out
    for task in ("lsd", "lar", "itr"):
        assert f"OK: 3 samples in {dataset / f'{task}_test.jsonl'}" in out


def test_validate_cli_subprocess_exit_codes(dataset):
    ok = subprocess.run([sys.executable, "-m", "covip.tasks.cli.data", "validate", str(dataset)], capture_output=True)
    (dataset / "caption_test.jsonl").write_text("{not json\n")
    bad = subprocess.run(
        [sys.executable, "-m", "covip.tasks.cli.data", "validate", str(dataset)], capture_output=True, text=True
    )
    assert ok.returncode == 0
    assert bad.returncode == 2 and "line 1" in bad.stderr and "invalid JSON" in bad.stderr


CASES = {
    "answer not A-C": (lambda r, rows: r["concepts"][0]["qas"][1].update(answer="D"), "concepts[0].qas[1].answer"),
    "D not pinned": (
        lambda r, rows: r["concepts"][1]["qas"][0]["options"].update(D="Nobody knows"),
        "concepts[1].qas[0].options.D",
    ),
    "positive out of range": (lambda r, rows: r.update(positives=[99]), "positives[0]"),
    "bucket mismatch": (lambda r, rows: r.update(bucket=3), "bucket"),
    "empty dialogue": (lambda r, rows: r["concepts"][2].update(dialogue="  "), "concepts[2].dialogue"),
    "missing image": (lambda r, rows: r["concepts"][0].update(image="images/nope.png"), "concepts[0].image"),
    "duplicate id": (lambda r, rows: r.update(sample_id=rows[0]["sample_id"]), "sample_id"),
    "two QAs": (lambda r, rows: r["concepts"][0]["qas"].pop(), "concepts[0].qas"),
    # ids repeat across concepts (Q1..Q3 each, as in the paper) but not within one
    "duplicate QA id": (
        lambda r, rows: r["concepts"][1]["qas"][2].update(id=r["concepts"][1]["qas"][0]["id"]),
        "concepts[1].qas[2].id",
    ),
    "repeated option": (
        lambda r, rows: r["concepts"][0]["qas"][0]["options"].update(C=r["concepts"][0]["qas"][0]["options"]["A"]),
        "concepts[0].qas[0].options.C",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_defect_is_reported_with_record_and_field(dataset, capsys, case):
    change, field = CASES[case]
    sample_id = edit_record(dataset, 1, change)
    code, err = validate(dataset, capsys)
    assert code == 2
    assert "caption_test.jsonl" in err and f"field '{field}'" in err
    assert "line 2" in err or "record 1" in err, err
    if case != "duplicate id":
        assert sample_id in err


def test_unreadable_image(dataset, capsys):
    row = json.loads((dataset / "caption_test.jsonl").read_text().splitlines()[0])
    (dataset / row["query_image"]).write_bytes(b"not a png")
    code, err = validate(dataset, capsys)
    assert code == 2 and "query_image" in err and "unreadable" in err


def test_tampered_file_fails_manifest_check(dataset, capsys):
    row = json.loads((dataset / "caption_test.jsonl").read_text().splitlines()[0])
    image = dataset / row["concepts"][0]["image"]
    shutil.copy(dataset / row["query_image"], image)  # still a readable PNG, but not the built one
    code, err = validate(dataset, capsys)
    assert code == 2 and "sha256" in err and row["concepts"][0]["image"] in err


def test_loader_raises_instead_of_dropping(dataset):
    edit_record(dataset, 0, lambda r, rows: r.update(bucket=0))
    with pytest.raises(DataError) as info:
        load_caption_dataset(dataset)
    assert len(info.value.problems) == 1


def edit_diagnostic(root, task, index, change):
    path = root / f"{task}_test.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    change(rows[index])
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows[index]["sample_id"]


def test_bad_diagnostic_records_are_named_by_file_record_and_field(dataset, capsys):
    lsd_id = edit_diagnostic(dataset, "lsd", 1, lambda r: r.update(answer=""))
    lar_id = edit_diagnostic(dataset, "lar", 2, lambda r: r["images_context"].__setitem__(1, "images/nope.png"))
    code, err = validate(dataset, capsys)
    assert code == 2
    assert f"lsd_test.jsonl: line 2 (sample_id={lsd_id}): field 'answer': must not be empty" in err
    assert f"lar_test.jsonl: line 3 (sample_id={lar_id}): field 'images_context[1]'" in err and "does not exist" in err


def test_record_problems_and_manifest_mismatch_are_both_reported(dataset, capsys):
    sample_id = edit_record(dataset, 0, lambda r, rows: r.update(bucket=2))
    code, err = validate(dataset, capsys)
    assert code == 2
    assert sample_id in err and "field 'bucket'" in err
    assert "manifest.json: sha256 mismatch" in err and "caption_test.jsonl" in err.split("manifest.json")[-1]


def test_a_diagnostics_only_build_is_valid(tmp_path, capsys):
    out = tmp_path / "lsd_only"
    assert main(["build", "--out", str(out), "--tasks", "lsd", "--diag-samples", "2", "--workers", "1"]) == 0
    assert not (out / "caption_test.jsonl").exists()
    capsys.readouterr()
    assert main(["validate", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"OK: 2 samples in {out / 'lsd_test.jsonl'}"


def test_a_directory_without_dataset_files_is_invalid(tmp_path, capsys):
    code, err = validate(tmp_path, capsys)
    assert code == 2 and "no dataset file" in err


def test_a_non_utf8_byte_names_the_file_line_and_sample(dataset):
    path = dataset / "caption_test.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    sample_id = json.loads(lines[2])["sample_id"]
    lines[2] = lines[2].replace(b'"dialogue": "', b'"dialogue": "\xff', 1)
    path.write_bytes(b"".join(lines))
    with pytest.raises(DataError) as info:
        load_caption_dataset(dataset)
    [problem] = info.value.problems
    assert problem.source == str(path) and problem.record == f"line 3 (sample_id={sample_id})"
    assert "not UTF-8: byte 0xff" in problem.message
