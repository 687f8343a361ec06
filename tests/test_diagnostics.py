"""Diagnostics LSD, LAR, ITR: metric arithmetic, data, prompts, and real lmms_eval runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from lmms_runner import run_lmms_eval

from covip.tasks.builder.build import BuildConfig, build
from covip.tasks.data.canonical import load_diagnostic_dataset
from covip.tasks.data.schema import DataError
from covip.tasks.prompts import (
    CAG_CAPTION,
    CAPTION_INSTRUCTION,
    DIAGNOSTIC_QUESTIONS,
    MEMORY_SYSTEM_PROMPT,
    cag_stage1,
    diagnostic_messages,
    fill_cag,
    is_cag,
)
from covip.tasks.scoring import metrics


@pytest.fixture(scope="module")
def diag_data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("diag")
    build(BuildConfig(out=out, seed=5, per_bucket=1, diag_samples=4))
    return out


# --- metric arithmetic, hand-computed ---------------------------------------------------------------


def test_boxed_extraction_prefers_the_last_box_and_accepts_both_spellings():
    assert metrics.extract_answer("first \\boxed{a} then \\boxed{Lake Tahoe}") == "Lake Tahoe"
    assert metrics.extract_answer("so //boxed{the park}") == "the park"
    assert metrics.extract_answer("no box at all") == "no box at all"
    assert metrics.extract_answer("think // then Central Park", "paper") == " then Central Park"
    assert metrics.extract_answer("\\boxed{x} and //boxed{y}", "paper") == "y"


def test_normalisation_strips_case_punctuation_and_articles():
    assert metrics.normalise_answer("The Park, near  a Lake!") == "park near lake"


def test_token_f1_hand_computed():
    assert metrics.token_f1("Central Park", "central park.") == 1.0
    # pred {riverside, park} vs gold {central, park}: P = R = 1/2
    assert metrics.token_f1("Riverside Park", "Central Park") == pytest.approx(0.5)
    # pred {park}: P = 1, R = 1/2 -> 2/3
    assert metrics.token_f1("the park", "Central Park") == pytest.approx(2 / 3)
    assert metrics.token_f1("", "") == 1.0 and metrics.token_f1("x", "") == 0.0


def test_paper_preset_keeps_punctuation_and_articles():
    assert metrics.token_f1("park.", "park", "paper") == 0.0
    assert metrics.token_f1("the park", "park", "paper") == pytest.approx(2 / 3)


def test_trigger_matching():
    assert metrics.trigger_said("Oh, sks! Hello", "SKS")
    assert not metrics.trigger_said("asks nothing", "SKS")
    assert metrics.trigger_said("asks nothing", "sks", "paper")  # the reference's substring test
    assert not metrics.trigger_said("sks", "SKS", "paper")  # and it is case-sensitive


# --- data ---------------------------------------------------------------------------------------------


def test_build_is_deterministic_and_valid(diag_data, tmp_path):
    again = tmp_path / "again"
    build(BuildConfig(out=again, seed=5, per_bucket=1, diag_samples=4))
    assert (again / "manifest.json").read_bytes() == (diag_data / "manifest.json").read_bytes()
    for task in ("lsd", "lar", "itr"):
        samples, sha = load_diagnostic_dataset(diag_data, task)
        assert len(samples) == 4 and sha


def test_samples_are_memory_streams_with_the_right_answers(diag_data):
    for task in ("lsd", "lar", "itr"):
        samples, _ = load_diagnostic_dataset(diag_data, task)
        for s in samples:
            assert len(s.images_context) == len(s.dialogues_context) >= 4
            target_lines = [d for d in s.dialogues_context if s.answer in d]
            assert target_lines, "the last-seen place appears in a dialogue"
            assert s.last_action in target_lines[-1]
            planted = [d for d in s.dialogues_context if "'SKS'" in d]
            assert len(planted) == (1 if task == "itr" else 0)
            assert s.trigger == ("SKS" if task == "itr" else "")
            if task == "itr":
                assert planted[0] != target_lines[-1], "the instruction is planted in an earlier encounter"


def test_validation_names_record_and_field(diag_data, tmp_path):
    import shutil

    root = tmp_path / "bad"
    shutil.copytree(diag_data, root)
    path = root / "lar_test.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[2]["last_action"] = ""
    rows[3]["dialogues_context"] = rows[3]["dialogues_context"][:-1]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError) as info:
        load_diagnostic_dataset(root, "lar")
    text = str(info.value)
    assert "line 3" in text and "'last_action'" in text
    assert "line 4" in text and "'dialogues_context'" in text


def test_hf_layout_loader(tmp_path):
    from datasets import Dataset
    from PIL import Image

    from covip.tasks.formats.hf import load_hf_diagnostic_dataset

    image = Image.new("RGB", (8, 8), (200, 10, 10))
    Dataset.from_dict(
        {
            "images_context": [[image, image]],
            "dialogues_context": [["User: hi Seth", "User: bye Seth"]],
            "query_image": [image],
            "answer": ["the park"],
            "last_action": ["running"],
        }
    ).save_to_disk(str(tmp_path / "hf"))
    [sample] = load_hf_diagnostic_dataset(str(tmp_path / "hf"), "itr", image_dir=tmp_path / "img")
    assert sample.trigger == "SKS" and sample.answer == "the park" and len(sample.images_context) == 2
    assert (tmp_path / "img" / sample.query_image).is_file()


def paper_columns(samples, root: Path, target: str) -> dict[str, list]:
    """Our samples in the columns of the paper's HF diagnostic sets, images as PIL images."""
    from PIL import Image

    def image(rel: str) -> Image.Image:
        with Image.open(root / rel) as im:
            return im.convert("RGB")

    columns = {
        "images_context": [[image(p) for p in s.images_context] for s in samples],
        "dialogues_context": [list(s.dialogues_context) for s in samples],
        "query_image": [image(s.query_image) for s in samples],
        "answer": [s.answer for s in samples],
    }
    if target == "last_action":
        columns["last_action"] = [s.last_action for s in samples]
    return columns


