"""The built site in a real headless Chromium (Debian's /usr/bin/chromium), driven over the DevTools protocol.

Opens the site from disk, clicks a column header with a real mouse event and checks the row order
changed; checks there is no console error, no CSP violation, no script dialog (a model named
`<script>alert(1)</script>` must stay text), that the site's own script, stylesheet and a query
thumbnail were requested and loaded, and that no request left the site directory; saves a
screenshot and checks it is not blank. The Makefile's `test` target installs chromium when missing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from browser import Browser, needs_chromium
from leaderboard_edits import copy_run, read_rows
from PIL import ImageStat

from covip.leaderboard.cli import main

pytest_plugins = ["leaderboard_runs"]
EVIL = "<script>alert(1)</script>"
pytestmark = needs_chromium


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, real_runs: dict[str, Path], repic_runs: dict[str, Path]) -> Path:
    """Three baselines' real runs in one ranked table, one named like a script; sample pages show query thumbnails;
    a run of the RePIC tasks in the RePIC table."""
    root = tmp_path_factory.mktemp("subs")
    copy_run(real_runs["oracle"], root / "oracle")
    copy_run(real_runs["shortcut"], root / "evil", card={"name": EVIL})
    copy_run(real_runs["blind"], root / "blind")
    copy_run(repic_runs["blind"], root / "repic", card={"id": "RePIC blind"})
    out = tmp_path_factory.mktemp("site") / "site"
    assert main(["build", str(root), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def browser():
    b = Browser()
    yield b
    b.close()


ASSETS = ["assets/leaderboard.js", "assets/leaderboard.css"]
# Waits for the first query thumbnail (lazy-loaded) and gives its URL and decoded width (0: not loaded).
IMAGE_LOADED = """new Promise(resolve => {
  const img = document.querySelector('section.sample img');
  const done = () => resolve({src: img.currentSrc, width: img.naturalWidth});
  if (img.complete) done(); else { img.addEventListener('load', done); img.addEventListener('error', done); }
})"""
RANKED = "#cohort-1 table.ranked"
FIRST_COLUMN = (
    f"Array.from(document.querySelectorAll('{RANKED} tbody:first-of-type tr')).map(r => r.cells[1].textContent.trim())"
)


def test_index_sorts_on_click_without_errors_or_outside_requests(site: Path, browser: Browser, tmp_path: Path) -> None:
    browser.open(site.joinpath("index.html").as_uri())
    before = browser.eval(FIRST_COLUMN)
    assert len(before) == 3 and EVIL in before  # the script-named model renders as its literal text
    header = f"{RANKED} thead th:nth-child(2) button"
    browser.click(header)
    ascending = browser.eval(FIRST_COLUMN)
    browser.click(header)
    descending = browser.eval(FIRST_COLUMN)
    assert {tuple(ascending), tuple(descending)} == {
        tuple(sorted(before, key=str.lower)),
        tuple(sorted(before, key=str.lower, reverse=True)),
    }
    assert ascending != before or descending != before
    assert browser.eval(f"document.querySelector('{RANKED} th:nth-child(2)').getAttribute('aria-sort')")
    # reported rows stay in their own tbody after sorting
    assert browser.eval("document.querySelectorAll('tbody.reported')[0].rows.length") == 9
    # the RePIC tasks' own ranked table, and one per task, sortable like the others
    assert browser.eval("document.querySelector('#repic-1 table.ranked tbody td:nth-child(2)').textContent") == (
        "RePIC blind"
    )
    assert (
        browser.eval("document.querySelectorAll('#repic-1 table.sortable thead tr th:first-child button').length") == 11
    )
    browser.settle()
    assert browser.errors() == []
    browser.only_site_requests(site, ASSETS)
    shot = browser.screenshot(tmp_path / "index.png")
    assert max(hi - lo for lo, hi in ImageStat.Stat(shot.convert("L")).extrema) > 100
    assert len(shot.convert("RGB").getcolors(2**20) or []) > 50  # text, tables and charts, not a blank page


def test_model_and_sample_pages_load_clean(site: Path, browser: Browser, real_runs: dict[str, Path]) -> None:
    browser.open(site.joinpath("index.html").as_uri())
    href = browser.eval(
        f"Array.from(document.querySelectorAll('a')).find(a => a.textContent === {json.dumps(EVIL)}).href"
    )
    browser.open(href)
    assert browser.eval("document.querySelector('h1').textContent") == EVIL
    sample = browser.eval("document.querySelector('ul a').href")
    assert sample.endswith("/covip_caption_1c.html")
    browser.open(sample)
    rows = read_rows(real_runs["shortcut"], "covip_caption_1c")
    assert browser.eval("document.querySelectorAll('section.sample').length") == len(rows)
    assert browser.eval("document.querySelector('p.caption').textContent") == rows[0]["covip_record"]["caption"]
    thumb = browser.eval(IMAGE_LOADED)
    assert thumb["width"] > 0, "the query thumbnail did not load under the Content-Security-Policy"
    browser.settle()
    assert browser.errors() == []
    browser.only_site_requests(site, [*ASSETS, thumb["src"].removeprefix(site.resolve().as_uri() + "/")])
    # The Content-Security-Policy is in force: an image pointed outside the site is blocked, not fetched.
    browser.eval(
        "(() => { const i = new Image(); i.src = 'http://127.0.0.1:9/probe.png'; document.body.append(i); })()"
    )
    browser.settle()
    blocked = [
        ev
        for ev in browser.events
        if ev.get("method") == "Network.loadingFailed"
        and ev["params"].get("blockedReason") == "csp"
        or ev.get("method") == "Log.entryAdded"
        and "Content Security Policy" in ev["params"]["entry"].get("text", "")
    ]
    assert blocked, "an outside image was not blocked by the Content-Security-Policy"


@pytest.fixture(scope="module")
def comparison(tmp_path_factory: pytest.TempPathFactory, real_runs: dict[str, Path]) -> Path:
    """`covip-leaderboard compare` of two baselines' real runs (their captioning tasks and controls)."""
    out = tmp_path_factory.mktemp("comparison") / "oracle-vs-retrieval"
    assert main(["compare", str(real_runs["oracle"]), str(real_runs["retrieval"]), "--out", str(out)]) == 0
    return out


