"""The `openai` judge backend with the real openai client against a loopback fake server."""

from __future__ import annotations

import logging
import re
import time

import pytest
from fake_servers import OPENAI_CHAT, Reply, openai_chat_body, openai_prompt, openai_server

from covip.judges.binary import BinaryQuestion
from covip.judges.protocol import MCQA
from covip.judges.registry import make_binary_judge, make_judge

FAKE_KEY = "sk-covip-FAKE-KEY-4c1d9e"
OPTIONS = {"A": "last summer", "B": "last winter", "C": "yesterday", "D": "The answer cannot be determined"}


@pytest.fixture(autouse=True)
def fake_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)


def items(n: int = 1) -> list[MCQA]:
    return [MCQA(f"s{i}/c0.Q1", f"Seth ran in the park last summer (photo {i}).", "When?", OPTIONS) for i in range(n)]


def judge(srv, **options):
    defaults = {"model": "judge-m", "cache": "off", "retry_base_delay": 0.001}  # the key comes from OPENAI_API_KEY
    return make_judge("openai", base_url=f"{srv.url}/v1", **{**defaults, **options})


def boxed(letter: str) -> str:
    return f"The description says so.\nAnswer: \\boxed{{{letter}}}"


def test_strict_payload_and_answer():
    with openai_server(lambda p: boxed("A")) as srv:
        j = judge(srv)
        [verdict] = j.judge_many(items())
        [request] = srv.requests
    assert verdict.letter == "A" and verdict.judge_id == j.spec.judge_id
    body = request.json
    assert body["model"] == "judge-m"
    assert [m["role"] for m in body["messages"]] == ["user"]
    assert "[Description]\nSeth ran in the park last summer (photo 0)." in body["messages"][0]["content"]
    assert body["temperature"] == 0.0 and body["seed"] == 0 and body["max_tokens"] == 512
    assert "top_k" not in body and "structured_outputs" not in body
    assert request.headers["authorization"] == f"Bearer {FAKE_KEY}"
    assert j.spec.preset == "strict" and j.spec.prompt_hash and j.spec.decoding["temperature"] == 0.0


def test_reasoning_models_get_max_completion_tokens_and_no_temperature():
    with openai_server(lambda p: boxed("A")) as srv:
        [verdict] = judge(srv, model="gpt-5-mini", top_p=0.9).judge_many(items())
        body = srv.requests[0].json
    assert verdict.letter == "A" and body["model"] == "gpt-5-mini"
    assert body["max_completion_tokens"] == 512 and body["seed"] == 0  # OpenAI rejects sampling parameters here
    assert not {"max_tokens", "temperature", "top_p"} & set(body)


def test_cache_keeps_servers_apart(tmp_path):
    cache = str(tmp_path / "cache.sqlite")
    with openai_server(lambda p: boxed("A")) as first, openai_server(lambda p: boxed("B")) as second:
        assert [v.letter for v in judge(first, cache=cache).judge_many(items(2))] == ["A", "A"]
        # the same model name on another server may be other weights: asked again, not read from the cache
        assert [v.letter for v in judge(second, cache=cache).judge_many(items(2))] == ["B", "B"]
        again = judge(first, cache=cache)
        assert [v.letter for v in again.judge_many(items(2))] == ["A", "A"] and again.stats.calls == 0
    assert len(first.requests) == len(second.requests) == 2


def test_paper_preset_sends_the_reference_sampling_and_reads_unparsed_as_d():
    with openai_server(lambda p: "I like turtles.") as srv:
        [verdict] = judge(srv, preset="paper").judge_many(items())
        body = srv.requests[0].json
    assert (body["temperature"], body["top_p"], body["top_k"], body["min_p"]) == (0.7, 0.8, 20, 0.0)
    assert verdict.letter == "D" and "taken as D" in verdict.detail


def test_garbage_answer_is_invalid_in_strict():
    with openai_server(lambda p: "I like turtles.") as srv:
        [verdict] = judge(srv).judge_many(items())
    assert verdict.letter == "invalid" and "turtles" in verdict.detail


