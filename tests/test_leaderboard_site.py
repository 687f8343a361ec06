"""The built site as files, from real `lmms_eval` runs: escaping, self-containment (CSP, no outside URL), the data
JSON, thumbnails from the run's own benchmark only, rejected submissions listed apart, refusals."""

from __future__ import annotations

import hashlib
import json
import re
from html import unescape
from pathlib import Path

import pytest
from leaderboard_edits import copy_run, edit_results, read_rows, rejudged

from covip.leaderboard.cli import main
from covip.leaderboard.site import NOT_GIVEN
from covip.tasks.data.canonical import load_caption_dataset

pytest_plugins = ["leaderboard_runs"]
EVIL = "<script>alert(1)</script>"
EVIL_TEXT = "&lt;script&gt;alert(1)&lt;/script&gt;"
SVG_NAMESPACE = "http://www.w3.org/2000/svg"  # an XML namespace name, never fetched


def build(tmp_path: Path, *extra: str, code: int = 0) -> Path:
    out = tmp_path / "site"
    assert main(["build", str(tmp_path / "subs"), "--out", str(out), *extra]) == code
    return out


def test_script_named_model_and_strings_render_as_text(real_runs, tmp_path: Path) -> None:
    card = {"name": EVIL, "method": '"><img src=x onerror=alert(2)>', "access": "api"}
    copy_run(real_runs["single"], tmp_path / "subs" / "evil", card=card)
    captioned = copy_run(real_runs["oracle_3c"], tmp_path / "subs" / "cap")
    rejudged(captioned, "covip_caption_3c", lambda record: record.update(caption=record["caption"] + f" {EVIL}"))
    out = build(tmp_path)
    pages = list(out.rglob("*.html"))
    # index, two model pages, one task page each, and their table's comparison (its index and one side-by-side page)
    assert len(pages) == 1 + 2 + 2 + 2
    for page in pages:
        html = page.read_text()
        assert "<script>alert(1)" not in html and "<img src=x" not in html, page
    assert EVIL_TEXT in (out / "index.html").read_text()
    models = [p.read_text() for p in (out / "models").glob("*.html")]
    [evil] = [html for html in models if f"<h1>{EVIL_TEXT}</h1>" in html]
    assert "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in evil
    assert EVIL_TEXT in next((out / "models").rglob("covip_caption_3c.html")).read_text()
    assert EVIL in {m["name"] for m in json.loads((out / "leaderboard.json").read_text())["models"]}