def save_to_disk(columns: dict[str, list], out: Path) -> Path:
    from datasets import Dataset

    Dataset.from_dict(columns).save_to_disk(str(out))
    return out


@pytest.mark.parametrize(("task", "target"), [("lsd", "answer"), ("lar", "last_action")])
def test_hf_layout_loader_lsd_and_lar(diag_data, tmp_path, task, target):
    from covip.tasks.formats.hf import load_hf_diagnostic_dataset

    samples, _ = load_diagnostic_dataset(diag_data, task)
    columns = paper_columns(samples, diag_data, target)
    loaded = load_hf_diagnostic_dataset(str(save_to_disk(columns, tmp_path / "hf")), task, image_dir=tmp_path / "img")
    assert [getattr(s, target) for s in loaded] == [getattr(s, target) for s in samples]
    for ours, theirs in zip(samples, loaded, strict=True):
        assert theirs.dialogues_context == ours.dialogues_context and theirs.trigger == ""
        assert len(theirs.images_context) == len(ours.images_context)
        assert (tmp_path / "img" / theirs.query_image).is_file()

    columns[target][1] = ""
    bad = save_to_disk(columns, tmp_path / "bad")
    with pytest.raises(DataError, match=f"row 1 \\(sample_1\\): field '{target}': must not be empty"):
        load_hf_diagnostic_dataset(str(bad), task, image_dir=tmp_path / "img2")


def test_hf_lar_set_without_last_action_is_refused(diag_data, tmp_path):
    from covip.tasks.formats.hf import load_hf_diagnostic_dataset

    samples, _ = load_diagnostic_dataset(diag_data, "lar")
    saved = save_to_disk(paper_columns(samples, diag_data, "answer"), tmp_path / "hf")
    with pytest.raises(DataError, match="field 'last_action': missing column"):
        load_hf_diagnostic_dataset(str(saved), "lar", image_dir=tmp_path / "img")


@pytest.mark.integration
def test_lmms_eval_reads_an_hf_lsd_set(diag_data, tmp_path):
    samples, _ = load_diagnostic_dataset(diag_data, "lsd")
    saved = save_to_disk(paper_columns(samples, diag_data, "answer"), tmp_path / "hf_lsd")
    run = run_lmms_eval(
        ["--model", "covip_oracle", "--tasks", "covip_lsd"],
        None,
        tmp_path / "out",
        COVIP_DATA_LSD=f"hf:{saved}",
        COVIP_HOME=str(tmp_path / "home"),
    )
    assert run.code == 0, run.output[-3000:]
    assert run.results["results"]["covip_lsd"]["lsd_f1,none"] == 100.0
    assert run.results["configs"]["covip_lsd"]["metadata"]["covip"]["data"]["location"] == f"hf:{saved}"
    assert len(run.samples("covip_lsd")) == len(samples)
    assert (tmp_path / "home" / "hf_images").is_dir(), "images are cached under COVIP_HOME"


# --- prompts ------------------------------------------------------------------------------------------


