"""`covip-judge score` over a real logged lmms_eval run, and judge failures in lmms_eval itself.

`covip-judge` runs in subprocesses (as users run it; one is killed mid-run); `lmms_eval` runs in-process
(tests/lmms_runner.py). Remote judges are the real openai client against a loopback fake server in this process.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from fake_servers import OPENAI_CHAT, Reply, openai_chat_body, openai_prompt, openai_server
from lmms_runner import run_lmms_eval

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent
FAKE_KEY = "sk-covip-FAKE-KEY-cli-93f0aa"
TASKS = ("covip_caption_1c", "covip_caption_2c")


def env(tmp: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "COVIP_HOME": str(tmp / "home"),
        "OPENAI_API_KEY": FAKE_KEY,
        **extra,
    }


def answer(prompt: str) -> str:
    """A deterministic, varied judge: a letter from the prompt's hash, sometimes an unreadable answer."""
    digest = hashlib.sha256(prompt.encode()).digest()
    return "I am not sure." if digest[1] % 8 == 0 else f"Answer: \\boxed{{{'ABCD'[digest[0] % 4]}}}"


@pytest.fixture(scope="module")
def logged_run(small_benchmark, tmp_path_factory) -> Path:
    """A real `lmms_eval --log_samples` run of the oracle baseline on two buckets."""
    out = tmp_path_factory.mktemp("logged")
    run = run_lmms_eval(
        ["--model", "covip_oracle", "--tasks", ",".join(TASKS)], small_benchmark, out / "run", COVIP_HOME=str(out)
    )
    assert run.code == 0, run.output[-3000:]
    return out / "run"


def covip_judge(run: Path, tmp: Path, *args: str, **extra_env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "covip-judge"), "score", str(run), *args],
        capture_output=True,
        text=True,
        env=env(tmp, **extra_env),
        timeout=300,
    )


def openai_args(srv, cache: Path, *more: str) -> list[str]:
    return ["--judge", "openai", "--option", "model=judge-m", "--option", f"base_url={srv.url}/v1"] + [
        "--option",
        f"cache={cache}",
        "--option",
        "retry_base_delay=0.01",
        *more,
    ]


def snapshot(run: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in run.rglob("*") if p.is_file()}


def task_metrics(out: Path) -> dict:
    report = json.loads((out / "metrics.json").read_text())
    return {task: m for run in report["runs"] for task, m in run["tasks"].items()}


