"""The `lmms_eval` command: lmms-eval with CoViP's tasks registered and an honest exit status.

lmms-eval 0.7.3 finds outside tasks only through `--include_path`, and exits 0 even when an
evaluation failed. Users type `lmms_eval --model M --tasks 'covip_*'`; this entry point makes
that work: it adds our task directory to the include path (keeping any the user gave), runs
lmms-eval's own CLI in-process, adds a `covip` provenance block to the saved results, and
exits 1 when any evaluation raised or any task produced no finite metric.
"""

from __future__ import annotations

import math
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from covip.tasks.data.canonical import MANIFEST, sha256_file
from covip.tasks.data.sources import resolve_location
from covip.tasks.lmms.diagnostic import preset
from covip.tasks.results.pricing import estimated_cost_usd
from covip.tasks.scoring import metrics
from covip.tasks.scoring.judging import judge_config, run_judge
from covip.tasks.scoring.metrics import RECORD_KEY

HELP_PREFACE = """lmms_eval (CoViP bench): lmms-eval with the covip_* tasks registered (no --include_path needed).
Example: lmms_eval --model covip_oracle --tasks 'covip_*' --output_path runs/x --log_samples
Judge: COVIP_JUDGE / COVIP_JUDGE_OPTIONS; data: COVIP_DATA. Exits 1 if any evaluation failed.
Evaluation options: lmms_eval eval --help. Task list: lmms_eval tasks list.
lmms-eval's own help follows.
"""
SECRET_WORDS = frozenset({"key", "apikey", "token", "secret", "password", "credential", "credentials"})


def tasks_path() -> Path:
    """Directory holding the CoViP task YAMLs (package data)."""
    return Path(__file__).resolve().parent.parent / "lmms" / "tasks"


def print_tasks_path() -> None:
    """`covip-tasks-path`: print the task directory, for `lmms-eval --include_path`."""
    import argparse

    argparse.ArgumentParser(
        prog="covip-tasks-path",
        description="Print the directory of the covip_* task YAMLs, for "
        '`lmms-eval --include_path "$(covip-tasks-path)" --tasks ...`.',
    ).parse_args()
    print(tasks_path())


def _is_secret(name: str) -> bool:
    """Whole words of an option name (`api_key`, `auth_token`), so that `max_tokens` stays readable; an
    option naming the environment variable that holds a key (`api_key_env`) is not itself a secret."""
    words = name.lower().replace("-", "_").split("_")
    return words[-1] != "env" and bool(SECRET_WORDS & set(words))


def _redact(options: dict[str, Any]) -> dict[str, Any]:
    return {k: ("<redacted>" if _is_secret(k) else v) for k, v in options.items()}


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def provenance(results: dict[str, Any]) -> dict[str, Any]:
    """What made these results: judge, data (location and manifest hash), prompt preset, package versions."""
    judge = judge_config()
    data = {}
    for task, config in results.get("configs", {}).items():
        if not task.startswith("covip_"):
            continue
        kind = (config.get("dataset_kwargs") or {}).get("task", "caption")
        location = resolve_location(config.get("dataset_path"), kind)
        manifest = Path(location) / MANIFEST
        data[task] = {
            "location": location,
            "manifest_sha256": sha256_file(manifest) if manifest.is_file() else None,
            "version": results.get("versions", {}).get(task),
        }
    return {
        "judge": {
            "backend": judge["backend"],
            "options": _redact(judge["options"]),
            "spec": {**run_judge().spec.to_dict(), "id": run_judge().spec.judge_id},
        },
        "data": data,
        "preset": preset(),
        "packages": {d: _version(d) for d in ("covip-bench", "lmms-eval", "torch", "transformers", "datasets")},
    }


def judge_letters(samples: dict[str, list[dict]]) -> dict[str, dict[str, int]]:
    """Per captioning task, how often the judge answered each letter: a bias check (needs --log_samples)."""
    return {
        task: metrics.letter_distribution(row[RECORD_KEY] for row in rows)
        for task, rows in samples.items()
        if rows and "verdicts" in rows[0].get(RECORD_KEY, {})
    }


