"""The offline builder: determinism, structure, and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

from covip.tasks.builder.build import BuildConfig, build
from covip.tasks.data.canonical import load_caption_dataset


def build_into(path, **kw):
    build(BuildConfig(out=path, **{"seed": 3, "per_bucket": 1, "tasks": ("caption",), **kw}))
    return path


def test_same_seed_gives_byte_identical_files(tmp_path):
    a = build_into(tmp_path / "a")
    b = build_into(tmp_path / "b")
    manifest_a = (a / "manifest.json").read_bytes()
    assert manifest_a == (b / "manifest.json").read_bytes()
    files = json.loads(manifest_a)["files"]
    assert "caption_test.jsonl" in files and "README.md" in files
    assert sum(f.endswith(".png") for f in files) == (3 + 6 + 9 + 12) + 4
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_different_seed_or_split_differs(tmp_path):
    a = build_into(tmp_path / "a")
    c = build_into(tmp_path / "c", seed=4)
    t = build_into(tmp_path / "t", split="train")
    assert (a / "caption_test.jsonl").read_bytes() != (c / "caption_test.jsonl").read_bytes()
    rows_a = (a / "caption_test.jsonl").read_text()
    rows_t = (t / "caption_train.jsonl").read_text()
    assert json.loads(rows_a.splitlines()[0])["concepts"] != json.loads(rows_t.splitlines()[0])["concepts"]


def test_structure_of_samples(small_benchmark):
    data = load_caption_dataset(small_benchmark)
    assert [s.bucket for s in data.samples] == [1, 1, 2, 2, 3, 3, 4, 4]
    for s in data.samples:
        assert len(s.concepts) == 3 * s.bucket and len(s.positives) == s.bucket
        names = [c.name for c in s.concepts]
        assert len(set(names)) == len(names)
        for c in s.concepts:
            lines = c.dialogue.splitlines()
            assert lines[0] == "**Dialogue:**" and len(lines) == 7
            assert [line.split(":")[0] for line in lines[1:]] == ["User", "Model"] * 3
            assert c.name in lines[1]
            assert len(c.qas) == 3 and all(qa.options["D"] == "The answer cannot be determined" for qa in c.qas)
    letters = {qa.answer for s in data.samples for c in s.concepts for qa in c.qas}
    assert letters == {"A", "B", "C"}
    # positives are scattered, not always the first slots
    assert any(s.positives != tuple(range(s.bucket)) for s in data.samples)


def test_dataset_card_and_refusal_to_overwrite(tmp_path):
    out = build_into(tmp_path / "d")
    card = (out / "README.md").read_text()
    assert "| test | 3 | paper (0.5) | 1 |" in card and "Limitations" in card
    proc = subprocess.run(
        [sys.executable, "-m", "covip.tasks.cli.data", "build", "--out", str(out), "--seed", "3", "--per-bucket", "1"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0 and "--force" in proc.stderr


def test_train_and_test_splits_share_one_manifest(tmp_path):
    out = build_into(tmp_path / "s")
    build(BuildConfig(out=out, seed=9, per_bucket=1, split="train"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["splits"]) == {"test", "train"}
    assert "caption_test.jsonl" in manifest["files"] and "caption_train.jsonl" in manifest["files"]


def test_parallel_build_is_identical_to_serial(tmp_path):
    serial = build_into(tmp_path / "serial")
    parallel = build_into(tmp_path / "parallel", workers=2)
    assert (serial / "manifest.json").read_bytes() == (parallel / "manifest.json").read_bytes()


def cli_build(out, *args):
    cmd = [sys.executable, "-m", "covip.tasks.cli.data", "build", "--out", str(out), "--seed", "3", "--per-bucket", "1"]
    proc = subprocess.run([*cmd, "--buckets", "1,2", "--diag-samples", "3", *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def test_cli_workers_reach_the_builder_and_do_not_change_the_output(tmp_path, monkeypatch):
    serial = cli_build(tmp_path / "serial", "--workers", "1")
    parallel = cli_build(tmp_path / "parallel", "--workers", "2")
    assert (serial / "manifest.json").read_bytes() == (parallel / "manifest.json").read_bytes()

    from covip.tasks.builder import build as build_module
    from covip.tasks.cli import data as data_cli

    seen = []
    monkeypatch.setattr(build_module, "build", lambda config: seen.append(config) or [])
    assert data_cli.main(["build", "--out", str(tmp_path / "x"), "--workers", "2"]) == 0
    assert seen[0].workers == 2
