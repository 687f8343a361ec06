"""API runs inside a budget, through the real `lmms_eval` command and a loopback fake OpenAI server.

The estimate is logged before anything is sent and counts what is then sent; `max_cost_usd` (model argument, and
judge option) stops a run before it is exceeded, with exit status 1 and no results file; the same command run again
(`--use_cache`) continues where it stopped and never sends an answered request twice.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from fake_servers import OPENAI_CHAT, FakeServer, Reply, openai_chat_body
from lmms_runner import LmmsRun, run_lmms_eval

from covip.judges.budget import MESSAGE_TOKENS

pytestmark = pytest.mark.integration
TASKS = "covip_caption_1c,covip_caption_2c"  # 4 samples: 4 model requests, 18 + 36 judge questions
CAPTION = "A photo of a scene."
MODEL_USAGE = {"prompt_tokens": 1000, "completion_tokens": 50}  # $0.0030 at gpt-4o's list price
JUDGE_USAGE = {"prompt_tokens": 200, "completion_tokens": 10}  # $0.000036 at gpt-4o-mini's


def respond(request) -> Reply:
    """The model (gpt-4o) captions; the judge (gpt-4o-mini) answers D."""
    model = request.json["model"]
    body = openai_chat_body(CAPTION if model == "gpt-4o" else "Answer: \\boxed{D}", model)
    body["usage"] = {**(MODEL_USAGE if model == "gpt-4o" else JUDGE_USAGE)}
    return Reply(body=body)


def lmms_eval(
    server: FakeServer, data: Path, out: Path, model_args: str, judge: dict | None = None, model: str = "covip_gpt"
) -> LmmsRun:
    """The same command every time, with lmms-eval's response cache on; `judge`: the gpt-4o-mini judge's options."""
    args = f"model=gpt-4o,base_url={server.url}/v1,max_retries=0,max_concurrency=1,detail=low,{model_args}"
    options = {"model": "gpt-4o-mini", "base_url": f"{server.url}/v1", "concurrency": 1, **(judge or {})}
    return run_lmms_eval(
        ["--model", model, *(["--model_args", args.rstrip(",")] if model == "covip_gpt" else []), "--tasks", TASKS]
        + ["--use_cache", str(out / "lmms_cache")],
        data,
        out / "run",
        COVIP_HOME=str(out / "home"),
        OPENAI_API_KEY="sk-test-budget",
        COVIP_JUDGE=None if judge is None else "openai",
        COVIP_JUDGE_OPTIONS=None if judge is None else json.dumps(options),
    )


def bodies(server: FakeServer, model: str) -> list[str]:
    return [json.dumps(r.json, sort_keys=True) for r in server.requests if r.json["model"] == model]


def test_estimate_counts_the_requests_it_then_sends(small_benchmark, tmp_path):
    with FakeServer().route(OPENAI_CHAT, respond) as server:
        run = lmms_eval(server, small_benchmark, tmp_path, "", judge={"cache": "off"})
        sent = [r.json for r in server.requests if r.json["model"] == "gpt-4o"]
    assert run.code == 0, run.output[-3000:]
    found = re.search(
        r"model: 4 requests, 4 calls \(0 answered before.*?; 4 to send: ~([\d,]+) input tokens .*?"
        r"at most ([\d,]+) output tokens .*?: at most \$([\d.]+)",
        run.output,
    )
    assert found, run.output[-3000:]
    tokens_in, tokens_out, cost = int(found[1].replace(",", "")), int(found[2].replace(",", "")), float(found[3])
    # counted again from the bodies the server received: 4 characters a token, 85 tokens a low-detail image
    counted = 0
    for body in sent:
        for message in body["messages"]:
            parts = message["content"] if isinstance(message["content"], list) else [{"text": message["content"]}]
            counted += MESSAGE_TOKENS + sum(85 if "image_url" in p else math.ceil(len(p["text"]) / 4) for p in parts)
    assert tokens_in == counted and tokens_out == 4 * 512  # the task's max_new_tokens, every call
    assert cost == pytest.approx((counted * 2.5 + tokens_out * 10) / 1e6, abs=1e-4)
    judge = re.search(r"CapEval-QAs judge openai:gpt-4o-mini:\S+ \(COVIP_JUDGE\): (\d+) questions", run.output)
    assert judge and int(judge[1]) == 18 + 36  # 3 and 6 concepts of 3 questions, 2 samples each
    assert "list prices of 2026-" in run.output


def test_model_budget_stops_before_it_is_exceeded_and_the_same_command_continues(small_benchmark, tmp_path):
    # A request reserves its prompt (~1-2k tokens) and 512 output tokens (~$0.008); the fake bills $0.0030 each.
    with FakeServer().route(OPENAI_CHAT, respond) as server:
        stopped = lmms_eval(server, small_benchmark, tmp_path, "max_cost_usd=0.015")
        paid = len(bodies(server, "gpt-4o"))
        assert stopped.code == 1
        assert stopped.results_files() == []  # no results file presents a partial run
        assert 0 < paid < 4 and f"{4 - paid} of 4 not sent" in stopped.output
        spent = f"spent ${paid * 0.003:.4f} on {paid} call(s)"
        assert f"stopped before exceeding max_cost_usd=$0.015: {spent}" in stopped.output
        assert "api_answers.sqlite" in stopped.output

        resumed = lmms_eval(server, small_benchmark, tmp_path, "max_cost_usd=0.015")
        assert resumed.code == 0, resumed.output[-3000:]
        assert f"{paid} answered before, from the answer cache" in resumed.output
        samples = [line["covip_record"] for task in TASKS.split(",") for line in resumed.samples(task)]
        again = lmms_eval(server, small_benchmark, tmp_path, "max_cost_usd=0.015")  # lmms-eval's cache: no calls
        assert again.code == 0, again.output[-3000:]
        every = bodies(server, "gpt-4o")
    assert len(every) == 4 and len(set(every)) == 4  # each request paid for exactly once over the three runs
    assert len(samples) == 4 and {r["caption"] for r in samples} == {CAPTION}


def test_judge_budget_stops_before_it_is_exceeded_and_the_same_command_continues(small_benchmark, tmp_path):
    # The oracle baseline (free), judged by gpt-4o-mini: a question reserves ~$0.00035 (its prompt and 512 output
    # tokens) and is billed $0.000036, so $0.0006 lets a few questions of the 54 through.
    with FakeServer().route(OPENAI_CHAT, respond) as server:
        stopped = lmms_eval(server, small_benchmark, tmp_path, "", {"max_cost_usd": 0.0006}, "covip_oracle")
        asked = len(server.requests)
        assert stopped.code == 1 and stopped.results_files() == []
        assert "stopped before exceeding max_cost_usd=$0.0006" in stopped.output
        assert "judge_cache.sqlite" in stopped.output and 0 < asked < 18
        resumed = lmms_eval(server, small_benchmark, tmp_path, "", {"max_cost_usd": 1}, "covip_oracle")
        every = bodies(server, "gpt-4o-mini")
    assert resumed.code == 0, resumed.output[-3000:]
    assert "answered from the cache" in resumed.output
    assert len(every) == 54 and len(set(every)) == 54  # each question paid for exactly once


def test_a_budget_needs_a_list_price(small_benchmark, tmp_path):
    with FakeServer().route(OPENAI_CHAT, respond) as server:
        run = run_lmms_eval(
            ["--model", "covip_gpt", "--model_args", f"model=my-local-model,base_url={server.url}/v1,max_cost_usd=1"]
            + ["--tasks", "covip_caption_1c"],
            small_benchmark,
            tmp_path / "run",
            COVIP_HOME=str(tmp_path),
        )
        assert not server.requests
    assert run.code == 1 and "'my-local-model' has no list price" in run.output
