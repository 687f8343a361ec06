"""`covip-human serve` in a real headless Chromium: a rater types their name, rates items with the keyboard and with
the mouse, the server is killed (SIGKILL) and started again, and the rater resumes where they stopped; every rating
given is in the SQLite file, with the side each system was shown on."""

from __future__ import annotations

import select
import subprocess
import sys
from pathlib import Path

import pytest
from browser import Browser, needs_chromium
from leaderboard_edits import read_rows
from PIL import ImageStat

pytest.importorskip("flask", reason="the human extra is not installed (make install installs it)")

from covip.leaderboard.human.store import Store  # noqa: E402

pytest_plugins = ["leaderboard_runs"]
pytestmark = needs_chromium
SYSTEMS = ("oracle", "retrieval")
ITEMS = 5
RATER = "Ann Rater"
BIN = Path(sys.executable).parent


class Server:
    """`covip-human serve` as users start it, on a free port."""

    def __init__(self, runs: list[Path], db: Path) -> None:
        args = [str(BIN / "covip-human"), "serve", *map(str, runs), "--db", str(db), "--items", str(ITEMS)]
        self.proc = subprocess.Popen([*args, "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 120)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("covip-human: http://"):
            self.proc.kill()
            raise RuntimeError(f"the server did not start: {line!r} {self.proc.stderr.read()}")
        self.url = line.split()[1]

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)


@pytest.fixture()
def browser():
    b = Browser()
    yield b
    b.close()


def page_view(browser: Browser) -> dict:
    return browser.eval(
        "({item: document.querySelector('input[name=item]').value,"
        " left: document.getElementById('caption-left').textContent,"
        " right: document.getElementById('caption-right').textContent,"
        " head: document.querySelector('.rating-head').textContent.replace(/\\s+/g, ' ').trim()})"
    )


def test_rate_with_keys_and_clicks_kill_restart_and_resume(real_runs, tmp_path: Path, browser: Browser) -> None:
    runs = [real_runs[name] for name in SYSTEMS]
    db = tmp_path / "study.sqlite"
    logs = {
        (row["covip_record"]["sample_id"], f"covip_{name}"): row["covip_record"]["caption"]
        for name in SYSTEMS
        for bucket in ("1c", "2c", "3c", "4c")
        for row in read_rows(real_runs[name], f"covip_caption_{bucket}")
    }
    server = Server(runs, db)
    try:
        browser.open(server.url)
        browser.click("input[name=rater]")
        browser.type_text(RATER)
        browser.until_loaded(lambda: browser.click("form.start button"))
        given = []
        # item 1 with keys, item 2 with the mouse, item 3 with keys again
        for how, context, faithfulness in (
            ("keys", "left", "right"),
            ("mouse", "tie", "left"),
            ("keys", "right", "tie"),
        ):
            view = page_view(browser)
            assert f"item {len(given) + 1} of {ITEMS}" in view["head"] and f"{len(given)} rated" in view["head"]
            if how == "keys":
                keys = {"left": 0, "tie": 1, "right": 2}
                browser.press("asd"[keys[context]])
                browser.press("jkl"[keys[faithfulness]])
                assert browser.eval("document.querySelector('input[name=context]:checked').value") == context
                browser.until_loaded(lambda: browser.press("Enter"))
            else:
                browser.click(f"input[name=context][value={context}]")
                browser.click(f"input[name=faithfulness][value={faithfulness}]")
                browser.until_loaded(lambda: browser.click("form.rating button[type=submit]"))
            given.append(view | {"context": context, "faithfulness": faithfulness})
        fourth = page_view(browser)
        assert f"item 4 of {ITEMS}" in fourth["head"] and "3 rated" in fourth["head"]
        shot = browser.screenshot(tmp_path / "rating.png")
        assert max(hi - lo for lo, hi in ImageStat.Stat(shot.convert("L")).extrema) > 100
        browser.doc_screenshot("human_rating.png", height=820)
        browser.settle()
        assert browser.errors() == []
        assert all(url.startswith(server.url) for url in browser.requests())
    finally:
        server.kill()  # SIGKILL: no shutdown, nothing flushed by the server

    ratings = {r.item: r for r in Store(db).ratings(RATER)}
    assert len(ratings) == 3
    for view in given:
        rating = ratings[view["item"]]
        assert rating.choices == {"context": view["context"], "faithfulness": view["faithfulness"]}
        sample = next(
            sid for (sid, system), caption in logs.items() if caption == view["left"] and system == rating.left
        )
        assert logs[(sample, rating.right)] == view["right"]  # the side recorded is the side shown

    server = Server(runs, db)
    try:
        browser.open(f"{server.url}rate?rater={RATER.replace(' ', '%20')}")
        resumed = page_view(browser)
        assert resumed["item"] == fourth["item"] and resumed["left"] == fourth["left"]
        assert f"item 4 of {ITEMS}" in resumed["head"] and "3 rated" in resumed["head"]
        for _ in range(ITEMS - 3):
            browser.press("s")
            browser.press("k")
            browser.until_loaded(lambda: browser.press("Enter"))
        assert browser.eval("document.querySelector('h1').textContent") == f"Thank you, {RATER}"
        browser.settle()
        assert browser.errors() == []
    finally:
        server.kill()
    assert len(Store(db).ratings(RATER)) == ITEMS