@pytest.mark.parametrize(
    ("constrain", "field", "value"),
    [
        (True, "structured_outputs", {"choice": ["A", "B", "C", "D"]}),
        ("guided_choice", "guided_choice", ["A", "B", "C", "D"]),
    ],
)
def test_constrained_final_letter(constrain, field, value):
    with openai_server(lambda p: "C") as srv:
        [verdict] = judge(srv, constrain=constrain).judge_many(items())
        body = srv.requests[0].json
    assert body[field] == value and verdict.letter == "C"


def test_429_retry_after_is_honoured():
    with openai_server(lambda p: boxed("B")) as srv:
        srv.script(OPENAI_CHAT, Reply(429, {"error": {"message": "rate limited"}}, {"Retry-After": "0.6"}))
        [verdict] = judge(srv).judge_many(items())
        first, second = srv.requests
    assert verdict.letter == "B"
    assert second.at - first.at >= 0.55  # waited as told, although the back-off base is 1 ms


def test_500_then_success_and_persistent_500_is_an_error_verdict():
    with openai_server(lambda p: boxed("A")) as srv:
        srv.script(OPENAI_CHAT, Reply(500, {"error": {"message": "boom"}}), Reply(503, {"error": {"message": "busy"}}))
        [ok] = judge(srv).judge_many(items())
        assert ok.letter == "A" and len(srv.requests) == 3
    with openai_server(lambda p: boxed("A")) as srv:
        srv.script(OPENAI_CHAT, *[Reply(500, {"error": {"message": "boom"}})] * 3)
        [failed] = judge(srv, max_attempts=3).judge_many(items())
        assert failed.letter == "error" and "InternalServerError" in failed.detail and len(srv.requests) == 3


def test_client_errors_are_not_retried():
    with openai_server(lambda p: boxed("A")) as srv:
        srv.script(OPENAI_CHAT, Reply(400, {"error": {"message": "bad request"}}))
        [verdict] = judge(srv).judge_many(items())
        assert verdict.letter == "error" and "BadRequestError" in verdict.detail and len(srv.requests) == 1


def test_timeout_is_passed_to_the_client_and_retried():
    with openai_server(lambda p: boxed("C")) as srv:
        srv.script(OPENAI_CHAT, Reply(body=openai_chat_body(boxed("A")), delay=3.0))
        start = time.monotonic()
        [verdict] = judge(srv, timeout=0.5).judge_many(items())
        elapsed = time.monotonic() - start
    assert verdict.letter == "C"  # the slow first answer was abandoned, the retry answered
    assert elapsed < 2.5


def test_persistent_timeout_is_an_error_verdict():
    with openai_server(lambda p: boxed("C"), delay=2.0) as srv:
        [verdict] = judge(srv, timeout=0.3, max_attempts=2).judge_many(items())
    assert verdict.letter == "error" and "Timeout" in verdict.detail


def test_malformed_json_is_retried_then_an_error():
    with openai_server(lambda p: boxed("B")) as srv:
        srv.script(OPENAI_CHAT, Reply(200, "{not json"))
        [verdict] = judge(srv).judge_many(items())
        assert verdict.letter == "B" and len(srv.requests) == 2
    with openai_server(lambda p: boxed("B")) as srv:
        srv.script(OPENAI_CHAT, *[Reply(200, b"\x00garbage")] * 2)
        [verdict] = judge(srv, max_attempts=2).judge_many(items())
        assert verdict.letter == "error"


def test_empty_answer_is_an_error_not_a_letter():
    with openai_server(lambda p: boxed("B")) as srv:
        srv.script(OPENAI_CHAT, Reply(body=openai_chat_body(None)))
        [verdict] = judge(srv).judge_many(items())
    assert verdict.letter == "error" and "EmptyAnswer" in verdict.detail


