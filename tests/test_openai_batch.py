"""Batch mode of the `openai` judge and `covip_gpt`: the real openai client against the loopback fake Batch API.

Same request bodies, verdicts, captions and cache as the online path; failed and expired requests are errors that a
rerun retries; a run killed while waiting resumes polling the batch it submitted instead of paying for another.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_servers import (
    OPENAI_BATCH,
    OPENAI_CHAT,
    FakeBatchAPI,
    FakeServer,
    Reply,
    body_prompt,
    openai_chat_body,
)
from lmms_runner import run_lmms_eval

from covip.judges.budget import BudgetExceeded
from covip.judges.protocol import MCQA
from covip.judges.registry import make_judge

FAKE_KEY = "sk-covip-FAKE-KEY-batch-5e1"
BIN = Path(sys.executable).parent
OPTIONS = {"A": "last summer", "B": "last winter", "C": "yesterday", "D": "The answer cannot be determined"}


@pytest.fixture(autouse=True)
def fake_key(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    monkeypatch.setenv("COVIP_HOME", str(tmp_path / "home"))


def answer(prompt: str) -> str:
    """A deterministic, varied judge answer."""
    digest = hashlib.sha256(prompt.encode()).digest()
    return "I am not sure." if digest[1] % 8 == 0 else f"Answer: \\boxed{{{'ABCD'[digest[0] % 4]}}}"


def reply_to(body: dict) -> Reply:
    """The fake's answer to one chat-completion body (the model's caption, or a judge's letter)."""
    text = "A photo of a scene." if body["model"] == "gpt-4o" else answer(body_prompt(body))
    chat = openai_chat_body(text, body["model"])
    chat["usage"] = {"prompt_tokens": 200, "completion_tokens": 10, "total_tokens": 210}
    return Reply(body=chat)


def server() -> tuple[FakeServer, FakeBatchAPI]:
    srv = FakeServer().route(OPENAI_CHAT, lambda r: reply_to(r.json))
    return srv, FakeBatchAPI(srv, reply_to)


def items(n: int) -> list[MCQA]:
    return [MCQA(f"s{i}/c0.Q1", f"Seth ran in the park last summer (photo {i}).", "When?", OPTIONS) for i in range(n)]


def judge(srv: FakeServer, cache: Path, **options):
    defaults = {"model": "gpt-4o-mini", "cache": str(cache), "retry_base_delay": 0.001, "batch_poll_interval": 0.01}
    return make_judge("openai", base_url=f"{srv.url}/v1", **{**defaults, **options})


def chat_bodies(srv: FakeServer) -> list[str]:
    return sorted(json.dumps(r.json, sort_keys=True) for r in srv.requests if r.path.endswith("/chat/completions"))


def test_judge_batch_gives_the_online_verdicts_bodies_and_cache(tmp_path, capsys):
    srv, api = server()
    with srv:
        online = judge(srv, tmp_path / "online.sqlite").judge_many(items(12))
        online_bodies = chat_bodies(srv)
        batched = judge(srv, tmp_path / "batch.sqlite", batch=True)
        verdicts = batched.judge_many(items(12))
        assert chat_bodies(srv) == online_bodies  # nothing more went to the online endpoint
        again = judge(srv, tmp_path / "batch.sqlite")  # online, on the cache the batch filled
        assert again.judge_many(items(12)) == verdicts and again.stats.calls == 0
    assert verdicts == online and {v.letter for v in verdicts} > {"invalid"}
    assert sorted(json.dumps(b, sort_keys=True) for b in api.bodies) == online_bodies  # the very same requests
    assert batched.spec == judge(srv, tmp_path / "x.sqlite").spec  # batch mode is not part of the judge's identity
    paths = [(r.method, r.path) for r in srv.requests if "/chat/" not in r.path]
    assert (
        paths[:2] == [("POST", "/v1/files"), ("POST", "/v1/batches")] and ("GET", "/v1/files/file-3/content") in paths
    )
    err = capsys.readouterr().err
    assert "OpenAI Batch API at half price" in err and "submitted OpenAI batch batch_2 (12 requests" in err
    assert "OpenAI batch: 100%" in err  # the progress bar


def test_failed_and_expired_batch_requests_are_errors_that_a_rerun_retries(tmp_path):
    srv, api = server()
    refused = items(6)[0]

    def respond(body: dict) -> Reply:
        if "(photo 0)" in body_prompt(body):
            return Reply(500, {"error": {"message": "fake: server error"}})
        return reply_to(body)

    api.respond = respond
    api.end = ("expired", 4)  # the batch ends with only its first 4 requests answered
    # the first poll is rate-limited: retried (else judge_many below would raise), never the end of the wait
    srv.script(OPENAI_BATCH, Reply(429, {"error": {"message": "slow down"}}, {"retry-after": "0"}), method="GET")
    with srv:
        first = judge(srv, tmp_path / "c.sqlite", batch=True).judge_many(items(6))
        errors = [v for v in first if v.letter == "error"]
        assert len(errors) == 3 and any(v.qid == refused.qid for v in errors)  # 1 error line + 2 expired
        assert all("BatchRequestFailed" in v.detail for v in errors)

        api.respond = reply_to
        second = judge(srv, tmp_path / "c.sqlite", batch=True)
        assert all(v.letter != "error" for v in second.judge_many(items(6)))
        assert second.stats.cached == 3 and second.stats.calls == 3  # only the unanswered were sent again
    assert len(api.bodies) == 9


