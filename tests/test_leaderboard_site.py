"""The built site as files: escaping, self-containment (CSP, no outside URL), data JSON, thumbnails, refusals."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_leaderboard_data import EVIL, STAMP, caption_record, edit_json, make_submission, write_results

from covip.leaderboard.cli import main
from covip.leaderboard.site import NOT_GIVEN
from covip.tasks.data.canonical import MANIFEST, sha256_file

EVIL_TEXT = "&lt;script&gt;alert(1)&lt;/script&gt;"
SVG_NAMESPACE = "http://www.w3.org/2000/svg"  # an XML namespace name, never fetched


def build(tmp_path: Path, *extra: str) -> Path:
    out = tmp_path / "site"
    assert main(["build", str(tmp_path / "subs"), "--out", str(out), *extra]) == 0
    return out


def test_script_named_model_and_strings_render_as_text(tmp_path: Path) -> None:
    card = {"name": EVIL, "method": '"><img src=x onerror=alert(2)>', "access": "api"}
    make_submission(tmp_path / "subs" / "evil", "evil_model", [0.0, 1.0, 1.0], [0, 3, 2], card=card)
    record = caption_record("test_1c_0000", 1, [0], 3, caption=f"Name{'test10000'}x0 {EVIL}")
    write_results(tmp_path / "subs" / "cap", "caption_model", {"covip_caption_1c": [record]})
    out = build(tmp_path)
    pages = list(out.rglob("*.html"))
    assert len(pages) == 1 + 2 + 2  # index, two model pages, one task page each
    for page in pages:
        html = page.read_text()
        assert "<script>alert(1)" not in html and "<img src=x" not in html, page
    index = (out / "index.html").read_text()
    assert EVIL_TEXT in index
    evil_page = [
        p for p in (out / "models").glob("*.html") if "Model card" in p.read_text() and EVIL_TEXT in p.read_text()
    ]
    assert len(evil_page) == 1
    assert "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in evil_page[0].read_text()
    assert EVIL in {m["name"] for m in json.loads((out / "leaderboard.json").read_text())["models"]}


def test_every_page_forbids_outside_requests_and_names_no_outside_url(tmp_path: Path) -> None:
    make_submission(tmp_path / "subs" / "a", "model_a", [0.0, 0.5, 1.0], [0, 3, 3])
    out = build(tmp_path)
    for path in out.rglob("*"):
        if path.suffix in (".html", ".js", ".css", ".json"):
            text = path.read_text()
            assert not re.findall(r"(?:https?:)?//[\w.-]+", text.replace(SVG_NAMESPACE, "")), path
            if path.suffix == ".html":
                assert '<meta http-equiv="Content-Security-Policy" content="default-src \'none\';' in text
    data = json.loads((out / "leaderboard.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert data["models"][0]["slope"]["slope"] == pytest.approx(1.0)
    assert len(data["reported"]["capeval_qas"]["rows"]) == 9


def test_query_images_are_copied_as_thumbnails(tmp_path: Path, small_benchmark: Path) -> None:
    data = {"location": str(small_benchmark), "manifest": sha256_file(small_benchmark / MANIFEST)}
    make_submission(tmp_path / "subs" / "a", "model_a", [1.0, 0.0], [3, 0], data=data)
    out = build(tmp_path)
    thumbs = list((out / "img").glob("*.jpg"))
    assert len(thumbs) == 2
    page = next((out / "models").rglob("covip_caption_1c.html")).read_text()
    assert all(f'src="../../img/{t.name}"' in page for t in thumbs)


def test_images_of_another_benchmark_are_not_shown(tmp_path: Path, small_benchmark: Path) -> None:
    data = {"location": str(small_benchmark), "manifest": "0" * 64}
    make_submission(tmp_path / "subs" / "a", "model_a", [1.0], [3], data=data)
    out = build(tmp_path)
    assert not (out / "img").exists()
    page = next((out / "models").rglob("covip_caption_1c.html")).read_text()
    assert "is not the one this run used (manifest differs)" in page


def test_invalid_submission_stops_the_build(tmp_path: Path, capsys) -> None:
    make_submission(tmp_path / "subs" / "a", "model_a", [1.0], [3])
    edit_json(
        tmp_path / "subs" / "a" / f"{STAMP}_results.json", lambda d: d["versions"].update({"covip_caption_1c": 9})
    )
    assert main(["build", str(tmp_path / "subs"), "--out", str(tmp_path / "site")]) == 2
    assert not (tmp_path / "site").exists()
    assert "versions.covip_caption_1c" in capsys.readouterr().err


def test_build_refuses_to_overwrite_a_directory_that_is_not_a_site(tmp_path: Path, capsys) -> None:
    make_submission(tmp_path / "subs" / "a", "model_a", [1.0], [3])
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "precious.txt").write_text("keep")
    assert main(["build", str(tmp_path / "subs"), "--out", str(tmp_path / "site")]) == 2
    assert (tmp_path / "site" / "precious.txt").read_text() == "keep"
    assert main(["build", str(tmp_path / "subs"), "--out", str(tmp_path / "new")]) == 0
    assert main(["build", str(tmp_path / "subs"), "--out", str(tmp_path / "new")]) == 0  # a previous site is replaced


def test_model_page_marks_card_fields_derived_from_the_results(tmp_path: Path) -> None:
    make_submission(tmp_path / "subs" / "a", "covip_qwen3_vl", [1.0], [3], card={"name": "Mine", "method": "GSPO"})
    edit_json(
        tmp_path / "subs" / "a" / f"{STAMP}_results.json",
        lambda d: d["config"].update(model_args="pretrained=Qwen/Qwen3-VL-8B-Instruct"),
    )
    out = build(tmp_path)
    html = next(p for p in (out / "models").glob("*.html")).read_text()
    assert "<dt>Base model</dt><dd>Qwen/Qwen3-VL-8B-Instruct <span" in html
    assert "<dt>Personalization method</dt><dd>GSPO</dd>" in html  # the card's value, not derived
    assert html.count("(from the results)</span>") == 3  # base model, access and date
    assert f"<dt>Training data</dt><dd>{NOT_GIVEN}</dd>" in html