def test_concurrency_is_bounded_and_used():
    with openai_server(lambda p: boxed("A"), delay=0.15) as srv:
        verdicts = judge(srv, concurrency=4).judge_many(items(16))
        assert [v.letter for v in verdicts] == ["A"] * 16
        assert srv.max_in_flight == 4


def test_shuffle_maps_the_answer_back_to_the_original_letter():
    def pick_last_winter(prompt: str) -> str:
        shown = re.search(r"^([ABC])\. last winter$", prompt, re.MULTILINE).group(1)
        return boxed(shown)

    with openai_server(pick_last_winter) as srv:
        verdicts = judge(srv, shuffle_seed=11).judge_many(items(12))
        shown = {re.search(r"^([ABC])\. last winter$", openai_prompt(r), re.MULTILINE).group(1) for r in srv.requests}
    assert [v.letter for v in verdicts] == ["B"] * 12  # always the original letter of "last winter"
    assert len(shown) > 1  # although it was shown under several letters


def test_cache_second_run_makes_no_calls_and_failures_are_not_cached(tmp_path):
    cache = str(tmp_path / "cache.sqlite")
    with openai_server(lambda p: boxed("A")) as srv:
        srv.script(OPENAI_CHAT, Reply(400, {"error": {"message": "no"}}))
        first = judge(srv, cache=cache, concurrency=1).judge_many(items(5))
        assert sorted(v.letter for v in first) == ["A"] * 4 + ["error"]
        assert len(srv.requests) == 5
        second = judge(srv, cache=cache).judge_many(items(5))  # a new judge: only the failed question is asked
        assert [v.letter for v in second] == ["A"] * 5 and len(srv.requests) == 6
        third_judge = judge(srv, cache=cache)
        assert [v.letter for v in third_judge.judge_many(items(5))] == ["A"] * 5
        assert len(srv.requests) == 6 and third_judge.stats.calls == 0 and third_judge.stats.cached == 5
        other = judge(srv, cache=cache, preset="paper")  # other decoding: other cache entries
        other.judge_many(items(5))
        assert len(srv.requests) == 11


def test_api_key_never_reaches_verdicts_or_logs(caplog, capsys):
    caplog.set_level(logging.DEBUG)
    with openai_server(lambda p: boxed("A")) as srv:
        srv.script(OPENAI_CHAT, Reply(401, {"error": {"message": f"invalid key {FAKE_KEY}"}}))
        verdicts = judge(srv, concurrency=1).judge_many(items(2))
    assert sorted(v.letter for v in verdicts) == ["A", "error"]
    captured = capsys.readouterr()
    everything = caplog.text + captured.out + captured.err + repr(verdicts)
    assert "AuthenticationError" in everything and "<redacted>" in everything
    assert FAKE_KEY not in everything


def test_binary_judge_reads_whole_words():
    answers = {"a": "It matches.\nCorrect", "b": "Incorrect", "c": "Verdict: Wrong"}

    def answer(prompt: str) -> str:
        return answers[re.search(r"\[Response\]\n(\w)", prompt).group(1)]

    with openai_server(answer) as srv:
        bj = make_binary_judge("openai", model="m", base_url=f"{srv.url}/v1", cache="off")
        verdicts = bj.judge_binary_many([BinaryQuestion(q, f"{q} response", "played piano") for q in "abc"])
        srv.script(OPENAI_CHAT, Reply(400, {"error": {"message": "no"}}))
        [failed] = bj.judge_binary_many([BinaryQuestion("d", "d response", "x")])
        paper = make_binary_judge("openai", model="m", base_url=f"{srv.url}/v1", cache="off", preset="paper")
        [unparsed] = paper.judge_binary_many([BinaryQuestion("b", "b response", "played piano")])
    assert [v.label for v in verdicts] == ["correct", "wrong", "wrong"]  # "Incorrect" is wrong, never correct
    assert failed.label == "error" and unparsed.label == "wrong"
    assert "[Fact]\nplayed piano" in openai_prompt(srv.requests[0])