VISIBLE = "Array.from(document.querySelectorAll({})).filter(e => e.getClientRects().length > 0)"
# Widths of the first sample's pictures once loaded (they load lazily: the first sample is in view); 0: not loaded.
PICTURES_LOADED = """Promise.all(Array.from(document.querySelectorAll('section.sample:first-of-type .pictures img'))
  .map(img => img.complete ? img.naturalWidth
    : new Promise(r => { img.onload = () => r(img.naturalWidth); img.onerror = () => r(0); })))"""


def visible(browser: Browser, selector: str) -> int:
    return browser.eval(VISIBLE.format(json.dumps(selector)) + ".length")


def test_comparison_page_names_every_pair_and_loads_clean(comparison: Path, browser: Browser) -> None:
    browser.open(comparison.joinpath("index.html").as_uri())
    assert browser.eval("document.querySelector('h3').textContent") == "B = covip_retrieval vs A = covip_oracle"
    assert browser.eval("document.querySelectorAll('table.paired tbody tr').length") == 15  # 3 controls x 5 rows
    browser.settle()
    assert browser.errors() == []
    browser.only_site_requests(comparison, ASSETS)
    browser.doc_screenshot("compare.png", height=760)


def test_side_by_side_filters_to_the_disagreements(comparison: Path, browser: Browser) -> None:
    browser.open(comparison.joinpath("covip_caption_3c.html").as_uri())
    total = browser.eval("document.querySelectorAll('section.sample').length")
    differing = browser.eval("document.querySelectorAll('section.sample.differs').length")
    rows = browser.eval("document.querySelectorAll('tr.q.differs').length")
    assert 0 < differing <= total and rows > 0
    assert (
        browser.eval("document.querySelector('form.filter output').textContent") == f"{total} of {total} samples shown"
    )
    pictures = browser.eval(PICTURES_LOADED)
    assert pictures and all(width > 0 for width in pictures), "a picture did not load under the policy"
    browser.click("input[name=show][value=differs]")
    assert visible(browser, "section.sample") == differing
    assert visible(browser, "tr.q") == visible(browser, "tr.q.differs") == rows
    text = browser.eval("document.querySelector('form.filter output').textContent")
    assert text == f"{differing} of {total} samples shown"
    browser.settle()
    assert browser.errors() == []
    browser.only_site_requests(comparison, ASSETS)
    browser.eval("document.querySelector('details.legend').open = false")
    browser.doc_screenshot("side_by_side.png", height=1300)
    browser.click("input[name=show][value=all]")
    assert visible(browser, "section.sample") == total


def test_sample_page_shows_context_pictures_and_filters_to_wrong_questions(site: Path, browser: Browser) -> None:
    browser.open(site.joinpath("index.html").as_uri())
    href = browser.eval("Array.from(document.querySelectorAll('a')).find(a => a.textContent === 'covip_blind').href")
    browser.open(href.removesuffix(".html") + "/covip_caption_2c.html")
    names = browser.eval(
        "Array.from(document.querySelectorAll('section.sample')).map(s => s.querySelectorAll('.pictures img').length)"
    )
    assert names and all(n > 2 for n in names)  # the query image and every context picture
    assert all(width > 0 for width in browser.eval(PICTURES_LOADED))
    wrong = browser.eval("document.querySelectorAll('tr.q.wrong').length")
    assert 0 < wrong < browser.eval("document.querySelectorAll('tr.q').length")
    browser.click("input[name=show][value=wrong]")
    assert visible(browser, "tr.q") == visible(browser, "tr.q.wrong") == wrong
    browser.click("input[name=show][value=differs]")
    assert visible(browser, "tr.q") == browser.eval("document.querySelectorAll('tr.q.differs').length")
    browser.click("input[name=show][value=wrong]")
    browser.settle()
    assert browser.errors() == []
    browser.eval("document.querySelector('details.legend').open = false")
    browser.doc_screenshot("sample_page.png", height=1000)
