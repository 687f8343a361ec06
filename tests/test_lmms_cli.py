"""The real lmms-eval CLI, as users type it, through subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent


def run(args: list[str], data: Path, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "COVIP_DATA": str(data), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", **env}
    return subprocess.run(args, capture_output=True, text=True, env=full_env, timeout=600)


def results_of(out: Path) -> tuple[dict, Path]:
    [path] = list(out.rglob("*_results.json"))
    return json.loads(path.read_text()), path


def test_lmms_eval_runs_a_covip_task_without_include_path(small_benchmark, tmp_path):
    out = tmp_path / "out"
    proc = run(
        [
            str(BIN / "lmms_eval"),
            "--model",
            "covip_oracle",
            "--tasks",
            "covip_caption_2c",
            "--output_path",
            str(out),
            "--log_samples",
        ],
        small_benchmark,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results, path = results_of(out)
    scores = results["results"]["covip_caption_2c"]
    assert scores["acc_pos,none"] >= 95 and scores["acc_neg,none"] >= 95
    assert scores["recognition_f1,none"] == 1.0 and scores["judge_invalid,none"] == 0
    assert results["versions"]["covip_caption_2c"] == 1.0
    prov = results["covip"]
    assert prov["judge"]["backend"] == "rule"
    assert prov["preset"] == "covip"
    letters = prov["judge_letters"]["covip_caption_2c"]
    assert sum(letters.values()) == 2 * 6 * 3 and letters["D"] == 2 * 4 * 3  # the oracle leaks nothing
    assert prov["data"]["covip_caption_2c"]["manifest_sha256"]
    [samples] = list(path.parent.glob("*_samples_covip_caption_2c.jsonl"))
    lines = [json.loads(line) for line in samples.read_text().splitlines()]
    assert len(lines) == 2
    record = lines[0]["covip_record"]
    assert len(record["verdicts"]) == 6 * 3  # 6 concepts x 3 questions
    verdict = record["verdicts"][0]
    assert set(verdict) == {"qid", "concept", "positive", "gold", "pred"}
    assert record["questions"][0]["options"]["D"] == "The answer cannot be determined"
    assert record["judge"]["backend"] == "rule" and record["judge"]["id"].startswith("rule:")
    assert record["manifest_sha256"] == prov["data"]["covip_caption_2c"]["manifest_sha256"]
    assert lines[0]["acc_pos"] == {"see": "covip_record", "sample_id": record["sample_id"]}


def test_wildcard_runs_every_covip_task_once(small_benchmark, tmp_path):
    out = tmp_path / "out"
    proc = run(
        [str(BIN / "lmms_eval"), "--model", "covip_blind", "--tasks", "covip_*", "--output_path", str(out)],
        small_benchmark,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results, _ = results_of(out)
    tasks = {t for t in results["results"] if t.startswith("covip_caption_")}
    expected = {f"covip_caption_{n}c{s}" for n in range(1, 5) for s in ("", "_blind", "_noctx")}
    assert expected <= tasks
    assert all(results["results"][t]["acc_pos,none"] == 0 for t in expected)


def test_plain_lmms_eval_with_include_path(small_benchmark, tmp_path):
    path = subprocess.run([str(BIN / "covip-tasks-path")], capture_output=True, text=True, check=True).stdout.strip()
    proc = run(
        [
            str(BIN / "lmms-eval"),
            "--include_path",
            path,
            "--model",
            "covip_shortcut",
            "--tasks",
            "covip_caption_1c",
            "--output_path",
            str(tmp_path / "out"),
        ],
        small_benchmark,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results, _ = results_of(tmp_path / "out")
    assert results["results"]["covip_caption_1c"]["acc_neg,none"] < 40


def test_exit_status_is_nonzero_when_the_evaluation_fails(small_benchmark, tmp_path):
    missing = run(
        [str(BIN / "lmms_eval"), "--model", "covip_blind", "--tasks", "covip_caption_1c"], tmp_path / "does-not-exist"
    )
    assert missing.returncode != 0
    assert "no CoViP captioning data" in missing.stdout + missing.stderr
    bad_judge = run(
        [str(BIN / "lmms_eval"), "--model", "covip_blind", "--tasks", "covip_caption_1c"],
        small_benchmark,
        COVIP_JUDGE="openai",
    )
    assert bad_judge.returncode != 0
    assert "the openai judge needs option 'model'" in bad_judge.stdout + bad_judge.stderr


def test_run_cost_from_usage_and_model_args():
    from covip.tasks.cli.lmms_eval import run_cost

    usage = {"total": {"input_tokens": 1_000_000, "output_tokens": 50_000, "reasoning_tokens": 50_000}}
    results = {"usage": usage, "config": {"model_args": "model=gpt-4o,detail=low"}}
    assert run_cost(results) == pytest.approx(2.5 + 1.0)
    assert run_cost({"usage": {}, "config": {"model_args": "model=gpt-4o"}}) is None
    assert run_cost({"usage": usage, "config": {"model_args": "pretrained=/tiny"}}) is None


# The foundation issue's "must show" thresholds, per bucket, checked on the small benchmark through the real CLI.
MUST_SHOW = {
    "covip_oracle": lambda s: s["acc_pos,none"] >= 95 and s["acc_neg,none"] >= 95,
    "covip_blind": lambda s: s["acc_pos,none"] <= 10,
    "covip_shortcut": lambda s: s["acc_neg,none"] <= 40,
    "covip_retrieval": lambda s: s["recognition_f1,none"] >= 0.8 and s["acc_pos,none"] >= 60,
}


@pytest.mark.parametrize("model", sorted(MUST_SHOW))
def test_baselines_meet_their_thresholds_in_every_bucket(model, small_benchmark, tmp_path):
    out = tmp_path / "out"
    proc = run(
        [str(BIN / "lmms_eval"), "--model", model, "--tasks", "covip_caption", "--output_path", str(out)],
        small_benchmark,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results, _ = results_of(out)
    for bucket in range(1, 5):
        scores = results["results"][f"covip_caption_{bucket}c"]
        assert MUST_SHOW[model](scores), (bucket, scores)


def test_help_and_task_listing_know_the_covip_tasks():
    top = subprocess.run([str(BIN / "lmms_eval"), "--help"], capture_output=True, text=True, timeout=300)
    assert top.returncode == 0 and "CoViP bench" in top.stdout and "lmms_eval eval --help" in top.stdout
    evaluate = subprocess.run([str(BIN / "lmms_eval"), "eval", "--help"], capture_output=True, text=True, timeout=300)
    assert evaluate.returncode == 0 and "--model_args" in evaluate.stdout
    listing = subprocess.run([str(BIN / "lmms_eval"), "tasks", "list"], capture_output=True, text=True, timeout=300)
    assert listing.returncode == 0 and "covip_caption_4c_noctx" in listing.stdout + listing.stderr


def test_unknown_task_exits_nonzero(small_benchmark, tmp_path):
    proc = run([str(BIN / "lmms_eval"), "--model", "covip_blind", "--tasks", "covip_nope"], small_benchmark)
    assert proc.returncode == 1
    assert "Tasks not found: covip_nope" in proc.stdout + proc.stderr


def test_only_secret_option_names_are_redacted():
    from covip.tasks.cli.lmms_eval import _redact

    options = {"api_key": "k", "auth_token": "t", "api_key_env": "OPENAI_API_KEY", "max_tokens": 512, "model": "m"}
    assert _redact(options) == {
        "api_key": "<redacted>",
        "auth_token": "<redacted>",
        "api_key_env": "OPENAI_API_KEY",
        "max_tokens": 512,
        "model": "m",
    }