def test_every_page_forbids_outside_requests_and_names_no_outside_url(real_runs, tmp_path: Path) -> None:
    copy_run(real_runs["full"], tmp_path / "subs" / "a")
    out = build(tmp_path)
    for path in out.rglob("*"):
        if path.suffix in (".html", ".js", ".css", ".json"):
            text = path.read_text()
            assert not re.findall(r"(?:https?:)?//[\w.-]+", text.replace(SVG_NAMESPACE, "")), path
            if path.suffix == ".html":
                assert '<meta http-equiv="Content-Security-Policy" content="default-src \'none\';' in text
    data = json.loads((out / "leaderboard.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert len(data["reported"]["capeval_qas"]["rows"]) == 9
    assert len(list((out / "models").rglob("covip_*.html"))) == len(data["models"][0]["tasks"])


def test_query_and_context_pictures_are_copied_as_thumbnails(real_runs, small_benchmark: Path, tmp_path: Path) -> None:
    copy_run(real_runs["oracle"], tmp_path / "subs" / "a")
    out = build(tmp_path)
    samples = load_caption_dataset(small_benchmark, "test", open_images=False).samples
    files = {s.query_image for s in samples} | {c.image for s in samples for c in s.concepts}
    images = {hashlib.sha256((small_benchmark / f).read_bytes()).hexdigest() for f in files}
    thumbs = list((out / "img").glob("*.jpg"))
    assert len(thumbs) == len(images)
    page = next((out / "models").rglob("covip_caption_1c.html")).read_text()
    shown = re.findall(r'src="\.\./\.\./img/([0-9a-f]+\.jpg)"', page)
    rows = read_rows(real_runs["oracle"], "covip_caption_1c")
    assert len(shown) == sum(1 + len(r["covip_record"]["names"]) for r in rows) and set(shown) <= {
        t.name for t in thumbs
    }


def test_images_of_another_benchmark_are_not_shown(real_runs, other_benchmark: Path, tmp_path: Path, capsys) -> None:
    copy_run(real_runs["oracle"], tmp_path / "subs" / "a")
    out = build(tmp_path, "--data", str(other_benchmark))
    assert not (out / "img").exists()
    page = next((out / "models").rglob("covip_caption_1c.html")).read_text()
    assert "holds other caption samples than the run's (their fingerprint differs)" in unescape(page)
    assert "benchmark not checked: the benchmark at" in capsys.readouterr().out  # nor were the records


def test_rejected_submissions_are_listed_apart_and_the_build_exits_2(real_runs, tmp_path: Path, capsys) -> None:
    copy_run(real_runs["oracle"], tmp_path / "subs" / "a")
    bad = copy_run(real_runs["single"], tmp_path / "subs" / EVIL.replace("/", "_"))
    edit_results(bad, lambda d: d["versions"].update({"covip_caption_3c": 9}))
    out = build(tmp_path, code=2)
    err = capsys.readouterr().err
    assert f"{bad}: REJECTED (1 problem(s))" in err and "versions.covip_caption_3c: version 9" in err
    data = json.loads((out / "leaderboard.json").read_text())
    assert [m["model"] for m in data["models"]] == ["covip_oracle"]
    index = (out / "index.html").read_text()
    assert '<section id="rejected">' in index and "versions.covip_caption_3c: version 9" in index
    assert "<script>alert(1)<_script>" not in index and EVIL_TEXT.replace("/", "_") in index


def test_no_site_when_no_submission_is_valid(real_runs, tmp_path: Path) -> None:
    bad = copy_run(real_runs["single"], tmp_path / "subs" / "a")
    edit_results(bad, lambda d: d["versions"].update({"covip_caption_3c": 9}))
    build(tmp_path, code=2)
    assert not (tmp_path / "site").exists()


def test_build_refuses_to_overwrite_a_directory_that_is_not_a_site(real_runs, tmp_path: Path, capsys) -> None:
    copy_run(real_runs["single"], tmp_path / "subs" / "a")
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "precious.txt").write_text("keep")
    assert main(["build", str(tmp_path / "subs"), "--out", str(tmp_path / "site")]) == 2
    assert (tmp_path / "site" / "precious.txt").read_text() == "keep"
    assert main(["build", str(tmp_path / "subs"), "--out", str(tmp_path / "new")]) == 0
    assert main(["build", str(tmp_path / "subs"), "--out", str(tmp_path / "new")]) == 0  # a previous site is replaced


def test_model_page_marks_card_fields_derived_from_the_results(real_runs, tmp_path: Path) -> None:
    sub = copy_run(real_runs["single"], tmp_path / "subs" / "a", card={"name": "Mine", "method": "GSPO"})
    edit_results(sub, lambda d: d["config"].update(model="covip_qwen3_vl", model_args="pretrained=Qwen/Qwen3-VL-8B"))
    out = build(tmp_path)
    html = next(p for p in (out / "models").glob("*.html")).read_text()
    assert "<dt>Base model</dt><dd>Qwen/Qwen3-VL-8B <span" in html
    assert "<dt>Personalization method</dt><dd>GSPO</dd>" in html  # the card's value, not derived
    assert html.count("(from the results)</span>") == 3  # base model, access and date
    assert f"<dt>Training data</dt><dd>{NOT_GIVEN}</dd>" in html
    assert "<dt>Checks</dt><dd>re-judged: all " in html
