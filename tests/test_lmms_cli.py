"""The real `lmms_eval` command as users type it: in-process (tests/lmms_runner.py) where the console script adds
nothing, in subprocesses where it does (exit status, help, plain `lmms-eval`, several processes)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from lmms_runner import OFFLINE, run_lmms_eval

from covip.tasks.data.canonical import sha256_file
from covip.tasks.results.run import read_run

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent


def subprocess_run(args: list[str], data: Path, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "COVIP_DATA": str(data), **OFFLINE, **env}
    return subprocess.run(args, capture_output=True, text=True, env=full_env, timeout=600)


def test_a_run_records_its_identity_typed_records_and_lmms_evals_stderr(small_benchmark, tmp_path):
    run = run_lmms_eval(["--model", "covip_oracle", "--tasks", "covip_caption_2c"], small_benchmark, tmp_path / "o")
    assert run.code == 0, run.output[-3000:]
    results = run.results
    scores = results["results"]["covip_caption_2c"]
    assert scores["acc_pos,none"] == 100 and scores["acc_neg,none"] == 100
    assert scores["recognition_f1,none"] == 1.0 and scores["judge_invalid,none"] == 0
    for metric in ("acc_pos", "acc_neg", "recognition_f1"):  # lmms-eval's own stderr is filled in, not N/A
        assert isinstance(scores[f"{metric}_stderr_clt,none"], float), metric
    assert isinstance(scores["acc_pos_stderr_clustered,none"], float)
    assert isinstance(scores["recognition_f1_stderr,none"], float)
    assert results["versions"]["covip_caption_2c"] == 2.0

    identity = results["configs"]["covip_caption_2c"]["metadata"]["covip"]
    assert identity["data"]["location"] == str(small_benchmark)
    assert identity["data"]["manifest_sha256"] == sha256_file(small_benchmark / "manifest.json")
    assert len(identity["data"]["samples_sha256"]) == 64
    assert identity["preset"] == "covip"
    assert identity["judge"]["backend"] == "rule" and identity["judge"]["id"].startswith("rule:")

    [line, _] = run.samples("covip_caption_2c")
    record = line["covip_record"]
    assert record["kind"] == "caption" and len(record["questions"]) == len(record["verdicts"]) == 6 * 3
    assert set(record["verdicts"][0]) == {"qid", "pred", "detail"}  # joined on qid: no copied question facts
    assert record["judge"] == identity["judge"]
    assert line["acc_pos"] == {"sample_id": record["sample_id"], "correct": 6, "total": 6, "score": 100.0}
    logged = read_run(run.run_dir)
    assert not logged.problems and list(logged.tasks) == ["covip_caption_2c"]
    first = logged.tasks["covip_caption_2c"].samples[0]
    assert first.response == first.record.caption == record["caption"]  # the model's logged answer is the one judged


def test_wildcard_runs_every_covip_task_once(small_benchmark, tmp_path):
    run = run_lmms_eval(["--model", "covip_blind", "--tasks", "covip_*"], small_benchmark, tmp_path / "o")
    assert run.code == 0, run.output[-3000:]
    results = run.results
    expected = {f"covip_caption_{n}c{s}" for n in range(1, 5) for s in ("", "_blind", "_noctx")}
    assert expected <= set(results["results"])
    assert all(results["results"][t]["acc_pos,none"] == 0 for t in expected)
    logged = read_run(run.run_dir)
    assert not logged.problems
    assert expected | {"covip_lsd", "covip_lar_cag", "covip_itr_noctx"} <= set(logged.tasks)


def test_plain_lmms_eval_with_include_path(small_benchmark, tmp_path):
    path = subprocess.run([str(BIN / "covip-tasks-path")], capture_output=True, text=True, check=True).stdout.strip()
    args = ["--include_path", path, "--model", "covip_shortcut", "--tasks", "covip_caption_1c"]
    proc = subprocess_run([str(BIN / "lmms-eval"), *args, "--output_path", str(tmp_path / "o")], small_benchmark)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [results_file] = list((tmp_path / "o").rglob("*_results.json"))
    assert json.loads(results_file.read_text())["results"]["covip_caption_1c"]["acc_neg,none"] < 40


def test_exit_status_is_nonzero_when_the_evaluation_fails(small_benchmark, tmp_path):
    """lmms-eval prints the error and exits 0; our command exits 1 (a subprocess: the console script itself)."""
    proc = subprocess_run(
        [str(BIN / "lmms_eval"), "--model", "covip_blind", "--tasks", "covip_caption_1c"],
        small_benchmark,
        COVIP_JUDGE="openai",
    )
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "the openai judge needs option 'model'" in proc.stdout + proc.stderr
    assert "task covip_caption_1c did not finish" in proc.stderr


@pytest.mark.parametrize(
    ("args", "data", "message"),
    [
        (
            ["--model", "covip_orcle", "--tasks", "covip_caption_1c"],
            True,
            "unknown CoViP model 'covip_orcle' (did you mean covip_oracle",
        ),
        (
            ["--model", "covip_blind", "--tasks", "covip_captoin"],
            True,
            "unknown CoViP task 'covip_captoin' (did you mean covip_caption",
        ),
        (["--model", "covip_blind", "--tasks", "covip_nope*"], True, "unknown CoViP task 'covip_nope*'"),
        (
            ["--model", "covip_qwen3_vl", "--model_args", "pretraned=/x", "--tasks", "covip_caption_1c"],
            True,
            "covip_qwen3_vl: unknown model argument 'pretraned' (did you mean pretrained?)",
        ),
        (["--model", "covip_qwen3_vl", "--tasks", "covip_caption_1c"], True, "missing model argument(s) pretrained"),
        (["--model", "covip_blind", "--tasks", "covip_caption_1c"], False, "COVIP_DATA"),
        (["--model", "covip_blind", "--tasks", "covip_lsd"], False, "covip-data build` --tasks lsd"),
    ],
)
def test_first_mistakes_get_one_line_with_the_fix(args, data, message, small_benchmark, tmp_path):
    run = run_lmms_eval(args, small_benchmark if data else tmp_path / "nothing-here")
    assert run.code == 2, run.output[-2000:]
    assert message in run.output
    assert "Traceback" not in run.output


def test_use_cache_never_scores_another_identity(small_benchmark, tmp_path):
    """Responses cached under one dataset or preset are never scored for another: lmms-eval keys its response cache
    on the task config, where each task writes the run's identity. The same identity reuses the cache."""
    from covip.tasks.builder.build import BuildConfig, build

    other = tmp_path / "other"
    build(BuildConfig(out=other, seed=8, per_bucket=2, tasks=("caption",)))
    cache = tmp_path / "cache"
    args = ["--model", "covip_oracle", "--tasks", "covip_caption", "--use_cache", str(cache)]
    runs = {
        "first": run_lmms_eval(args, small_benchmark, tmp_path / "first"),
        "other data": run_lmms_eval(args, other, tmp_path / "second"),
        "other preset": run_lmms_eval(args, other, tmp_path / "third", COVIP_PRESET="paper"),
    }
    for name, run in runs.items():
        assert run.code == 0, (name, run.output[-2000:])
        for bucket in range(1, 5):  # the oracle scores 100 on its own answers only
            scores = run.results["results"][f"covip_caption_{bucket}c"]
            assert scores["acc_pos,none"] == 100 and scores["acc_neg,none"] == 100, (name, bucket, scores)
    identities = {n: r.results["configs"]["covip_caption_1c"]["metadata"]["covip"] for n, r in runs.items()}
    assert identities["other preset"]["preset"] == "paper"
    assert identities["first"]["data"]["samples_sha256"] != identities["other data"]["data"]["samples_sha256"]
    stored = cache_rows(cache)
    again = run_lmms_eval(args, other, tmp_path / "again")
    assert again.code == 0 and again.results["results"]["covip_caption_1c"]["acc_pos,none"] == 100
    assert cache_rows(cache) == stored  # served from the cache: nothing new was generated


