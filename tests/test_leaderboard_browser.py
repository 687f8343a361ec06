"""The built site in a real headless Chromium (Debian's /usr/bin/chromium), driven over the DevTools protocol.

Opens the site from disk, clicks a column header with a real mouse event and checks the row order
changed; checks there is no console error, no CSP violation, no script dialog (a model named
`<script>alert(1)</script>` must stay text), that the site's own script, stylesheet and a query
thumbnail were requested and loaded, and that no request left the site directory; saves a
screenshot and checks it is not blank. The Makefile's `test` target installs chromium when missing.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from leaderboard_edits import copy_run, read_rows
from PIL import Image, ImageStat

from covip.leaderboard.cli import main

pytest_plugins = ["leaderboard_runs"]
EVIL = "<script>alert(1)</script>"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and not os.environ.get("CI"), reason="chromium not installed (make test installs it)"
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1280,1600",
    "--remote-debugging-port=0",
]


class Browser:
    """A headless Chromium and one page, spoken to over its DevTools websocket."""

    def __init__(self) -> None:
        from websockets.sync.client import connect

        self.profile = tempfile.mkdtemp(prefix="covip-chromium-")
        self.proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.is_file() or not port_file.read_text().strip():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError("chromium did not start (no DevToolsActivePort)")
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            target = next(t for t in json.load(resp) if t["type"] == "page")
        self.ws = connect(target["webSocketDebuggerUrl"], max_size=64 * 2**20)
        self.ids = itertools.count(1)
        self.events: list[dict] = []
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")

    def call(self, method: str, **params) -> dict:
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=30))
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_for(self, method: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(ev.get("method") == method for ev in self.events):
            self.events.append(json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic()))))

    def eval(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str) -> None:
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")

    def click(self, selector: str) -> None:
        """A real mouse click at the element's centre (not element.click())."""
        box = self.eval(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)}); el.scrollIntoView(); "
            "const r = el.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    def settle(self, seconds: float = 0.5) -> None:
        """Drain events for a moment (late console messages, requests)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self.events.append(json.loads(self.ws.recv(timeout=0.05)))
            except TimeoutError:
                pass

    def screenshot(self, path: Path) -> Image.Image:
        data = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        path.write_bytes(data)
        return Image.open(io.BytesIO(data))

    def errors(self) -> list[str]:
        found = []
        for ev in self.events:
            method, params = ev.get("method"), ev.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(f"console: {params.get('args')}")
            elif method == "Runtime.exceptionThrown":
                found.append(f"exception: {params.get('exceptionDetails')}")
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                found.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}")
            elif method == "Page.javascriptDialogOpening":
                found.append(f"dialog opened: {params.get('message')}")
        return found

    def requests(self) -> list[str]:
        return [ev["params"]["request"]["url"] for ev in self.events if ev.get("method") == "Network.requestWillBeSent"]

    def loaded(self) -> set[str]:
        """URLs of the requests that finished loading (neither failed nor blocked)."""
        urls = {
            ev["params"]["requestId"]: ev["params"]["request"]["url"]
            for ev in self.events
            if ev.get("method") == "Network.requestWillBeSent"
        }
        done = (ev["params"]["requestId"] for ev in self.events if ev.get("method") == "Network.loadingFinished")
        return {urls[i] for i in done if i in urls}

    def only_site_requests(self, site: Path, expected: list[str]) -> None:
        """The expected site files were requested and loaded, and nothing outside the site was requested."""
        site_url = site.resolve().as_uri() + "/"
        assert [u for u in self.requests() if not u.startswith(site_url)] == []
        missing = [name for name in expected if site_url + name not in self.loaded()]
        assert missing == [], f"not loaded: {missing}; requests: {self.requests()}"

    def close(self) -> None:
        if getattr(self, "ws", None):
            self.ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, real_runs: dict[str, Path]) -> Path:
    """Three baselines' real runs in one ranked table, one named like a script; sample pages show query thumbnails."""
    root = tmp_path_factory.mktemp("subs")
    copy_run(real_runs["oracle"], root / "oracle")
    copy_run(real_runs["shortcut"], root / "evil", card={"name": EVIL})
    copy_run(real_runs["blind"], root / "blind")
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
