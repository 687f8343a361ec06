"""`covip_gpt` through the real `lmms_eval` command against a loopback fake OpenAI server.

What a run does with a model answer that never came: a request that still fails stops the run,
and a safety block (or a failure allowed with `allow_errors`) is counted and scored wrong,
never judged as an empty caption (which would leak nothing and pass every negative question).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_servers import OPENAI_CHAT, FakeServer, Reply, openai_chat_body
from lmms_runner import LmmsRun, run_lmms_eval

pytestmark = pytest.mark.integration
TASK = "covip_caption_1c"
CAPTION = "A photo of a scene."


def lmms_eval(server: FakeServer, data: Path, out: Path, *model_args: str) -> LmmsRun:
    args = ",".join(["model=gpt-4o", f"base_url={server.url}/v1", "max_retries=0", *model_args])
    return run_lmms_eval(
        ["--model", "covip_gpt", "--model_args", args, "--tasks", TASK],
        data,
        out / "run",
        COVIP_HOME=str(out / "home"),
        COVIP_JUDGE=None,  # the offline rule judge
        COVIP_JUDGE_OPTIONS=None,
    )


def run_files(run: LmmsRun) -> tuple[dict, list[dict]]:
    return run.results, [line["covip_record"] for line in run.samples(TASK)]


def server_answering(*first: Reply) -> FakeServer:
    body = openai_chat_body(CAPTION)
    body["usage"] = {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}
    server = FakeServer().route(OPENAI_CHAT, lambda r: Reply(body=body))
    return server.script(OPENAI_CHAT, *first) if first else server


def test_failed_requests_fail_the_run(small_benchmark, tmp_path):
    with FakeServer().route(OPENAI_CHAT, lambda r: Reply(500, {"error": {"message": "down"}})) as server:
        run = lmms_eval(server, small_benchmark, tmp_path)
    assert run.code == 1
    assert "requests failed" in run.output and "allow_errors=true" in run.output


def test_blocked_answer_is_counted_and_scored_wrong_not_judged(small_benchmark, tmp_path):
    refused = openai_chat_body(None)
    refused["choices"][0]["finish_reason"] = "content_filter"
    with server_answering(Reply(body=refused)) as server:
        run = lmms_eval(server, small_benchmark, tmp_path, "allow_errors=true", "max_concurrency=1")
        asked = len(server.requests)
    assert run.code == 0, run.output[-3000:]
    results, records = run_files(run)
    scores = results["results"][TASK]
    assert asked == len(records) == 2 and scores["model_blocked,none"] == 1
    blocked, answered = sorted(records, key=lambda r: r["model_blocked"] is None)
    assert blocked["model_blocked"] == "content_filter" and blocked["caption"] == ""
    assert {v["pred"] for v in blocked["verdicts"]} == {"blocked"}  # not judged: no "D" for its negatives
    assert answered["model_blocked"] is None and answered["caption"] == CAPTION
    positives = {f"c{j}." for j in answered["positives"]}
    negatives = [v for v in answered["verdicts"] if not v["qid"].startswith(tuple(positives))]
    assert {v["pred"] for v in negatives} == {"D"}  # the generic caption leaks nothing
    # Acc-: the answered sample's negatives pass, the blocked sample's count wrong; no question left out
    assert scores["acc_neg,none"] == pytest.approx(100 * len(negatives) / (2 * len(negatives)))
    assert scores["acc_pos,none"] == 0.0 and scores["judge_error,none"] == 0
    usage = results["usage"]
    assert list(usage["by_task"]) == [TASK] and usage["by_task"][TASK] == usage["total"]  # attributed to the task
    assert usage["total"]["input_tokens"] == 100 + 1  # the answer's and the refusal's


def test_allowed_failures_are_counted_and_scored_wrong(small_benchmark, tmp_path):
    with FakeServer().route(OPENAI_CHAT, lambda r: Reply(500, {"error": {"message": "down"}})) as server:
        run = lmms_eval(server, small_benchmark, tmp_path, "allow_errors=true")
    assert run.code == 0, run.output[-3000:]
    results, records = run_files(run)
    scores = results["results"][TASK]
    assert scores["model_blocked,none"] == 2 and scores["acc_neg,none"] == 0.0 and scores["acc_pos,none"] == 0.0
    assert all(r["model_blocked"].startswith("error: InternalServerError") for r in records)