def run_cost(results: dict[str, Any]) -> float | None:
    """List-price cost of the run's API tokens (None when no usage was recorded or the model is unpriced)."""
    total = results.get("usage", {}).get("total")
    model_args = str(results.get("config", {}).get("model_args") or "")
    model = next((a.split("=", 1)[1] for a in model_args.split(",") if a.startswith("model=")), "")
    if not total or not model:
        return None
    return estimated_cost_usd(model, total["input_tokens"], total["output_tokens"] + total["reasoning_tokens"])


def failed_tasks(results: dict[str, Any]) -> list[str]:
    """Tasks (not groups) whose metrics are missing or not finite."""
    groups = set(results.get("groups", {})) | {g for g, subs in results.get("group_subtasks", {}).items() if subs}
    bad = []
    for task, values in results.get("results", {}).items():
        if task in groups:
            continue
        numbers = [v for k, v in values.items() if "," in k and "stderr" not in k and isinstance(v, (int, float))]
        if not numbers or any(not math.isfinite(v) for v in numbers):
            bad.append(task)
    return bad


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["eval"] and argv[1:2] not in (["-h"], ["--help"]):
        argv = argv[1:]
    if not argv or not argv[0].startswith("-") or argv[0] in ("-h", "--help"):
        from lmms_eval.cli.dispatch import main as dispatch

        if not argv or argv[0] in ("-h", "--help"):
            print(HELP_PREFACE)
        if argv[:1] == ["tasks"] and "--include-path" not in argv:
            argv = [*argv, "--include-path", str(tasks_path())]
        sys.argv = ["lmms_eval", *argv]
        dispatch()
        return 0

    import lmms_eval.__main__ as lm
    from lmms_eval.loggers import evaluation_tracker

    sys.argv = ["lmms_eval", *argv]
    _, args = lm.parse_eval_args()
    extra = [args.include_path] if isinstance(args.include_path, str) else list(args.include_path or [])
    args.include_path = [str(tasks_path()), *extra]

    attempts: list[str] = []
    raised: list[BaseException] = []
    outcomes: list[dict[str, Any]] = []
    original_single = lm.cli_evaluate_single
    original_save = evaluation_tracker.EvaluationTracker.save_results_aggregated

    def recording_single(run_args):
        # lmms-eval catches and logs the exception itself; it is recorded here so that the exit status
        # says so. Results are None on processes other than rank 0, which is not a failure.
        attempts.append(run_args.tasks)
        try:
            results, samples = original_single(run_args)
        except BaseException as error:
            raised.append(error)
            raise
        if results is not None:
            outcomes.append(results)
        return results, samples

    def save_with_provenance(self, results, samples, datetime_str):
        results["covip"] = provenance(results)
        results["covip"]["judge_letters"] = judge_letters(samples or {})
        results["covip"]["estimated_cost_usd"] = run_cost(results)
        return original_save(self, results=results, samples=samples, datetime_str=datetime_str)

    lm.cli_evaluate_single = recording_single
    evaluation_tracker.EvaluationTracker.save_results_aggregated = save_with_provenance
    try:
        lm.cli_evaluate(args)
    finally:
        lm.cli_evaluate_single = original_single
        evaluation_tracker.EvaluationTracker.save_results_aggregated = original_save

    problems = []
    if raised:
        problems.append(f"{len(raised)} of {len(attempts)} evaluation(s) raised an error (see above)")
    for results in outcomes:
        if not results.get("results"):
            problems.append("an evaluation wrote no results")
        bad = failed_tasks(results)
        if bad:
            problems.append(f"no finite metrics for task(s): {', '.join(bad)}")
    if problems:
        print("lmms_eval (covip): FAILED: " + "; ".join(problems), file=sys.stderr)
        return 1
    return 0


def entry() -> None:
    sys.exit(main())