def test_rule_rejudging_reproduces_the_runs_own_metrics(logged_run, tmp_path):
    before = snapshot(logged_run)
    out = tmp_path / "rule"
    proc = covip_judge(logged_run, tmp_path, "--judge", "rule", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    [results_file] = logged_run.rglob("*_results.json")
    original = json.loads(results_file.read_text())["results"]
    metrics = task_metrics(out)
    assert set(metrics) == set(TASKS)
    for task in TASKS:
        for name in ("acc_pos", "acc_neg", "acc_pos_macro", "acc_neg_macro", "recognition_f1", "judge_invalid"):
            assert metrics[task][name] == pytest.approx(original[task][f"{name},none"]), (task, name)
        assert metrics[task]["judge_error"] == 0 == original[task]["judge_error,none"]
        assert sum(metrics[task]["letters"].values()) == metrics[task]["n_questions"]
    report = json.loads((out / "metrics.json").read_text())
    assert report["judge"]["backend"] == "rule" and report["judge"]["id"].startswith("rule:")
    assert snapshot(logged_run) == before  # the original run is untouched


def test_openai_rejudge_is_cached_and_never_leaks_the_key(logged_run, tmp_path):
    before = snapshot(logged_run)
    with openai_server(answer) as srv:
        first = covip_judge(logged_run, tmp_path, *openai_args(srv, tmp_path / "c.sqlite"))
        asked = len(srv.requests)
        second = covip_judge(logged_run, tmp_path, *openai_args(srv, tmp_path / "c.sqlite"))
        assert len(srv.requests) == asked  # the second run made zero judge calls
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    [out] = (logged_run / "covip-judge").iterdir()
    report = json.loads((out / "metrics.json").read_text())
    questions = sum(m["n_questions"] for m in task_metrics(out).values())
    assert asked == questions == report["calls"]["questions"] and report["calls"]["calls"] == 0
    judge = report["judge"]
    assert (judge["backend"], judge["model"], judge["preset"]) == ("openai", "judge-m", "strict")
    assert judge["decoding"]["temperature"] == 0.0 and judge["prompt_hash"]
    assert sum(m["judge_invalid"] for m in task_metrics(out).values()) > 0  # unreadable answers are counted
    samples = list(out.glob("*_samples_*.jsonl"))
    row = json.loads(samples[0].read_text().splitlines()[0])["covip_record"]
    assert row["judge"]["id"] == judge["id"] and row["verdicts"][0]["pred"] in ("A", "B", "C", "D", "invalid")
    # the fake key is in no file written, and in no output
    written = [p for p in (logged_run / "covip-judge").rglob("*") if p.is_file()] + list(tmp_path.rglob("*.sqlite*"))
    texts = [p.read_bytes() for p in written] + [(x.stdout + x.stderr).encode() for x in (first, second)]
    assert written and not any(FAKE_KEY.encode() in t for t in texts)
    assert {k: v for k, v in snapshot(logged_run).items() if "covip-judge" not in k} == before
    subprocess.run(["rm", "-rf", str(logged_run / "covip-judge")], check=True)


def test_killed_run_resumes_with_only_the_missing_calls(logged_run, tmp_path):
    hold_at = 10
    count = {"n": 0}

    def responder(request):
        count["n"] += 1
        reply = Reply(body=openai_chat_body(answer(openai_prompt(request))))
        reply.hold = count["n"] == hold_at + 1  # this request stays in flight until the process is killed
        return reply

    cache = tmp_path / "resume.sqlite"
    with openai_server(answer).route(OPENAI_CHAT, responder) as srv:
        srv.routes = srv.routes[1:]  # only the counting responder
        args = openai_args(srv, cache, "--option", "concurrency=1", "--out", str(tmp_path / "resumed"))
        proc = subprocess.Popen([str(BIN / "covip-judge"), "score", str(logged_run), *args], env=env(tmp_path))
        deadline = time.monotonic() + 120
        while len(srv.requests) <= hold_at and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert len(srv.requests) == hold_at + 1, "the judging process did not reach the held request"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        srv.release()
        assert not (tmp_path / "resumed" / "metrics.json").exists()
        resumed = covip_judge(logged_run, tmp_path, *args[:-2], "--out", str(tmp_path / "resumed"))
        assert resumed.returncode == 0, resumed.stderr
        answered = Counter(openai_prompt(r) for r in srv.answered())
        total_requests = len(srv.requests)
    with openai_server(answer) as fresh:
        straight = covip_judge(
            logged_run, tmp_path, *openai_args(fresh, tmp_path / "other.sqlite", "--out", str(tmp_path / "straight"))
        )
        assert straight.returncode == 0, straight.stderr
        every = Counter(openai_prompt(r) for r in fresh.requests)
    assert task_metrics(tmp_path / "resumed") == task_metrics(tmp_path / "straight")
    assert set(answered) == set(every) and set(answered.values()) == {1}  # each question answered exactly once
    assert total_requests == len(every) + 1  # the only repeat: the request in flight at the kill


def test_failed_judge_calls_fail_the_command_unless_allowed(logged_run, tmp_path):
    with openai_server(answer) as srv:
        srv.script(OPENAI_CHAT, *[Reply(500, {"error": {"message": "down"}})] * 3)
        args = openai_args(srv, tmp_path / "c.sqlite", "--option", "max_attempts=1", "--out", str(tmp_path / "o"))
        failed = covip_judge(logged_run, tmp_path, *args)
        assert failed.returncode == 1 and "3 judge call(s) failed" in failed.stderr
        assert sum(m["judge_error"] for m in task_metrics(tmp_path / "o").values()) == 3
        srv.script(OPENAI_CHAT, Reply(500, {"error": {"message": "down"}}))
        allowed = covip_judge(logged_run, tmp_path, *args, "--allow-errors")
        assert allowed.returncode == 0, allowed.stderr
        assert sum(m["judge_error"] for m in task_metrics(tmp_path / "o").values()) == 1  # the rest were retried


def test_bad_input_names_file_line_and_field(logged_run, tmp_path):
    empty = covip_judge(tmp_path, tmp_path, "--judge", "rule")
    assert empty.returncode == 2 and "no lmms-eval results" in empty.stderr
    broken = tmp_path / "broken"
    subprocess.run(["cp", "-r", str(logged_run), str(broken)], check=True)
    [samples] = broken.glob("*_samples_covip_caption_1c.jsonl")
    lines = samples.read_text().splitlines()
    row = json.loads(lines[1])
    del row["covip_record"]["caption"]
    samples.write_text("\n".join([lines[0], json.dumps(row), *lines[2:]]) + "\n")
    proc = covip_judge(broken, tmp_path, "--judge", "rule")
    assert proc.returncode == 2
    assert f"{samples.name}: line 2: covip_record.caption: Field required" in proc.stderr
    unknown = covip_judge(logged_run, tmp_path, "--judge", "openai", "--option", "model=m", "--option", "api_key=x")
    assert unknown.returncode == 2 and "unknown option(s) ['api_key']" in unknown.stderr


def test_help_documents_backends_and_the_vllm_server():
    proc = subprocess.run([str(BIN / "covip-judge"), "score", "--help"], capture_output=True, text=True, check=True)
    documented = ("openai", "gemini", "hf", "rule", "preset=strict|paper", "shuffle_seed", "cache=", "--allow-errors")
    for word in (*documented, "api_version=v1beta|v1", "--option preset=paper", "max_completion_tokens"):
        assert word in proc.stdout
    flat = " ".join(proc.stdout.replace("\\\n", " ").split())  # continuation lines joined
    serve = "vllm serve Qwen/Qwen3-30B-A3B-Instruct-2507-FP8 --host 127.0.0.1 --port 8000"
    assert serve + " --gpu-memory-utilization 0.8 --max-model-len 8192" in flat  # the reference's serving flags


def judged_run(args: list[str], data: Path, out: Path, tmp: Path, options: dict) -> object:
    """`lmms_eval ARGS` (in-process) judged by the openai backend with `options`."""
    return run_lmms_eval(
        args,
        data,
        out,
        COVIP_HOME=str(tmp / "home"),
        OPENAI_API_KEY=FAKE_KEY,
        COVIP_JUDGE="openai",
        COVIP_JUDGE_OPTIONS=json.dumps(options),
    )


def test_lmms_eval_run_fails_on_judge_errors_unless_allowed(small_benchmark, tmp_path):
    with openai_server(answer) as srv:
        srv.route(OPENAI_CHAT, lambda r: Reply(500, {"error": {"message": "down"}}))
        srv.routes = srv.routes[1:]
        options = {"model": "judge-m", "base_url": f"{srv.url}/v1", "max_attempts": 2, "retry_base_delay": 0.01}
        args = ["--model", "covip_oracle", "--tasks", "covip_caption_1c"]
        failing = judged_run(args, small_benchmark, tmp_path / "fail", tmp_path, options)
        allowed = judged_run(args, small_benchmark, tmp_path / "allowed", tmp_path, {**options, "allow_errors": True})
    assert failing.code == 1
    assert "judge call(s) failed after retries" in failing.output
    assert "task covip_caption_1c did not finish" in failing.output
    assert allowed.code == 0, allowed.output[-3000:]
    scores = allowed.results["results"]["covip_caption_1c"]
    assert scores["judge_error,none"] == 2 * 9 and scores["acc_pos,none"] == 0.0  # errors count as wrong
    [results] = (tmp_path / "allowed").rglob("*_results.json")
    for text in (failing.output, allowed.output, results.read_text()):
        assert FAKE_KEY not in text


def lar_answer(prompt: str) -> str:
    """A binary judge that says "Incorrect" for some responses: it must read as wrong, never as invalid."""
    digest = hashlib.sha256(prompt.encode()).digest()
    return "The response names the action.\nCorrect" if digest[0] % 2 else "It misses the action.\nIncorrect"


def test_lar_with_an_llm_judge_and_the_runs_mcqa_options(small_benchmark, tmp_path):
    with openai_server(lar_answer) as srv:
        options = {
            "model": "judge-m",
            "base_url": f"{srv.url}/v1",
            "shuffle_seed": 3,  # an MCQA-only option of the run's judge: the LAR judge leaves it out
            "max_attempts": 2,
            "retry_base_delay": 0.01,
            "cache": "off",
        }

        def lar_run(name: str, **more):
            args = ["--model", "covip_oracle", "--tasks", "covip_lar"]
            return judged_run(args, small_benchmark, tmp_path / name, tmp_path, {**options, **more})

        judged = lar_run("judged")
        answers = [lar_answer(openai_prompt(r)) for r in srv.requests]
        srv.route(OPENAI_CHAT, lambda r: Reply(500, {"error": {"message": "down"}}))
        srv.routes = srv.routes[1:]
        failing = lar_run("failing")
        allowed = lar_run("allowed", allow_errors=True)
    assert judged.code == 0, judged.output[-3000:]
    [results] = (tmp_path / "judged").rglob("*_results.json")
    scores = json.loads(results.read_text())["results"]["covip_lar"]
    [samples] = results.parent.glob("*_samples_covip_lar.jsonl")
    records = [json.loads(line)["covip_record"] for line in samples.read_text().splitlines()]
    correct = sum(a.endswith("\nCorrect") for a in answers)
    assert len(answers) == len(records) == 3 and 0 < correct < 3  # both kinds of answer were given
    assert sorted(r["verdict"] for r in records) == ["correct"] * correct + ["wrong"] * (3 - correct)
    assert scores["lar_acc,none"] == pytest.approx(100 * correct / 3) and scores["judge_invalid,none"] == 0
    assert records[0]["judge"]["backend"] == "openai" and "shuffle_seed" not in records[0]["judge"]["decoding"]
    assert failing.code == 1 and "judge call(s) failed after retries (first: sample" in failing.output
    assert allowed.code == 0, allowed.output[-3000:]
    [results] = (tmp_path / "allowed").rglob("*_results.json")
    scores = json.loads(results.read_text())["results"]["covip_lar"]
    assert scores["judge_error,none"] == 3 and scores["lar_acc,none"] == 0.0


def test_a_judge_budget_stops_cleanly_and_a_rerun_continues(logged_run, tmp_path):
    def expensive(request):  # every answer bills 500 output tokens: about $0.005 at gpt-4o's list price
        body = openai_chat_body(answer(openai_prompt(request)))
        body["usage"] = {"prompt_tokens": 300, "completion_tokens": 500, "total_tokens": 800}
        return Reply(body=body)

    with openai_server(answer).route(OPENAI_CHAT, expensive) as srv:
        srv.routes = srv.routes[1:]  # only the billing responder
        cache = tmp_path / "budget.sqlite"
        args = ["--judge", "openai", "--option", "model=gpt-4o", "--option", f"base_url={srv.url}/v1"]
        args += ["--option", f"cache={cache}", "--option", "concurrency=1", "--out", str(tmp_path / "o")]
        stopped = covip_judge(logged_run, tmp_path, *args, "--option", "max_cost_usd=0.02")
        asked = len(srv.requests)
        finished = covip_judge(logged_run, tmp_path, *args)
    assert stopped.returncode == 1 and "covip-judge: stopped:" in stopped.stderr
    assert "Traceback" not in stopped.stderr and 0 < asked
    assert finished.returncode == 0, finished.stderr
    questions = sum(m["n_questions"] for m in task_metrics(tmp_path / "o").values())
    assert len(srv.requests) == questions  # the rerun paid only for what the stopped run had not asked
