"""The `gemini` judge backend with the real google-genai client against a loopback fake server."""

from __future__ import annotations

import logging
import time

import pytest
from fake_servers import GEMINI_GENERATE, Reply, gemini_body, gemini_prompt, gemini_server

from covip.judges.protocol import MCQA
from covip.judges.registry import make_judge

FAKE_KEY = "AIza-covip-FAKE-KEY-77e2"
OPTIONS = {"A": "last summer", "B": "last winter", "C": "yesterday", "D": "The answer cannot be determined"}
ITEM = MCQA("s0/c0.Q1", "Seth ran in the park last summer.", "When?", OPTIONS)


@pytest.fixture(autouse=True)
def fake_key(monkeypatch):
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.setenv("GEMINI_API_KEY", FAKE_KEY)


def judge(srv, **options):
    defaults = {"model": "gemini-fake", "cache": "off", "retry_base_delay": 0.001}
    return make_judge("gemini", base_url=srv.url, **{**defaults, **options})


def test_payload_and_answer():
    with gemini_server(lambda p: "Answer: \\boxed{A}") as srv:
        [verdict] = judge(srv).judge_many([ITEM])
        [request] = srv.requests
    assert verdict.letter == "A"
    assert request.match["model"] == "gemini-fake" and request.path.startswith("/v1beta/models/")
    assert request.headers["x-goog-api-key"] == FAKE_KEY
    assert "[Question]\nQuestion: When?\nA. last summer" in gemini_prompt(request)
    assert request.json["contents"][0]["role"] == "user"
    assert request.json["generationConfig"] == {
        "temperature": 0.0,
        "seed": 0,
        "maxOutputTokens": 512,
        "candidateCount": 1,
    }


def test_paper_preset_and_constraint():
    with gemini_server(lambda p: "B") as srv:
        [verdict] = judge(srv, preset="paper", min_p=None, constrain=True).judge_many([ITEM])
        config = srv.requests[0].json["generationConfig"]
    assert verdict.letter == "B"
    assert (config["temperature"], config["topP"], config["topK"]) == (0.7, 0.8, 20)
    assert config["responseMimeType"] == "text/x.enum"
    assert config["responseSchema"]["enum"] == ["A", "B", "C", "D"]


def test_min_p_is_refused_rather_than_dropped():
    with gemini_server(lambda p: "B") as srv:
        [verdict] = judge(srv, min_p=0.05).judge_many([ITEM])
    assert verdict.letter == "error" and "min_p" in verdict.detail


def test_faults_429_500_timeout_malformed_are_retried():
    error_429 = {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}}
    with gemini_server(lambda p: "Answer: \\boxed{C}") as srv:
        srv.script(
            GEMINI_GENERATE,
            Reply(429, error_429, {"Retry-After": "0.5"}),
            Reply(500, {"error": {"code": 500, "message": "boom", "status": "INTERNAL"}}),
            Reply(body=gemini_body("Answer: \\boxed{A}"), delay=3.0),
            Reply(200, "{not json"),
        )
        start = time.monotonic()
        [verdict] = judge(srv, timeout=0.5).judge_many([ITEM])
        elapsed = time.monotonic() - start
        requests = list(srv.requests)
    assert verdict.letter == "C" and len(requests) == 5
    assert requests[1].at - requests[0].at >= 0.45  # Retry-After honoured
    assert elapsed < 3.0  # the 3 s answer was abandoned at the 0.5 s timeout


def test_garbage_is_invalid_and_persistent_failure_is_an_error(caplog):
    caplog.set_level(logging.DEBUG)
    with gemini_server(lambda p: "no idea") as srv:
        [garbage] = judge(srv).judge_many([ITEM])
        srv.script(
            GEMINI_GENERATE, *[Reply(503, {"error": {"code": 503, "message": "down", "status": "UNAVAILABLE"}})] * 2
        )
        [failed] = judge(srv, max_attempts=2).judge_many([ITEM])
        srv.script(
            GEMINI_GENERATE, Reply(403, {"error": {"code": 403, "message": "denied", "status": "PERMISSION_DENIED"}})
        )
        [denied] = judge(srv).judge_many([ITEM])
        assert len(srv.requests) == 4  # 1 + 2 retried + 1 not retried
    assert garbage.letter == "invalid" and failed.letter == "error" and denied.letter == "error"
    assert "503" in failed.detail and "403" in denied.detail
    assert FAKE_KEY not in caplog.text + repr([garbage, failed, denied])
