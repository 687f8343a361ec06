"""Round trips between our canonical data and the paper's reference formats, and their error reports."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from covip.tasks.data.canonical import load_caption_dataset, write_jsonl  # noqa: E402
from covip.tasks.data.schema import UNDETERMINED, CaptionSample, DataError  # noqa: E402
from covip.tasks.data.sources import load_caption_source  # noqa: E402
from covip.tasks.formats.export import export_reference  # noqa: E402
from covip.tasks.formats.hf import load_hf_caption_dataset  # noqa: E402
from covip.tasks.formats.names import infer_concept_name  # noqa: E402
from covip.tasks.formats.testset import (  # noqa: E402
    CONCEPT_NAMES_FILE,
    META_FILE,
    QAS_GT_FILE,
    SAMPLE_IDS_FILE,
    load_reference_testset,
)

PLACES = ["Riverside farmers market", "old harbor", "Central Park", "Maple Street bakery", "Lake Tahoe shore"]
CITIES = ["Boston", "Kyoto", "Austin", "Denver", "Portland"]
TIMES = ["last summer", "last winter", "two weeks ago", "on my birthday", "in May 2021", "last fall"]
WEEKDAYS = ["Monday", "Friday", "Sunday"]


def builder_dialogue(name: str, rng: random.Random) -> str:
    """A dialogue shaped like `covip-data build` output: header, then 3 User/Model pairs naming the concept."""
    place, city, time, day = rng.choice(PLACES), rng.choice(CITIES), rng.choice(TIMES), rng.choice(WEEKDAYS)
    user = [
        f"I took {name} to the {place} {time}. It was so crowded!",
        rng.choice(
            [
                f"{name} loves waiting by the window every {day} morning.",
                f"Every {day}, {name} sits next to me while I read.",
                f"I first found {name} at a little shop in {city} back in April.",
            ]
        ),
        rng.choice([f"Yes, {name} even got a treat from my friend Maria.", f"My sister says {name} is spoiled."]),
    ]
    model = [
        f"That sounds lovely! How did {name} handle the crowd?",
        "What a sweet routine. Do you have a favourite memory of that?",
        f"It sounds like {name} is a big part of your life.",
    ]
    lines = ["**Dialogue:**"]
    for u, m in zip(user, model, strict=True):
        lines += [f"User: {u}", f"Model: {m}"]
    return "\n".join(lines)


def qa(qid: str, question: str, right: str, wrong: tuple[str, str], letter: str) -> dict[str, Any]:
    texts = list(wrong)
    texts.insert("ABC".index(letter), right)
    return {"id": qid, "question": question, "options": dict(zip("ABC", texts, strict=True)) | {"D": UNDETERMINED},
            "answer": letter}  # fmt: skip


def concept_qas(name: str, rng: random.Random) -> list[dict[str, Any]]:
    return [
        qa("Q1", f"Where did the user take {name}?", "The farmers market", ("The beach", "The zoo"), rng.choice("ABC")),
        qa("Q2", "When did it happen?", "Last summer", ("Last winter", "Yesterday"), rng.choice("ABC")),
        qa("Q3", f"What does {name} do on weekends?", "Waits by the window", ("Sleeps", "Runs"), rng.choice("ABC")),
    ]


def write_png(path: Path, color: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 6), color).save(path)


SAMPLE_SPECS = [  # (sample_id, names, positives)
    ("cap-000", ["Seth", "Matthew", "Judy"], [0]),
    ("cap-001", ["Garrett", "April", "Will", "Austin", "Grace", "Dawn"], [4, 1]),
    ("cap-002", ["David", "Joy", "Mark"], [2]),
]


def build_canonical(root: Path) -> list[CaptionSample]:
    """A hand-made canonical dataset directory (caption_test.jsonl + images/), loaded by the canonical loader."""
    rng = random.Random(7)
    rows = []
    for s, (sid, names, positives) in enumerate(SAMPLE_SPECS):
        concepts = []
        for j, name in enumerate(names):
            image = f"images/{sid}/concept_{j}.png" if (s, j) != (2, 0) else "images/cap-000/concept_0.png"
            write_png(root / image, (40 * s, 30 * j, 200))
            concepts.append({"name": name, "image": image, "dialogue": builder_dialogue(name, rng),
                             "qas": concept_qas(name, rng)})  # fmt: skip
        write_png(root / f"images/{sid}/query.png", (255, 10 * s, 0))
        rows.append({"sample_id": sid, "bucket": min(len(positives), 4), "concepts": concepts,
                     "positives": positives, "query_image": f"images/{sid}/query.png"})  # fmt: skip
    write_jsonl(root / "caption_test.jsonl", rows)
    return list(load_caption_dataset(root, "test").samples)


@pytest.fixture()
def canonical(tmp_path: Path) -> tuple[Path, list[CaptionSample]]:
    root = tmp_path / "canonical"
    return root, build_canonical(root)


@pytest.fixture()
def exported(tmp_path: Path, canonical: tuple[Path, list[CaptionSample]]) -> tuple[Path, list[CaptionSample]]:
    root, samples = canonical
    out = tmp_path / "reference"
    export_reference(samples, root, out)
    return out, samples


def load_exported(out: Path, **kwargs: Any) -> list[CaptionSample]:
    return load_reference_testset(out / META_FILE, out / QAS_GT_FILE, out, **kwargs)


# --------------------------------------------------------------------------------------------------------------
# Export / load round trip
# --------------------------------------------------------------------------------------------------------------


def test_export_writes_reference_structure(exported: tuple[Path, list[CaptionSample]]) -> None:
    out, samples = exported
    lines = (out / META_FILE).read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(samples)
    first = json.loads(lines[1])
    assert list(first) == ["imgs", "concepts", "dialogues"]
    assert first["imgs"] == "images/cap-001/query.png"
    assert list(first["dialogues"]) == [f"concept_{j}" for j in range(6)]
    assert first["dialogues"]["concept_1"] == samples[1].concepts[1].dialogue
    text = (out / QAS_GT_FILE).read_text(encoding="utf-8")
    gt = json.loads(text)
    assert text.startswith('{\n    "sample_0": {\n        "qas": {')  # indent=4 like the reference
    assert list(gt) == ["sample_0", "sample_1", "sample_2"]
    assert gt["sample_1"]["gts"] == [4, 1]
    qa0 = gt["sample_1"]["qas"]["concept_4"]["qa"][0]
    assert list(qa0) == ["id", "question", "options", "correct_answer"]
    assert qa0["correct_answer"] == samples[1].concepts[4].qas[0].answer
    assert qa0["options"]["D"] == UNDETERMINED
    for rec in map(json.loads, lines):
        for rel in [rec["imgs"], *rec["concepts"]]:
            assert (out / rel).is_file()
    assert json.loads((out / SAMPLE_IDS_FILE).read_text()) == {
        f"sample_{i}": s.sample_id for i, s in enumerate(samples)
    }
    names = json.loads((out / CONCEPT_NAMES_FILE).read_text())
    assert names["sample_1"] == SAMPLE_SPECS[1][1]


def test_round_trip_infers_names(exported: tuple[Path, list[CaptionSample]]) -> None:
    out, samples = exported
    loaded = load_exported(out)
    assert loaded == [replace(s, sample_id=f"sample_{i}") for i, s in enumerate(samples)]


def test_round_trip_with_sidecar_files(exported: tuple[Path, list[CaptionSample]]) -> None:
    out, samples = exported
    loaded = load_exported(out, sample_ids=out / SAMPLE_IDS_FILE, concept_names=out / CONCEPT_NAMES_FILE)
    assert loaded == samples


def test_export_warns_when_a_name_is_not_recoverable(
    tmp_path: Path, canonical: tuple[Path, list[CaptionSample]]
) -> None:
    root, samples = canonical
    c = samples[0].concepts[0]
    samples[0] = replace(samples[0], concepts=(replace(c, name="Zed"), *samples[0].concepts[1:]))
    with pytest.warns(UserWarning, match="sample_0 \\(cap-000\\) concept_0: 'Zed' inferred as 'Seth'"):
        export_reference(samples, root, tmp_path / "out")
    loaded = load_exported(tmp_path / "out", concept_names=tmp_path / "out" / CONCEPT_NAMES_FILE)
    assert loaded[0].concepts[0].name == "Zed"


def test_export_cli_and_loading_the_export_as_covip_data(
    tmp_path: Path, canonical: tuple[Path, list[CaptionSample]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`covip-data export`, then COVIP_DATA=<export>: the sidecars bring back ids and even unrecoverable names."""
    root, _ = canonical
    rows = [json.loads(line) for line in (root / "caption_test.jsonl").read_text().splitlines()]
    rows[0]["concepts"][0]["name"] = "Zed"  # its dialogue says Seth: only concept_names.json knows "Zed"
    write_jsonl(root / "caption_test.jsonl", rows)
    samples = list(load_caption_dataset(root, "test").samples)
    out = tmp_path / "ref"
    cli = [sys.executable, "-m", "covip.tasks.cli.data"]
    proc = subprocess.run(
        [*cli, "export", str(root), "--format", "reference", "--out", str(out)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert f"exported {len(samples)} samples" in proc.stdout and "'Zed' inferred as 'Seth'" in proc.stderr
    assert {p.name for p in out.iterdir()} == {META_FILE, QAS_GT_FILE, SAMPLE_IDS_FILE, CONCEPT_NAMES_FILE, "images"}

    monkeypatch.setenv("COVIP_DATA", str(out))
    source = load_caption_source()
    assert list(source.samples) == samples and source.root == out
    (out / SAMPLE_IDS_FILE).unlink()
    (out / CONCEPT_NAMES_FILE).unlink()
    inferred = load_caption_source().samples
    assert [s.sample_id for s in inferred] == ["sample_0", "sample_1", "sample_2"]
    assert inferred[0].concepts[0].name == "Seth"


def test_a_reference_directory_with_several_meta_files_is_refused(
    exported: tuple[Path, list[CaptionSample]], monkeypatch: pytest.MonkeyPatch
) -> None:
    out, _ = exported
    (out / "meta_other.jsonl").write_text((out / META_FILE).read_text())
    monkeypatch.setenv("COVIP_DATA", str(out))
    with pytest.raises(ValueError, match=f"2 meta_.*jsonl files \\({META_FILE}, meta_other.jsonl\\)"):
        load_caption_source()


# --------------------------------------------------------------------------------------------------------------
# Name inference
# --------------------------------------------------------------------------------------------------------------


def test_infer_name_exact_for_every_faker_first_name() -> None:
    provider = pytest.importorskip("faker.providers.person.en_US").Provider
    rng = random.Random(0)
    wrong = []
    for name in sorted(set(provider.first_names)):
        dialogue = builder_dialogue(name, rng)
        questions = [q["question"] for q in concept_qas(name, rng)]
        for qs in (questions, []):
            got = infer_concept_name(dialogue, qs)
            if got != name:
                wrong.append((name, got))
    assert wrong == []


@pytest.mark.parametrize("name", ["May", "June", "August", "April", "Will", "Hope", "Austin", "Sunny"])
def test_infer_name_that_is_also_a_common_word(name: str) -> None:
    dialogue = (
        f"**Dialogue:**\nUser: I met {name} in May 2020, on a Monday in June.\n"
        f"Model: How lovely! What is {name} like?\nUser: {name} is calm. We walked to Austin Street in August.\n"
        "Model: Sounds peaceful. Will you go back?\nUser: May be. Hope so.\nModel: I hope you do!"
    )
    assert infer_concept_name(dialogue, [f"When did the user meet {name}?"]) == name


@pytest.mark.parametrize(
    ("dialogue", "questions", "expected"),
    [
        (
            "**Dialogue:**\n**User:** This is Garrett, my favourite mug! I bought Garrett at a tiny shop near "
            "Busan Station last winter.\n**Model:** Garrett sounds like a treasure. Do you use him every day?\n"
            "**User:** Every morning. Garrett's handle chipped when I dropped him in the Seoul Forest cafe.\n"
            "**Model:** Oh no! Still, a chip gives Garrett character.\n"
            "**User:** Exactly. My roommate Emily wants to borrow him.\n**Model:** I'd keep Garrett close!",
            ["Where did the user buy Garrett?", "What happened to Garrett's handle?"],
            "Garrett",
        ),
        (
            "Dialogue:\nUser: David is my cat. He naps on the windowsill of our Brooklyn apartment.\n"
            "Model: What a cozy spot! Does David have a favourite toy?\n"
            "User: A red mouse I got him in Paris.\nModel: Paris souvenirs for David, how fancy!\n"
            "User: He deserves it.\nModel: He absolutely does.",
            ["Where does the cat nap?", "Where did the user get the mouse?"],
            "David",
        ),
        (  # the name never appears mid-sentence: fallback to sentence openers that are not common words
            "User: Judy is my bike.\nModel: Nice! Where do you ride?\nUser: Judy and I ride along the river.\n"
            "Model: Sounds fun.\nUser: Judy squeaks though.\nModel: Time for some oil!",
            [],
            "Judy",
        ),
    ],
)
def test_infer_name_paper_style(dialogue: str, questions: list[str], expected: str) -> None:
    assert infer_concept_name(dialogue, questions) == expected


def test_infer_name_raises_naming_the_record() -> None:
    with pytest.raises(DataError) as info:
        infer_concept_name(
            "**Dialogue:**\nUser: I love it.\nModel: That sounds great!\nUser: Yes.\nModel: Wow.",
            ["What does the user love?"],
            source="meta.jsonl",
            record="line 4 (sample_3)",
            field="dialogues.concept_2",
        )
    assert "meta.jsonl: line 4 (sample_3): field 'dialogues.concept_2': cannot infer the concept's name" in str(
        info.value
    )


# --------------------------------------------------------------------------------------------------------------
# Errors from the reference files
# --------------------------------------------------------------------------------------------------------------


def edit_meta(out: Path, line: int, fn: Any) -> None:
    path = out / META_FILE
    lines = path.read_text(encoding="utf-8").splitlines()
    rec = json.loads(lines[line - 1])
    new = fn(rec)
    lines[line - 1] = new if isinstance(new, str) else json.dumps(rec)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def edit_gt(out: Path, fn: Any) -> None:
    path = out / QAS_GT_FILE
    gt = json.loads(path.read_text(encoding="utf-8"))
    fn(gt)
    path.write_text(json.dumps(gt, indent=4), encoding="utf-8")


def pop_then(d: dict, key: str) -> None:
    d.pop(key)


META, GT = "meta", "gt"
ERROR_CASES = {
    "missing imgs": (lambda o: edit_meta(o, 2, lambda r: pop_then(r, "imgs")), META, "line 2 (sample_1)", "imgs"),
    "dialogue count": (
        lambda o: edit_meta(o, 1, lambda r: pop_then(r["dialogues"], "concept_2")),
        META,
        "line 1 (sample_0)",
        "dialogues",
    ),
    "qas count": (lambda o: edit_gt(o, lambda g: pop_then(g["sample_2"]["qas"], "concept_1")), GT, "sample_2", "qas"),
    "qas key": (
        lambda o: edit_gt(o, lambda g: g["sample_0"]["qas"].update(extra={"qa": []})),
        GT,
        "sample_0",
        "qas.extra",
    ),
    "gts out of range": (lambda o: edit_gt(o, lambda g: g["sample_1"].update(gts=[4, 6])), GT, "sample_1", "gts[1]"),
    "gts missing": (lambda o: edit_gt(o, lambda g: pop_then(g["sample_1"], "gts")), GT, "sample_1", "gts"),
    "bad answer letter": (
        lambda o: edit_gt(o, lambda g: g["sample_1"]["qas"]["concept_3"]["qa"][2].update(correct_answer="D")),
        GT,
        "sample_1",
        "qas.concept_3.qa[2].correct_answer",
    ),
    "D not undetermined": (
        lambda o: edit_gt(o, lambda g: g["sample_0"]["qas"]["concept_1"]["qa"][0]["options"].update(D="Maybe")),
        GT,
        "sample_0",
        "qas.concept_1.qa[0].options.D",
    ),
    "qa not an object": (
        lambda o: edit_gt(o, lambda g: g["sample_0"]["qas"].update(concept_0="Error")),
        GT,
        "sample_0",
        "qas.concept_0",
    ),
    "missing concept image": (
        lambda o: (o / "images/cap-001/concept_3.png").unlink(),
        META,
        "line 2 (sample_1)",
        "concepts[3]",
    ),
    "missing query image": (lambda o: (o / "images/cap-002/query.png").unlink(), META, "line 3 (sample_2)", "imgs"),
    "missing sample in gt": (lambda o: edit_gt(o, lambda g: pop_then(g, "sample_2")), GT, "sample_2", "<record>"),
    "extra sample in gt": (
        lambda o: edit_gt(o, lambda g: g.update(sample_3=g["sample_0"])),
        GT,
        "sample_3",
        "<record>",
    ),
    "invalid json line": (lambda o: edit_meta(o, 3, lambda r: "{not json"), META, "line 3 (sample_2)", "<json>"),
    "record not an object": (lambda o: edit_meta(o, 2, lambda r: "[1, 2]"), META, "line 2 (sample_1)", "<record>"),
    "concepts not a list": (
        lambda o: edit_meta(o, 1, lambda r: r.update(concepts="images/x.png")),
        META,
        "line 1 (sample_0)",
        "concepts",
    ),
    "concepts empty": (
        lambda o: edit_meta(o, 1, lambda r: r.update(concepts=[], dialogues={})),
        META,
        "line 1 (sample_0)",
        "concepts",
    ),
    "blank line": (lambda o: edit_meta(o, 2, lambda r: "\n" + json.dumps(r)), META, "line 2", "<line>"),
    "gt not an object": (lambda o: (o / QAS_GT_FILE).write_text("[]"), GT, "<file>", "<top level>"),
    "gt record not an object": (lambda o: edit_gt(o, lambda g: g.update(sample_1="Error")), GT, "sample_1", "<record>"),
    "name not inferable": (
        lambda o: edit_meta(o, 1, lambda r: r["dialogues"].update(concept_1="User: I love it.\nModel: Great!")),
        META,
        "line 1 (sample_0)",
        "dialogues.concept_1",
    ),
    "duplicate names": (
        lambda o: edit_meta(o, 3, lambda r: r["dialogues"].update(concept_1=r["dialogues"]["concept_0"])),
        META,
        "line 3 (sample_2)",
        "dialogues",
    ),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_reference_errors_name_file_record_and_field(exported: tuple[Path, list[CaptionSample]], case: str) -> None:
    out, _ = exported
    corrupt, which, record, field = ERROR_CASES[case]
    corrupt(out)
    source = str(out / (META_FILE if which == META else QAS_GT_FILE))
    with pytest.raises(DataError) as info:
        load_exported(out)
    problems = [(p.source, p.record, p.field) for p in info.value.problems]
    assert (source, record, field) in problems
    assert f"{source}: {record}: field '{field}'" in str(info.value)
    assert len(problems) == 1, info.value  # the root cause only, no follow-on noise


def test_every_problem_is_reported_at_once(exported: tuple[Path, list[CaptionSample]]) -> None:
    out, _ = exported
    ERROR_CASES["missing imgs"][0](out)
    ERROR_CASES["bad answer letter"][0](out)
    ERROR_CASES["gts out of range"][0](out)
    with pytest.raises(DataError) as info:
        load_exported(out)
    assert {p.field for p in info.value.problems} == {"imgs", "qas.concept_3.qa[2].correct_answer", "gts[1]"}


def test_sidecar_errors(exported: tuple[Path, list[CaptionSample]]) -> None:
    out, _ = exported
    (out / SAMPLE_IDS_FILE).write_text(json.dumps({"sample_0": "a", "sample_1": "a", "sample_2": ""}))
    (out / CONCEPT_NAMES_FILE).write_text(json.dumps({"sample_0": ["X"], "sample_1": [], "sample_2": ["A", "B", "C"]}))
    with pytest.raises(DataError) as info:
        load_exported(out, sample_ids=out / SAMPLE_IDS_FILE, concept_names=out / CONCEPT_NAMES_FILE)
    got = {(Path(p.source).name, p.record, p.field) for p in info.value.problems}
    assert got == {
        (SAMPLE_IDS_FILE, "sample_1", "sample_id"),
        (SAMPLE_IDS_FILE, "sample_2", "sample_id"),
        (CONCEPT_NAMES_FILE, "sample_0", "<names>"),
        (CONCEPT_NAMES_FILE, "sample_1", "<names>"),
    }


def test_export_rejects_bad_input(tmp_path: Path, canonical: tuple[Path, list[CaptionSample]]) -> None:
    root, samples = canonical
    (root / "images/cap-002/query.png").unlink()
    samples.append(replace(samples[0], query_image="/abs/query.png"))
    with pytest.raises(DataError) as info:
        export_reference(samples, root, tmp_path / "out")
    got = {(p.record, p.field) for p in info.value.problems}
    assert ("sample 2 (sample_id=cap-002)", "query_image") in got
    assert ("sample 3 (sample_id=cap-000)", "query_image") in got
    assert ("record 3", "sample_id") in got  # duplicate id
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------------------------
# The HF captioning dataset
# --------------------------------------------------------------------------------------------------------------


def hf_rows(samples: list[CaptionSample], root: Path, *, dict_form: bool) -> dict[str, list[Any]]:
    """Columns in the assumed HF structure, from canonical samples (images as PIL images)."""
    columns: dict[str, list[Any]] = {"imgs": [], "concepts": [], "dialogues": [], "qas": [], "gts": []}
    for s in samples:
        columns["imgs"].append(Image.open(root / s.query_image))
        columns["concepts"].append([Image.open(root / c.image) for c in s.concepts])
        dialogues = [c.dialogue for c in s.concepts]
        qas = [{"qa": [{"id": q.id, "question": q.question, "options": dict(q.options), "correct_answer": q.answer}
                       for q in c.qas]} for c in s.concepts]  # fmt: skip
        if dict_form:
            dialogues = {f"concept_{j}": d for j, d in enumerate(dialogues)}
            qas = {f"concept_{j}": q for j, q in enumerate(qas)}
        columns["dialogues"].append(dialogues)
        columns["qas"].append(qas)
        columns["gts"].append(list(s.positives))
    return columns


def expected_hf(samples: list[CaptionSample]) -> list[CaptionSample]:
    return [
        replace(
            s,
            sample_id=f"sample_{i}",
            query_image=f"sample_{i}/query.png",
            concepts=tuple(replace(c, image=f"sample_{i}/concept_{j}.png") for j, c in enumerate(s.concepts)),
        )
        for i, s in enumerate(samples)
    ]


def same_pixels(a: Path, b: Path) -> bool:
    with Image.open(a) as x, Image.open(b) as y:
        return x.convert("RGB").tobytes() == y.convert("RGB").tobytes() and x.size == y.size


@pytest.mark.parametrize("dict_form", [False, True])
def test_hf_loader_on_saved_dataset(
    tmp_path: Path, canonical: tuple[Path, list[CaptionSample]], dict_form: bool
) -> None:
    datasets = pytest.importorskip("datasets")
    root, samples = canonical
    ds = datasets.Dataset.from_dict(hf_rows(samples, root, dict_form=dict_form))
    if dict_form:  # Arrow pads the struct columns with None for the 3-concept rows, and wrap in a DatasetDict
        assert ds[0]["dialogues"]["concept_5"] is None
        datasets.DatasetDict({"test": ds}).save_to_disk(str(tmp_path / "hf"))
    else:
        ds.save_to_disk(str(tmp_path / "hf"))
    image_dir = tmp_path / "cache"
    loaded = load_hf_caption_dataset(str(tmp_path / "hf"), image_dir=image_dir)
    assert loaded == expected_hf(samples)
    for got, orig in zip(loaded, samples, strict=True):
        assert same_pixels(image_dir / got.query_image, root / orig.query_image)
        for gc, oc in zip(got.concepts, orig.concepts, strict=True):
            assert same_pixels(image_dir / gc.image, root / oc.image)
    if dict_form:
        with pytest.raises(ValueError, match="no split 'train'"):
            load_hf_caption_dataset(str(tmp_path / "hf"), "train", image_dir=image_dir)


def test_hf_loader_on_a_parquet_file(
    tmp_path: Path, canonical: tuple[Path, list[CaptionSample]], monkeypatch: pytest.MonkeyPatch
) -> None:
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf_cache")  # keep the user's cache clean
    root, samples = canonical
    datasets.Dataset.from_dict(hf_rows(samples, root, dict_form=False)).to_parquet(str(tmp_path / "test.parquet"))
    loaded = load_hf_caption_dataset(str(tmp_path / "test.parquet"), image_dir=tmp_path / "cache")
    assert loaded == expected_hf(samples)
    assert (tmp_path / "hf_cache").is_dir()


def test_hf_loader_with_separate_ground_truth(
    tmp_path: Path, exported: tuple[Path, list[CaptionSample]], canonical: tuple[Path, list[CaptionSample]]
) -> None:
    datasets = pytest.importorskip("datasets")
    out, samples = exported
    root, _ = canonical
    columns = hf_rows(samples, root, dict_form=False)
    del columns["qas"], columns["gts"]
    datasets.Dataset.from_dict(columns).save_to_disk(str(tmp_path / "hf"))
    with pytest.raises(DataError, match="field 'qas': missing column"):
        load_hf_caption_dataset(str(tmp_path / "hf"), image_dir=tmp_path / "cache")
    loaded = load_hf_caption_dataset(str(tmp_path / "hf"), image_dir=tmp_path / "cache", qas_gt_json=out / QAS_GT_FILE)
    assert loaded == expected_hf(samples)


def test_hf_loader_errors_name_row_and_field(tmp_path: Path, canonical: tuple[Path, list[CaptionSample]]) -> None:
    datasets = pytest.importorskip("datasets")
    root, samples = canonical
    columns = hf_rows(samples, root, dict_form=False)
    columns["qas"][1][3]["qa"][0]["correct_answer"] = "E"
    columns["dialogues"][2] = columns["dialogues"][2][:2]
    columns["gts"][0] = [3]
    datasets.Dataset.from_dict(columns).save_to_disk(str(tmp_path / "hf"))
    with pytest.raises(DataError) as info:
        load_hf_caption_dataset(str(tmp_path / "hf"), image_dir=tmp_path / "cache")
    source = f"{tmp_path / 'hf'} (split test)"
    assert {(p.source, p.record, p.field) for p in info.value.problems} == {
        (source, "row 1 (sample_1)", "qas[3].qa[0].correct_answer"),
        (source, "row 2 (sample_2)", "dialogues"),
        (source, "row 0 (sample_0)", "gts[0]"),
    }


def test_builder_output_round_trips_without_sidecar_names(small_benchmark: Path, tmp_path: Path) -> None:
    """The names our builder writes are recovered exactly from its dialogues, so the paper's files lose nothing."""
    samples = list(load_caption_dataset(small_benchmark, "test").samples)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # export warns when a name is not recoverable from its dialogue
        export_reference(samples, small_benchmark, tmp_path / "ref")
    loaded = load_exported(tmp_path / "ref", sample_ids=tmp_path / "ref" / SAMPLE_IDS_FILE)
    assert loaded == samples


def test_lenient_mode_leaves_out_each_bad_record_and_reports_it(exported: tuple[Path, list[CaptionSample]]) -> None:
    out, samples = exported
    ERROR_CASES["missing imgs"][0](out)  # sample_1's meta line
    ERROR_CASES["dialogue count"][0](out)  # sample_0's meta line
    ERROR_CASES["bad answer letter"][0](out)  # sample_1 again, in the ground truth
    skipped: list = []
    kept = load_exported(out, skipped=skipped)
    assert [(p.record, p.field) for p in skipped] == [
        ("line 1 (sample_0)", "dialogues"),
        ("line 2 (sample_1)", "imgs"),
        ("sample_1", "qas.concept_3.qa[2].correct_answer"),
    ]
    assert [s.sample_id for s in kept] == [f"sample_{i}" for i in range(2, len(samples))]
    with pytest.raises(DataError):  # strict stays the default
        load_exported(out)


@pytest.mark.integration
def test_lenient_mode_reaches_the_runs_identity(
    exported: tuple[Path, list[CaptionSample]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from lmms_runner import run_lmms_eval

    out, samples = exported
    ERROR_CASES["missing imgs"][0](out)  # sample_1
    buckets = sorted({s.bucket for i, s in enumerate(samples) if i != 1})
    args = ["--model", "covip_oracle", "--tasks", ",".join(f"covip_caption_{b}c" for b in buckets)]
    strict = run_lmms_eval(args, out, None)
    assert strict.code == 1 and "imgs" in strict.output  # the whole set is refused, naming the field
    run = run_lmms_eval(args, out, tmp_path / "run", COVIP_DATA_LENIENT="1")
    assert run.code == 0, run.output[-3000:]
    assert "COVIP_DATA_LENIENT=1: left out" in caplog.text and "line 2 (sample_1): field 'imgs'" in caplog.text
    identity = run.results["configs"][f"covip_caption_{buckets[0]}c"]["metadata"]["covip"]["data"]
    assert identity["skipped"] == 1 and identity["samples"] == len(samples) - 1
