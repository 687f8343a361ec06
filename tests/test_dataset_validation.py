"""`covip-data validate`: 0 on a good dataset, 2 on a bad one, naming file, record and field."""

import json
import shutil
import subprocess
import sys

import pytest

from covip.tasks.data_cli import main
from covip.tasks.dataset import load_caption_dataset
from covip.tasks.schema import DataError


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
    assert "OK: 8 samples" in capsys.readouterr().out


def test_validate_cli_subprocess_exit_codes(dataset):
    ok = subprocess.run([sys.executable, "-m", "covip.tasks.data_cli", "validate", str(dataset)], capture_output=True)
    (dataset / "caption_test.jsonl").write_text("{not json\n")
    bad = subprocess.run(
        [sys.executable, "-m", "covip.tasks.data_cli", "validate", str(dataset)], capture_output=True, text=True
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