def test_a_failed_batch_and_a_batch_budget(tmp_path):
    srv, api = server()
    api.end = ("failed", 0)
    with srv:
        verdicts = judge(srv, tmp_path / "c.sqlite", batch=True).judge_many(items(3))
        assert {v.letter for v in verdicts} == {"error"} and "invalid_request: fake: bad file" in verdicts[0].detail
        # a question reserves ~$0.00016 at half price; $0.0004 lets 2 of 5 into the batch
        with pytest.raises(BudgetExceeded, match=r"3 of 5 not sent"):
            judge(srv, tmp_path / "c.sqlite", batch=True, max_cost_usd=0.0004).judge_many(items(5))
    assert len(api.bodies) == 3 + 2


@pytest.mark.integration
def test_judge_batch_resumes_polling_after_a_kill(small_benchmark, tmp_path):
    run = run_lmms_eval(
        ["--model", "covip_oracle", "--tasks", "covip_caption_1c"],
        small_benchmark,
        tmp_path / "run",
        COVIP_HOME=str(tmp_path),
    )
    assert run.code == 0, run.output[-3000:]
    env = {**os.environ, "OPENAI_API_KEY": FAKE_KEY, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    srv, api = server()
    with srv:
        base = ["--judge", "openai", "--option", "model=gpt-4o-mini", "--option", f"base_url={srv.url}/v1"]
        batch = [*base, "--option", "batch=true", "--option", "batch_poll_interval=0.05", "--option"]
        batch.append(f"cache={tmp_path / 'batch.sqlite'}")
        api.hold = True  # the batch stays in progress: the judge keeps polling
        command = [str(BIN / "covip-judge"), "score", str(tmp_path / "run"), *batch, "--out", str(tmp_path / "b")]
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while not any(r.path.startswith("/v1/batches/") for r in srv.requests) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        api.hold = False
        resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert "resuming 1 OpenAI batch(es) submitted before: batch_2" in resumed.stderr
        posts = [r.path for r in srv.requests if r.method == "POST"]
        online = [*base, "--option", f"cache={tmp_path / 'online.sqlite'}", "--out", str(tmp_path / "o")]
        straight = subprocess.run([str(BIN / "covip-judge"), "score", str(tmp_path / "run"), *online], env=env)
        assert straight.returncode == 0
    assert posts == ["/v1/files", "/v1/batches"]  # one batch, paid once, although the first process was killed
    metrics = [json.loads((tmp_path / d / "metrics.json").read_text())["runs"][0]["tasks"] for d in ("b", "o")]
    assert metrics[0] == metrics[1] and metrics[0]["covip_caption_1c"]["judge_error"] == 0


@pytest.mark.integration
def test_covip_gpt_batch_run_equals_the_online_run(small_benchmark, tmp_path):
    def lmms_eval(srv: FakeServer, home: str, out: str, *extra: str):
        args = ",".join([f"model=gpt-4o,base_url={srv.url}/v1,max_retries=0", *extra])
        return run_lmms_eval(
            ["--model", "covip_gpt", "--model_args", args, "--tasks", "covip_caption_1c,covip_lar_cag"],
            small_benchmark,
            tmp_path / out,
            COVIP_HOME=str(tmp_path / home),
        )

    def records(run) -> list[list[dict]]:
        return [[line["covip_record"] for line in run.samples(task)] for task in ("covip_caption_1c", "covip_lar_cag")]

    srv, api = server()
    with srv:
        online = lmms_eval(srv, "online", "online")
        online_bodies = chat_bodies(srv)
        batched = lmms_eval(srv, "batch", "batch", "batch=true", "batch_poll_interval=0.01")
        assert chat_bodies(srv) == online_bodies  # the batch run sent nothing online
        assert online.code == 0 and batched.code == 0, batched.output[-3000:]
        again = lmms_eval(srv, "batch", "again")  # online now, over the answers the batches left in the cache
        assert again.code == 0 and chat_bodies(srv) == online_bodies
    assert sorted(json.dumps(b, sort_keys=True) for b in api.bodies) == online_bodies
    # one batch per generation step: the captioning requests, then CAG's captions, then its answers
    assert len([r for r in srv.requests if r.path == "/v1/batches"]) == 3
    assert records(online) == records(batched) == records(again)
    assert "covip_gpt gpt-4o: OpenAI batch" in batched.output and "OpenAI Batch API at half price" in batched.output