def test_help_and_tasks_path_import_neither_lmms_eval_nor_torch():
    code = (
        "import sys, contextlib, io\n"
        "from covip.tasks.cli.lmms_eval import main, print_tasks_path\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    main(['--help']); sys.argv = ['covip-tasks-path']; print_tasks_path()\n"
        "heavy = sorted(m for m in ('torch', 'lmms_eval', 'datasets', 'transformers') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
        "print(out.getvalue())\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "CoViP bench" in proc.stdout and "lmms_eval eval --help" in proc.stdout
    from covip.model_adapters.registry import MANIFESTS  # the help names every model we register
    from covip.tasks.catalogue import catalogue

    assert all(m.model_id in proc.stdout for m in MANIFESTS)
    assert all(group in proc.stdout for group in catalogue().groups), "and every task group"
    assert proc.stdout.strip().endswith(str(Path("lmms") / "tasks"))


def test_lmms_evals_own_help_and_task_listing_know_our_tasks():
    evaluate = subprocess.run([str(BIN / "lmms_eval"), "eval", "--help"], capture_output=True, text=True, timeout=300)
    assert evaluate.returncode == 0 and "--model_args" in evaluate.stdout
    listing = run_lmms_eval(["tasks", "list"], None)
    assert listing.code == 0 and "covip_caption_4c_noctx" in listing.output


# What each baseline must show in every bucket of the small benchmark (default difficulty: look-alike distractors),
# through the real CLI. The matchers' spread itself (structure above colour, colour near chance) is measured on a
# larger build in test_builder_difficulty.py and by benchmarks/baseline_spread.py.
MUST_SHOW = {
    "covip_oracle": lambda s: s["acc_pos,none"] >= 95 and s["acc_neg,none"] >= 95,
    "covip_blind": lambda s: s["acc_pos,none"] <= 10,
    "covip_shortcut": lambda s: s["acc_neg,none"] <= 40,
    # one concept per coloured object: it takes look-alikes for positives, but never recites every memory
    "covip_retrieval": lambda s: s["acc_neg,none"] >= 40 and s["acc_pos,none"] < 95,
    # aligned and checked pixel by pixel: it seldom names an absent concept, and finds some of the present ones
    "covip_structure": lambda s: s["acc_neg,none"] >= 80 and s["recognition_f1,none"] >= 0.4,
}


@pytest.mark.parametrize("model", sorted(MUST_SHOW))
def test_baselines_meet_their_thresholds_in_every_bucket(model, small_benchmark, tmp_path):
    run = run_lmms_eval(["--model", model, "--tasks", "covip_caption"], small_benchmark, tmp_path / "o")
    assert run.code == 0, run.output[-3000:]
    results = run.results
    for bucket in range(1, 5):
        scores = results["results"][f"covip_caption_{bucket}c"]
        assert MUST_SHOW[model](scores), (bucket, scores)


def cache_rows(root: Path) -> int:
    """Responses in lmms-eval's merged cache database."""
    with sqlite3.connect(root / "cache.db") as db:
        return db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
