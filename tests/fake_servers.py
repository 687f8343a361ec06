"""Loopback fake servers for API clients: real HTTP on 127.0.0.1, scripted answers and faults.

A `FakeServer` is a stdlib ThreadingHTTPServer on 127.0.0.1 with an OS-chosen port, run in a
thread. Each route (an HTTP method and a path regex) has a queue of scripted `Reply`s, consumed
in order, and a default responder used once the queue is empty. Every request is recorded
(method, path, headers, raw body, parsed JSON) so a test can check exactly what a client sent.
A `Reply` can carry any status, headers and body (JSON or raw bytes, for malformed JSON), a
delay (for client timeouts), or `hold`, which blocks until `release()` (to kill a client
mid-request). Helpers build the OpenAI `/v1/chat/completions` and Gemini
`/v1beta/models/{model}:generateContent` shapes; other endpoints and payloads (e.g. chat with
images) only need another route.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

OPENAI_CHAT = r"/v1/chat/completions"
GEMINI_GENERATE = r"/v1beta/models/(?P<model>[^/:]+):generateContent"


@dataclass
class Reply:
    """What the server sends back for one request."""

    status: int = 200
    body: Any = None  # dict/list -> JSON; str/bytes -> sent as is (malformed JSON, garbage)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (longer than a client's timeout -> its timeout)
    hold: bool = False  # block until FakeServer.release() (a request left in flight)


@dataclass
class Request:
    """One recorded request."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    match: dict[str, str]
    answered: bool = False
    at: float = field(default_factory=time.monotonic)  # arrival time, to check back-off delays

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


Responder = Callable[[Request], Reply]


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # a concurrent client must not see refused connections (the default backlog is 5)


class FakeServer:
    """Scripted HTTP server on 127.0.0.1; use as a context manager."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], deque[Reply], Responder | None]] = []
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._released = threading.Event()
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests open at once: checks a client's concurrency bound
        self._httpd = _Server(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, path: str, default: Responder | None = None, method: str = "POST") -> FakeServer:
        """Serve `path` (a regex, fully matched); `default` answers once the scripted queue is empty."""
        self.routes.append((method, re.compile(path), deque(), default))
        return self

    def script(self, path: str, *replies: Reply, method: str = "POST") -> FakeServer:
        """Queue `replies` for the route `path` (answered before its default responder)."""
        for m, pattern, queue, _ in self.routes:
            if m == method and pattern.pattern == path:
                with self._lock:
                    queue.extend(replies)
                return self
        raise KeyError(f"no route {method} {path}; call route() first")

    def release(self) -> None:
        """Let every held request answer."""
        self._released.set()

    def answered(self) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.answered]

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._httpd.shutdown()
        self._httpd.server_close()

    def _reply_for(self, request: Request) -> Reply:
        for method, pattern, queue, default in self.routes:
            found = pattern.fullmatch(request.path.split("?", 1)[0])
            if method == request.method and found:
                request.match = found.groupdict()
                with self._lock:
                    if queue:
                        return queue.popleft()
                if default is None:
                    return Reply(500, {"error": {"message": f"fake server: script for {request.path} exhausted"}})
                return default(request)
        return Reply(404, {"error": {"message": f"fake server: no route for {request.method} {request.path}"}})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                headers = {k.lower(): v for k, v in self.headers.items()}
                request = Request(self.command, self.path, headers, self.rfile.read(length), {})
                with server._lock:
                    server.requests.append(request)
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    self._answer(request)
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _answer(self, request: Request) -> None:
                reply = server._reply_for(request)
                if reply.hold:
                    server._released.wait()
                if reply.delay:
                    time.sleep(reply.delay)
                body = reply.body
                if isinstance(body, (dict, list)):
                    data = json.dumps(body).encode()
                elif isinstance(body, str):
                    data = body.encode()
                else:
                    data = body or b""
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                    self.wfile.flush()
                    request.answered = not reply.hold
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout, killed): that request was never answered

            do_POST = _serve
            do_GET = _serve

        return Handler


def openai_chat_body(text: str | None, model: str = "fake-model") -> dict:
    """An OpenAI chat.completion object answering `text`."""
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop", "logprobs": None}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def gemini_body(text: str) -> dict:
    """A Gemini GenerateContentResponse answering `text`."""
    return {
        "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1, "totalTokenCount": 2},
        "modelVersion": "fake",
    }


def openai_prompt(request: Request) -> str:
    """The text of the last user message of an OpenAI chat request (string or text parts)."""
    content = request.json["messages"][-1]["content"]
    return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)


def gemini_prompt(request: Request) -> str:
    """The text of a Gemini generateContent request's last content."""
    return "".join(p.get("text", "") for p in request.json["contents"][-1]["parts"])


def openai_server(answer: Callable[[str], str], delay: float = 0.0) -> FakeServer:
    """An OpenAI-compatible server whose default answer to a prompt is `answer(prompt)`."""
    return FakeServer().route(
        OPENAI_CHAT, lambda r: Reply(body=openai_chat_body(answer(openai_prompt(r)), r.json["model"]), delay=delay)
    )


def gemini_server(answer: Callable[[str], str], delay: float = 0.0) -> FakeServer:
    """A Gemini API server whose default answer to a prompt is `answer(prompt)`."""
    return FakeServer().route(GEMINI_GENERATE, lambda r: Reply(body=gemini_body(answer(gemini_prompt(r))), delay=delay))
