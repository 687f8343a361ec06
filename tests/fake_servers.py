"""Loopback fake servers for API clients: real HTTP on 127.0.0.1, scripted answers and faults.

A `FakeServer` is a stdlib ThreadingHTTPServer on 127.0.0.1 with an OS-chosen port, run in a
thread. Each route (an HTTP method and a path regex) has a queue of scripted `Reply`s, consumed
in order, and a default responder used once the queue is empty. Every request is recorded
(method, path, headers, raw body, parsed JSON) so a test can check exactly what a client sent.
A `Reply` can carry any status, headers and body (JSON or raw bytes, for malformed JSON), a
delay (for client timeouts), or `hold`, which blocks until `release()` (to kill a client
mid-request). Helpers build the OpenAI `/v1/chat/completions` and Gemini
`/v1beta/models/{model}:generateContent` shapes; other endpoints and payloads (e.g. chat with
images) only need another route. `FakeBatchAPI` adds OpenAI's Batch API (`/v1/files`,
`/v1/batches`, `/v1/batches/{id}`, `/v1/files/{id}/content`) to a server.
"""

from __future__ import annotations

import email
import email.policy
import itertools
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
OPENAI_FILES = r"/v1/files"
OPENAI_FILE_CONTENT = r"/v1/files/(?P<file_id>[^/]+)/content"
OPENAI_BATCHES = r"/v1/batches"
OPENAI_BATCH = r"/v1/batches/(?P<batch_id>[^/]+)"
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
    return body_prompt(request.json)


def body_prompt(body: dict) -> str:
    """The text of the last user message of an OpenAI chat-completion body."""
    content = body["messages"][-1]["content"]
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


class FakeBatchAPI:
    """OpenAI's Batch API on a `FakeServer`: uploads, batches that end after some polls, output and error files.

    Each line of a batch file is answered by `respond(body) -> Reply` (a status other than 200 becomes a line of the
    error file). A batch reports `in_progress` (with request counts) until it has been polled `polls` times, and
    stays there while `hold` is set (a client killed while waiting). `end` makes the next batch end otherwise:
    `("expired", k)` answers only its first k lines, `("failed", 0)` none. Every batch line body is kept in `bodies`.
    """

    def __init__(self, server: FakeServer, respond: Callable[[dict], Reply], polls: int = 2) -> None:
        self.respond = respond
        self.polls = polls
        self.hold = False
        self.end: tuple[str, int] = ("completed", -1)
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self.bodies: list[dict] = []
        self._polled: dict[str, int] = {}
        self._ids = itertools.count(1)
        server.route(OPENAI_FILES, self._upload)
        server.route(OPENAI_FILE_CONTENT, self._content, method="GET")
        server.route(OPENAI_BATCHES, self._create)
        server.route(OPENAI_BATCH, self._retrieve, method="GET")

    def _upload(self, request: Request) -> Reply:
        head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
        form = email.message_from_bytes(head + request.body, policy=email.policy.HTTP)
        fields = {part.get_param("name", header="content-disposition"): part for part in form.iter_parts()}
        file_id = f"file-{next(self._ids)}"
        self.files[file_id] = fields["file"].get_payload(decode=True)
        purpose = fields["purpose"].get_payload(decode=True).decode()
        return Reply(body=self._file(file_id, purpose))

    def _file(self, file_id: str, purpose: str) -> dict:
        size = len(self.files[file_id])
        return {
            "id": file_id,
            "object": "file",
            "bytes": size,
            "created_at": 0,
            "filename": f"{file_id}.jsonl",
            "purpose": purpose,
            "status": "processed",
        }

    def _create(self, request: Request) -> Reply:
        spec = request.json
        lines = [json.loads(line) for line in self.files[spec["input_file_id"]].decode().splitlines()]
        self.bodies += [line["body"] for line in lines]
        batch_id = f"batch_{next(self._ids)}"
        status, answered = self.end
        self.end = ("completed", -1)
        self.batches[batch_id] = {
            "id": batch_id,
            "object": "batch",
            "endpoint": spec["endpoint"],
            "input_file_id": spec["input_file_id"],
            "completion_window": spec["completion_window"],
            "status": "validating",
            "created_at": 0,
            "output_file_id": None,
            "error_file_id": None,
            "errors": None,
            "metadata": spec.get("metadata"),
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
            "_lines": lines,
            "_end": status,
            "_answered": len(lines) if answered < 0 else answered,
        }
        self._polled[batch_id] = 0
        return Reply(body=self._public(batch_id))

    def _public(self, batch_id: str) -> dict:
        return {k: v for k, v in self.batches[batch_id].items() if not k.startswith("_")}

    def _retrieve(self, request: Request) -> Reply:
        batch_id = request.match["batch_id"]
        batch = self.batches[batch_id]
        self._polled[batch_id] += 1
        if batch["status"] in ("validating", "in_progress"):
            if self.hold or self._polled[batch_id] < self.polls:
                batch["status"] = "in_progress"
                batch["request_counts"]["completed"] = len(batch["_lines"]) // 2
            else:
                self._finish(batch)
        return Reply(body=self._public(batch_id))

    def _finish(self, batch: dict) -> None:
        if batch["_end"] == "failed":
            batch["errors"] = {"object": "list", "data": [{"code": "invalid_request", "message": "fake: bad file"}]}
            batch["status"] = "failed"
            return
        output, errors = [], []
        for i, line in enumerate(batch["_lines"]):
            if i >= batch["_answered"]:
                error = {"code": "batch_expired", "message": "fake: not answered in time"}
                errors.append({"id": f"req_{i}", "custom_id": line["custom_id"], "response": None, "error": error})
                continue
            reply = self.respond(line["body"])
            row = {
                "id": f"req_{i}",
                "custom_id": line["custom_id"],
                "error": None,
                "response": {"status_code": reply.status, "request_id": f"r{i}", "body": reply.body},
            }
            (output if reply.status == 200 else errors).append(row)
        for key, rows in (("output_file_id", output), ("error_file_id", errors)):
            if rows:
                file_id = f"file-{next(self._ids)}"
                self.files[file_id] = "".join(json.dumps(r) + "\n" for r in rows).encode()
                batch[key] = file_id
        batch["request_counts"] = {"total": len(batch["_lines"]), "completed": len(output), "failed": len(errors)}
        batch["status"] = batch["_end"]

    def _content(self, request: Request) -> Reply:
        return Reply(body=self.files[request.match["file_id"]])