def test_direct_and_cag_messages():
    direct = diagnostic_messages("lsd", "direct", "covip", ["i1", "i2"], ["d1", "d2"], "q")
    assert [m["role"] for m in direct] == ["system", "user"]
    assert direct[0]["content"][0]["text"] == MEMORY_SYSTEM_PROMPT
    assert direct[1]["content"][-1]["text"] == DIAGNOSTIC_QUESTIONS["covip"]["lsd"]
    assert direct[1]["content"][0]["text"] == "===== Dialogue 1 ====="
    cag = diagnostic_messages("lar", "cag", "covip", ["i1"], ["d1"], "q")
    assert [m["role"] for m in cag] == ["system", "user", "assistant", "user"]
    assert cag[2]["content"][0]["text"] == CAG_CAPTION
    assert cag[3]["content"][0]["text"] == DIAGNOSTIC_QUESTIONS["covip"]["lar"]
    paper = diagnostic_messages("lsd", "direct", "paper", ["i1"], ["d1"], "q")
    assert [m["role"] for m in paper] == ["user"] and "//boxed" in paper[0]["content"][-1]["text"]


@pytest.mark.parametrize("task", ["lsd", "lar", "itr"])
def test_cag_stage1_keeps_our_system_prompt_and_drops_it_under_the_paper_preset(task):
    """The reference captions in stage 1 from the user turn alone; stage 2 still has its system prompt."""
    for preset, stage1_roles in (("covip", ["system", "user"]), ("paper", ["user"])):
        messages = diagnostic_messages(task, "cag", preset, ["i1"], ["d1"], "q")
        assert is_cag(messages) and messages[0]["role"] == "system"
        stage1 = cag_stage1(messages)
        assert [m["role"] for m in stage1] == stage1_roles
        assert stage1[-1]["content"] == [*messages[1]["content"], {"type": "text", "text": CAPTION_INSTRUCTION}]
        filled = fill_cag(messages, "a caption")
        assert filled[2]["content"] == [{"type": "text", "text": "a caption"}] and not is_cag(filled)


# --- the real CLI -------------------------------------------------------------------------------------


@pytest.mark.integration
def test_every_diagnostic_task_runs_through_lmms_eval(diag_data, tmp_path):
    scores = {}
    for model in ("covip_oracle", "covip_blind", "covip_shortcut"):
        run = run_lmms_eval(
            ["--model", model, "--tasks", "covip_diag,covip_diag_controls"], diag_data, tmp_path / model
        )
        assert run.code == 0, run.output[-3000:]
        scores[model] = run.results["results"]
        record = run.samples("covip_lar_cag")[0]["covip_record"]
        assert record["verdict"] in ("correct", "wrong") and record["judge"]["backend"] == "rule"
    oracle, blind, shortcut = scores["covip_oracle"], scores["covip_blind"], scores["covip_shortcut"]
    for mode in ("", "_cag"):
        assert oracle[f"covip_lsd{mode}"]["lsd_f1,none"] == 100.0
        assert oracle[f"covip_lar{mode}"]["lar_acc,none"] == 100.0
        assert oracle[f"covip_itr{mode}"]["itr_recall,none"] == 100.0
        assert blind[f"covip_lar{mode}"]["lar_acc,none"] == 0.0
        assert blind[f"covip_itr{mode}"]["itr_recall,none"] == 0.0
        assert blind[f"covip_lsd{mode}"]["lsd_f1,none"] < 10
    # the shortcut recites everything: fooled where the metric checks presence (LAR rule judge, ITR), not LSD
    assert shortcut["covip_lsd"]["lsd_f1,none"] < 20
    assert shortcut["covip_itr"]["itr_recall,none"] == 100.0
    assert shortcut["covip_lar"]["lar_acc,none"] == 100.0
    assert shortcut["covip_itr_noctx"]["itr_recall,none"] == 0.0


@pytest.mark.integration
def test_every_diagnostic_task_runs_with_the_tiny_qwen3_vl(diag_data, tmp_path):
    """The real adapter end to end, direct and CAG (its stage 1 captions, stage 2 answers)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from tiny_qwen3_vl import build_tiny_qwen3_vl

    model = build_tiny_qwen3_vl(tmp_path / "tiny")
    args = ["--model", "covip_qwen3_vl", "--model_args", f"pretrained={model},max_pixels=16384,cag_caption_tokens=8"]
    args += ["--batch_size", "2", "--tasks", "covip_diag", "--gen_kwargs", "max_new_tokens=8", "--limit", "2"]
    run = run_lmms_eval(args, diag_data, tmp_path / "out")
    assert run.code == 0, run.output[-3000:]
    results = run.results["results"]
    for task in ("lsd", "lar", "itr"):
        for mode in ("", "_cag"):
            name = f"covip_{task}{mode}"
            assert name in results, name
            lines = run.samples(name)
            assert len(lines) == 2 and all(isinstance(line["covip_record"]["response"], str) for line in lines)
            metric = {"lsd": "lsd_f1", "lar": "lar_acc", "itr": "itr_recall"}[task]
            assert all(0.0 <= line[metric] <= 100.0 for line in lines)  # a per-sample score, logged by lmms-eval
