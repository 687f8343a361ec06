"""RePIC's protocol: its scoring rules on hand-made caption files, the corrected metric, the importer's errors, the
prompt, the retriever and the `covip-judge repic` command (docs/protocol.md §7.2)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image
from pydantic import ValidationError

from covip.tasks.cli.judge import main as judge_main
from covip.tasks.data.schema import DataError
from covip.tasks.repic.dataset import load_repic_set
from covip.tasks.repic.fixture import GROUP, write_fixture
from covip.tasks.repic.formats import read_caption_file, resolve
from covip.tasks.repic.prompt import (
    CAPTION_REQUESTS,
    SYSTEM_PROMPT,
    caption_request,
    concept_line,
    oracle_caption,
    parse_repic_turn,
    repic_messages,
)
from covip.tasks.repic.retrieval import colour_signature, retrieve
from covip.tasks.repic.scoring import caption_tokens, name_outcomes, name_score, repic_outcomes, repic_score
from covip.tasks.results.records import RepicRecord
from covip.tasks.scoring import metrics

C, M, N = "correct", "miss", "none"

# (ground truth, caption, outcomes under `repic`, outcomes of the corrected metric); pools are each file's keys.
BUCKET_2 = [  # case-sensitive
    (["<Anya>", "<Bond>"], "<Anya> plays with Bond.", [C, C], [C, C]),  # bracketed and bare forms
    (["<Anya>", "<Bond>"], "anya and BOND", [N, N], [C, C]),  # no lower-casing at 2 concepts
    (["<Anya>", "<Zed>"], "(<Anya>), Bond's ball.", [C, N], [C, M]),  # edge punctuation; a possessive
    (["<Zed>", "<Bond>"], "Anya is here.</s>", [M, M], [M, M]),  # a wrong name; `</s>` removed
    (["<Zed>", "<Anya>"], "", [N, N], [N, N]),  # empty caption
    (["<red fox>", "<Zed>"], "<red fox> and -Zed-", [N, C], [C, C]),  # a multi-word key never matches
]
BUCKET_4 = [  # caption and keys lower-cased
    (["<Anya>", "<Bond>", "<ironman>", "<red fox>"], "ANYA, bond; <Iron Man> and <Red Fox>.", [C, C, N, N], [C] * 4),
    (["<Anya>", "<Zed>", "<ironman>", "<red fox>"], "Ironman meets Bond's friend.", [N, N, C, N], [M] * 4),
]
BUCKET_1 = [  # lower-cased
    (["<Bo>"], "bo sits.", [C], [C]),
    (["<cat-cup>"], "A cat-cup! And <bo>", [C], [C]),  # an inner hyphen stays
    (["<T>"], "A man in a t-shirt.", [N], [N]),  # `T` is not said by `t-shirt`
    (["<T>"], "Bo's friend <T>", [C], [C]),
    (["<Bo>"], "cat-cup", [M], [M]),
]
NAMES = {
    "<Anya>": "Anya",
    "<Bond>": "Bond",
    "<Zed>": "Zed",
    "<red fox>": "Red Fox",
    "<ironman>": "Iron Man",
    "<Bo>": "Bo",
    "<cat-cup>": "cat-cup",
    "<T>": "T",
}
# Pooled by hand: (correct, miss, slots, precision, recall, f1) for `repic`, then for the corrected metric.
EXPECTED = {
    2: ((4, 2, 12, 200 / 3, 100 / 3, 400 / 9), (7, 3, 12, 70.0, 700 / 12, 700 / 11)),
    4: ((3, 0, 8, 100.0, 37.5, 600 / 11), (4, 4, 8, 50.0, 50.0, 50.0)),
    1: ((3, 1, 5, 75.0, 60.0, 200 / 3), (3, 1, 5, 75.0, 60.0, 200 / 3)),
}
ROWS = {1: BUCKET_1, 2: BUCKET_2, 4: BUCKET_4}


@pytest.mark.parametrize("bucket", [1, 2, 4])
def test_each_rule_per_row(bucket):
    rows = ROWS[bucket]
    pool = [k for gt, *_ in rows for k in gt]
    names = {k: NAMES[k] for k in pool}
    for gt, caption, repic, corrected in rows:
        assert repic_outcomes(gt, caption, pool, bucket) == repic, caption
        assert name_outcomes(gt, caption, names, bucket) == corrected, caption


def test_tokens_strip_edge_punctuation_only():
    assert caption_tokens('"(<Anya>)," -x- a.b ... </s>Bo', 2) == {"<Anya>", "x", "a.b", "Bo"}
    assert caption_tokens("Anya's A-B!", 4) == {"anya's", "a-b"}


def _write_rows(path: Path, rows: list) -> Path:
    path.write_text(
        json.dumps(
            [[f"./q/{i}.jpg", gt, caption, "Give a caption of the image."] for i, (gt, caption, *_) in enumerate(rows)]
        )
    )
    return path


def _database(path: Path, names: dict[str, str]) -> Path:
    entries = {k: {"name": n, "image": f"./{n}.jpg", "info": "x", "category": "y"} for k, n in names.items()}
    path.write_text(json.dumps({"concept_dict": entries}))
    return path


def test_covip_judge_repic_prints_pooled_scores_per_file(tmp_path, capsys):
    database = _database(tmp_path / "database_mod.json", NAMES)
    for bucket, rows in ROWS.items():
        first = _write_rows(tmp_path / f"a{bucket}.json", rows)
        second = _write_rows(tmp_path / f"b{bucket}.json", rows[:1])
        code = judge_main(["repic", str(first), str(second), "--concepts", str(bucket), "--database", str(database)])
        lines = capsys.readouterr().out.splitlines()
        assert code == 0 and len(lines) == 2
        out = json.loads(lines[0])
        assert out["file"] == str(first)
        keys, names = EXPECTED[bucket]
        assert [out[k] for k in ("correct", "miss", "slots")] == list(keys[:3])
        assert [out[k] for k in ("precision", "recall", "f1")] == pytest.approx(keys[3:], abs=1e-9)
        assert [out[f"name_{k}"] for k in ("correct", "miss")] == list(names[:2])
        assert [out[f"name_{k}"] for k in ("precision", "recall", "f1")] == pytest.approx(names[3:], abs=1e-9)
        # each file is its own pool: the second file's row is scored against its own keys only
        alone = json.loads(lines[1])
        assert alone["slots"] == bucket


def test_nothing_said_scores_zero_not_nan():
    score = repic_score([(["<Anya>", "<Bond>"], "")], 2)
    assert (score.precision, score.recall, score.f1) == (0.0, 0.0, 0.0)


def test_a_perfect_caption_scores_100_on_the_corrected_metric_only():
    """RePIC's 4-concept keys differ from the names the model is shown (`<tinman>` / `Tin Man`)."""
    names = {c.key: c.name for c in GROUP}
    rows = [([c.key for c in GROUP[:4]], oracle_caption([c.name for c in GROUP[:4]]))]
    rows.append(([c.key for c in GROUP[2:]], oracle_caption([c.name for c in GROUP[2:]])))
    corrected = name_score(rows, names, 4)
    assert (corrected.precision, corrected.recall, corrected.f1) == (100.0, 100.0, 100.0)
    keys = repic_score(rows, 4)
    assert keys.precision == 100.0 and keys.recall == 100 * 5 / 8  # <tinman> and <red fox> (twice) never match


