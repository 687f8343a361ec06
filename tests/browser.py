"""A headless Chromium (Debian's /usr/bin/chromium) driven over the DevTools protocol, for the browser tests.

The browser tests open real pages (the static leaderboard site from disk, the `covip-human` app over loopback) and
act as a user does: real mouse clicks at an element's centre, real key presses, typed text. They collect console
errors, script dialogs and every request, and save screenshots (the README's are written to docs/img/).
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
from PIL import Image

DOCS_IMG = Path(__file__).resolve().parent.parent / "docs" / "img"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
needs_chromium = pytest.mark.skipif(
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

    def press(self, key: str) -> None:
        """A real key press: a printable key (its text typed), or Enter."""
        named = {"Enter": {"code": "Enter", "windowsVirtualKeyCode": 13, "text": "\r"}}
        detail = named.get(key) or {"code": f"Key{key.upper()}", "text": key, "windowsVirtualKeyCode": ord(key.upper())}
        self.call("Input.dispatchKeyEvent", type="keyDown", key=key, **detail)
        self.call("Input.dispatchKeyEvent", type="keyUp", key=key, code=detail["code"])

    def type_text(self, text: str) -> None:
        self.call("Input.insertText", text=text)

    def until_loaded(self, action) -> None:
        """Do `action` (a click or a key press that navigates) and wait for the next page to load."""
        self.events.clear()
        action()
        self.wait_for("Page.loadEventFired")

    def doc_screenshot(self, name: str, height: int = 900, scale: float = 0.75) -> Path:
        """The top of the page, scaled down, as a small PNG (256 colours) in docs/img/ for the README; rewritten only
        when it changed, so that a test run leaves the checkout clean."""
        width = self.eval("window.scrollTo(0, 0), document.documentElement.clientWidth")
        clip = {"x": 0, "y": 0, "width": width, "height": height, "scale": scale}
        shot = self.call("Page.captureScreenshot", format="png", clip=clip)
        image = Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("RGB")
        buffer = io.BytesIO()
        image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(buffer, "PNG", optimize=True)
        path = DOCS_IMG / name
        if not path.is_file() or path.read_bytes() != buffer.getvalue():
            DOCS_IMG.mkdir(parents=True, exist_ok=True)
            path.write_bytes(buffer.getvalue())
        return path
