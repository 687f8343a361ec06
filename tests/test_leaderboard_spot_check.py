"""The LLM-judge spot check: a seeded sample of a submission's questions re-asked of the judge it declares.

The judge is the real `openai` backend talking to a loopback fake server (the only thing mocked: the remote API, at
the HTTP level). The submission is a real `lmms_eval` run judged by that same server.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from fake_servers import openai_server
from leaderboard_edits import consistent, copy_run, edit_rows, lmms_run

from covip.leaderboard.cli import main

pytest_plugins = ["leaderboard_runs"]
TASKS = "covip_caption_1c,covip_lar"


def answer(prompt: str) -> str:
    """A deterministic judge: a letter (or a LAR verdict) chosen by the prompt's hash."""
    digest = hashlib.sha256(prompt.encode()).digest()
    if "\\boxed" in prompt:
        return f"Answer: \\boxed{{{'ABCD'[digest[0] % 4]}}}"
    return "Correct" if digest[0] % 2 else "Incorrect"


@pytest.fixture(scope="module")
def judged(small_benchmark: Path, tmp_path_factory: pytest.TempPathFactory):
    """A run judged by the fake server's LLM, and the server (still up) for the spot checks."""
    tmp_path = tmp_path_factory.mktemp("judged")
    with openai_server(answer) as server:
        options = {"model": "judge-m", "base_url": f"{server.url}/v1", "cache": "off", "max_attempts": 2}
        run = lmms_run(
            ["--model", "covip_oracle", "--tasks", TASKS],
            small_benchmark,
            tmp_path / "run",
            COVIP_HOME=str(tmp_path / "home"),
            COVIP_JUDGE="openai",
            COVIP_JUDGE_OPTIONS=json.dumps(options),
        )
        yield run, server


def spot_check(capsys, run: Path, server, *more: str, command: str = "validate", out: Path | None = None):
    where = ["--out", str(out)] if out else []
    args = [command, str(run), *where, "--spot-check", "6", "--judge-option", f"base_url={server.url}/v1", *more]
    code = main([*args, "--judge-option", "cache=off"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_an_honest_llm_judged_run_passes_the_spot_check_and_the_site_says_so(judged, tmp_path, capsys) -> None:
    run, server = judged
    asked = len(server.requests)
    code, out, _ = spot_check(capsys, run, server)
    assert code == 0, out
    assert "spot check: 6 of 6 re-judged verdicts agree" in out
    assert len(server.requests) == asked + 6
    code, _, _ = spot_check(capsys, run, server, command="build", out=tmp_path / "site")
    assert code == 0
    [entry] = json.loads((tmp_path / "site" / "leaderboard.json").read_text())["models"]
    assert entry["checks"]["spot_check"]["agreed"] == 6 and entry["checks"]["spot_check"]["asked"] == 6
    assert "spot-checked: 6 of 6 agree" in (tmp_path / "site" / "index.html").read_text()


def test_the_sample_is_seeded(judged, capsys) -> None:
    run, server = judged

    def asked(seed: str) -> list[str]:
        before = len(server.requests)
        assert spot_check(capsys, run, server, "--spot-seed", seed)[0] == 0
        return sorted(json.dumps(r.json["messages"]) for r in server.requests[before:])

    assert asked("1") == asked("1") != asked("2")


def test_forged_llm_verdicts_fail_the_spot_check(judged, tmp_path, capsys) -> None:
    run, server = judged
    sub = copy_run(run, tmp_path / "forged")

    def forge(row: dict) -> None:
        record = row["covip_record"]
        questions = {q["qid"]: q for q in record["questions"]}
        for verdict in record["verdicts"]:
            question = questions[verdict["qid"]]
            verdict["pred"] = question["gold"] if question["concept"] in record["positives"] else "D"

    edit_rows(sub, "covip_caption_1c", forge)
    consistent(sub, "covip_caption_1c")
    code, _, err = spot_check(capsys, sub, server, "--spot-check", "100")  # every verdict re-asked
    assert code == 2
    found = [line for line in err.splitlines() if line.endswith("[rule: spot-check]")]
    assert found and all("task covip_caption_1c: line " in line for line in found)
    assert main(["validate", str(sub)]) == 0  # without the spot check an LLM judge's verdicts cannot be checked


def test_a_judge_the_options_do_not_rebuild_is_not_spot_checked(judged, tmp_path, capsys) -> None:
    run, server = judged
    code, out, _ = spot_check(capsys, run, server, "--judge-option", "model=another-judge")
    assert code == 0
    assert "not spot-checked: the options build judge openai:another-judge" in out
    code, _, _ = spot_check(
        capsys, run, server, "--judge-option", "model=another-judge", command="build", out=tmp_path / "s"
    )
    assert code == 0
    assert "not spot-checked" in (tmp_path / "s" / "index.html").read_text()


def test_an_unreachable_judge_leaves_the_run_unchecked_not_rejected(judged, capsys) -> None:
    run, _ = judged
    code = main(
        ["validate", str(run), "--spot-check", "3", "--judge-option", "base_url=http://127.0.0.1:9/v1"]
        + ["--judge-option", "max_attempts=1", "--judge-option", "cache=off"]
    )
    out = capsys.readouterr().out
    assert code == 0 and "not spot-checked: the judge failed 3 of 3 questions" in out