def test_bucket_1_rows_hold_one_key():
    with pytest.raises(ValueError, match="1-concept row must hold 1"):
        repic_score([(["<A>", "<B>"], "A")], 1)


# --- the caption file reader and the command's errors -------------------------------------------------------


def test_caption_file_errors_name_file_row_and_field(tmp_path, capsys):
    database = _database(tmp_path / "db.json", {"<A>": "A", "<B>": "B"})
    bad = tmp_path / "captions.json"
    bad.write_text(
        json.dumps(
            [
                ["i.jpg", ["<A>", "<B>"], "A and B", "q"],
                "oops",
                ["i.jpg", ["<A>", "<C>"], 3, "q"],
                ["i.jpg", ["<A>"], "A", "q"],
            ]
        )
    )
    assert judge_main(["repic", str(bad), "--concepts", "2", "--database", str(database)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: row 1: field 'row'" in err
    assert f"{bad}: row 2: field 'concepts': '<C>' is not in the concept database" in err
    assert f"{bad}: row 2: field 'caption': must be a string" in err
    assert f"{bad}: row 3: field 'concepts': a 2-concept sample needs 2 keys" in err
    assert read_caption_file(_write_rows(tmp_path / "ok.json", BUCKET_2), 2)[0].prompt == "Give a caption of the image."
    assert judge_main(["repic", str(tmp_path / "missing.json"), "--concepts", "2", "--database", str(database)]) == 2
    assert "missing.json: file: field 'path': no such file" in capsys.readouterr().err


# --- the importer ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fixture_dir(tmp_path_factory) -> Path:
    return write_fixture(tmp_path_factory.mktemp("repic"))


DB4 = "data/database_tot/database_4_concepts/database_mod.json"
Q4 = "data/query_tot/4_concept_query_templates.json"


def test_fixture_loads_with_every_combination(fixture_dir):
    data = load_repic_set(fixture_dir, DB4, Q4, 4)
    assert [s.gt for s in data.samples][1:] == [
        ("<tinman>", "<red fox>", "<dr.wren>", "<olu>"),
        ("<tinman>", "<mo>", "<dr.wren>", "<olu>"),
    ]
    assert data.pool()["<tinman>"] == "Tin Man" and len(data.pool()) == 6


def test_importer_names_every_bad_entry(fixture_dir, tmp_path):
    root = tmp_path / "repic"
    shutil.copytree(fixture_dir, root)
    db_path = root / DB4
    db = json.loads(db_path.read_text())
    concepts = db["concept_dict"]
    del concepts["<pip>"]["info"]
    concepts["<mo>"]["colour"] = "red"
    concepts["<olu>"]["name"] = "Olu\nthe second"
    (root / concepts["<dr.wren>"]["image"]).unlink()
    db["path_to_concept"][concepts["<tinman>"]["image"]] = "<mo>"
    db_path.write_text(json.dumps(db))
    with pytest.raises(DataError) as caught:
        load_repic_set(root, DB4, Q4, 4)
    text = str(caught.value)
    assert f"{db_path}: concept <pip>: field 'info': Field required" in text
    assert f"{db_path}: concept <mo>: field 'colour': Extra inputs are not permitted" in text
    assert f"{db_path}: concept <olu>: field 'name': String should match pattern" in text
    # the image and path_to_concept checks run once the entries parse
    db = json.loads(json.dumps(db).replace("Olu\\nthe second", "Olu"))
    del db["concept_dict"]["<mo>"]["colour"]
    db["concept_dict"]["<pip>"]["info"] = "x"
    db_path.write_text(json.dumps(db))
    with pytest.raises(DataError) as caught:
        load_repic_set(root, DB4, Q4, 4)
    text = str(caught.value)
    assert f"{db_path}: concept <dr.wren>: field 'image': no such image" in text
    assert f"{db_path}: concept <tinman>: field 'image': path_to_concept maps" in text
    assert caught.value.problems and len(caught.value.problems) == 2


def test_importer_checks_every_query(fixture_dir, tmp_path):
    root = tmp_path / "repic"
    shutil.copytree(fixture_dir, root)
    q_path = root / Q4
    queries = json.loads(q_path.read_text())
    first, second = list(queries)
    queries[first] = [["<pip>", "<tinman>", "<ghost>", "<mo>"]]
    queries[second][1] = ["<tinman>", "<mo>", "<mo>", "<olu>"]
    queries["./data/nowhere.png"] = ["<pip>", "<mo>", "<olu>"]
    q_path.write_text(json.dumps(queries))
    with pytest.raises(DataError) as caught:
        load_repic_set(root, DB4, Q4, 4)
    text = str(caught.value)
    assert f"{q_path}: image {first}: field 'concepts': '<ghost>' is not in the concept database" in text
    assert f"{q_path}: image {second} combination 1: field 'concepts': a key repeats" in text
    assert f"{q_path}: image ./data/nowhere.png: field 'concepts': a 4-concept sample needs 4 keys" in text
    assert f"{q_path}: image ./data/nowhere.png: field 'image': no such image" in text
    with pytest.raises(FileNotFoundError, match="no RePIC directory"):
        load_repic_set(tmp_path / "absent", DB4, Q4, 4)


# --- prompt, retriever, record ------------------------------------------------------------------------------


def test_prompt_follows_repic_and_parses_back():
    line = concept_line(1, "Iron Man", "A red armoured hero.")
    assert line == "1. Name: <Iron Man>, Info: A red armoured hero."
    messages = repic_messages(["img1", "img2"], [line, "2. Name: <Pip>, Info: x"], "query", caption_request(5))
    assert messages[0] == {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]}
    assert messages[1]["content"][-1]["text"] == "This is the query image. " + CAPTION_REQUESTS[1]
    assert parse_repic_turn(messages) == (["img1", "img2"], [line, "2. Name: <Pip>, Info: x"], "query")
    assert parse_repic_turn(repic_messages([], [], "q", CAPTION_REQUESTS[0])) == ([], [], "q")
    with pytest.raises(ValueError, match="RePIC's layout"):
        parse_repic_turn([{"role": "user", "content": [{"type": "text", "text": "hi"}]}])


def test_retriever_finds_the_drawn_concepts(fixture_dir):
    """On the fixture the colour retriever ranks a single-concept query's own concept first and finds both of a
    pair; a query drawn with five concepts for four keys may show a drawn concept outside the ground truth."""
    for db, queries, bucket, k in (
        ("database_yollava", "yollava", 1, 2),
        ("database_2_concepts", "2_concept", 2, 2),
    ):
        data = load_repic_set(
            fixture_dir,
            f"data/database_tot/{db}/database_mod.json",
            f"data/query_tot/{queries}_query_templates.json",
            bucket,
        )
        signatures = {
            key: colour_signature(Image.open(resolve(fixture_dir, c.image)))
            for key, c in data.database.concept_dict.items()
        }
        for sample in data.samples:
            shown = retrieve(Image.open(resolve(fixture_dir, sample.image)), signatures, k)
            assert len(shown) == k and set(sample.gt) <= set(shown)
            if bucket == 1:
                assert shown[0] == sample.gt[0]
    assert retrieve(Image.new("RGB", (64, 64), (128, 128, 128)), signatures, 2) == []  # nothing colourful: no crop


def _record(**changes) -> RepicRecord:
    fields = dict(
        sample_id="q0000",
        bucket=2,
        mode="skip",
        image="./q.jpg",
        gt=["<A>", "<B>"],
        shown=["<A>", "<B>"],
        pool={"<A>": "Ann", "<B>": "Bob", "<C>": "Cy"},
        request=CAPTION_REQUESTS[0],
        caption="<A> and Bob",
    )
    return RepicRecord(**(fields | changes))


def test_record_values_and_validation():
    values = metrics.repic_values(_record())
    assert values["recall"] == {"image": "./q.jpg", "correct": 1, "miss": 0, "slots": 2, "score": 50.0}
    assert values["name_recall"]["correct"] == 1  # `Bob` is the name shown, `<A>` is not
    assert values["retrieval_recall"]["score"] == 100.0
    assert metrics.repic_values(_record(shown=["<C>"], caption="Cy"))["name_precision"] == {
        "image": "./q.jpg",
        "correct": 0,
        "miss": 2,
        "slots": 2,
    }
    assert metrics.pooled_f1([values["f1"], metrics.repic_values(_record(caption=""))["f1"]]) == pytest.approx(
        100 * 2 * 1 * 0.25 / 1.25
    )
    for bad, message in (
        ({"gt": ["<A>"]}, "gt must hold 2 distinct keys"),
        ({"gt": ["<A>", "<D>"]}, "every gt key must be in the pool"),
        ({"shown": ["<A>", "<A>"]}, "a shown concept repeats"),
        ({"bucket": 3}, "Input should be 1, 2 or 4"),
    ):
        with pytest.raises(ValidationError, match=message):
            _record(**bad)
