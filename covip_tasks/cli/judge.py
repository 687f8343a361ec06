"""`covip-judge score RUN_DIR --judge NAME`: judge a logged run's captions again, with any judge.

Captions are generated once (`lmms_eval ... --log_samples`); every sample log line keeps the caption and all its
questions (`covip_record`). This command reads the run with `covip.tasks.results.run.read_run` (the reader every
consumer uses), re-judges the captions of every captioning task with the judge asked for, and writes the same
per-task metrics as the tasks' aggregations (`covip.tasks.scoring.metrics`), plus the letter distribution and the
judge's provenance, into a new directory: the run's own files are never touched.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from covip.judges.budget import BudgetExceeded
from covip.judges.registry import BACKENDS, make_judge
from covip.tasks.cli import repic
from covip.tasks.results.records import RECORD_KEY, CaptionRecord
from covip.tasks.results.run import RunError, find_runs, read_run
from covip.tasks.scoring import metrics
from covip.tasks.scoring.judging import ALLOW_ERRORS, judge_captions, judge_ref

OUT_DIRNAME = "covip-judge"

EPILOG = """\
backends (--judge) and their options (--option KEY=VALUE, repeatable; VALUE is JSON when it parses):
  rule     offline lexical judge; no options; free and deterministic (the default of lmms_eval runs)
  openai   OpenAI, or any OpenAI-compatible server (vLLM, SGLang):
             model=NAME (required), base_url=URL (e.g. http://127.0.0.1:8000/v1),
             api_key_env=VAR (default OPENAI_API_KEY; not needed with base_url), timeout=SECONDS,
             constrain=true (vLLM structured_outputs choice) | "guided_choice" (older vLLM);
             gpt-5 and the o-series get max_completion_tokens and no temperature/top_p (OpenAI rejects them)
  gemini   Google Gemini through google-genai: model=NAME (required), api_key_env=VAR
             (default GEMINI_API_KEY, then GOOGLE_API_KEY), base_url=URL, api_version=v1beta|v1
             (default v1beta), timeout=SECONDS, constrain=true
  hf       a local transformers causal LM: model=DIRECTORY (required), gguf_file=FILE, device=cpu|cuda, dtype,
             mode=score (default: the letter read from the answer tokens' logits, one batched pass per caption)
             | generate (free generation), batch_tokens=N
options of every LLM judge:
  preset=strict|paper   strict (default): temperature 0, seed 0, unreadable answer -> invalid (counted);
                        paper: T=0.7 top_p=0.8 top_k=20 min_p=0, unreadable -> D (parity with the paper)
  temperature, top_p, top_k, min_p, seed, max_tokens   override the preset (null removes one)
  shuffle_seed=N        show A-C in a seeded per-question order (D stays), map answers back
  concurrency=N         requests in flight (default 16); max_attempts=N (default 6),
                        retry_base_delay, retry_max_delay (seconds; back-off with jitter, Retry-After honoured)
  cache=PATH|off        answer cache (SQLite); default $COVIP_JUDGE_CACHE or $COVIP_HOME/judge_cache.sqlite
  max_cost_usd=X        API judges: stop before new calls would spend more than X at list price (exit 1;
                        answered questions stay cached, so a rerun continues)
  batch=true            openai: OpenAI's Batch API (lower price; polls, resumes after a restart);
                        batch_poll_interval=SECONDS
API keys are read from environment variables only, and never written anywhere.

the paper's judge with the reference's serving flags and sampling, bound to 127.0.0.1 (the reference
bound 0.0.0.0, open to the network); leave out preset=paper for the deterministic strict preset:
  vllm serve Qwen/Qwen3-30B-A3B-Instruct-2507-FP8 --host 127.0.0.1 --port 8000 \\
      --gpu-memory-utilization 0.8 --max-model-len 8192
  covip-judge score runs/x --judge openai --option model=Qwen/Qwen3-30B-A3B-Instruct-2507-FP8 \\
      --option base_url=http://127.0.0.1:8000/v1 --option preset=paper

exit status: 0 done; 1 some judge calls failed after retries (use --allow-errors to report them as
judge_error and exit 0), or the budget (max_cost_usd) stopped the run; 2 bad input (no logged samples,
malformed record, unknown option).
"""


class BadRun(ValueError):
    """The run directory holds no usable captioning logs; the message names file, line and field."""


def load_logged_runs(run_dir: Path) -> list[dict[str, Any]]:
    """Every run under run_dir with its captioning tasks' records, verdicts stripped (to be judged again)."""
    roots = [r for r in find_runs([run_dir]) if OUT_DIRNAME not in r.relative_to(run_dir).parts]
    runs = []
    for root in roots:
        run = read_run(root).raise_problems()
        tasks = {
            name: [r.model_copy(update={"verdicts": [], "judge": None}) for r in log.records]
            for name, log in sorted(run.tasks.items())
            if log.info.family == "caption"
        }
        if tasks:
            stamp = "_".join(sorted(p.name.removesuffix("_results.json") for p in run.results))
            runs.append(
                {"results": str(root.relative_to(run_dir)) or ".", "model": run.model, "stamp": stamp, "tasks": tasks}
            )
    if not runs:
        raise BadRun(f"no covip_caption task in the results under {run_dir}")
    return runs


def task_metrics(records: list[CaptionRecord]) -> dict[str, Any]:
    """The aggregation's metrics for one task, with counts and the judge's letter distribution."""
    scores: dict[str, Any] = {name: metrics.aggregate(name, records) for name in metrics.CAPTION_METRICS}
    scores["letters"] = metrics.letter_distribution(records)
    scores["n_samples"] = len(records)
    scores["n_questions"] = sum(len(r.verdicts) for r in records)
    return scores


def parse_options(pairs: list[str], raw_json: str | None) -> dict[str, Any]:
    """--options JSON, then each --option KEY=VALUE (VALUE read as JSON when it parses, else as a string)."""
    options: dict[str, Any] = {}
    if raw_json:
        loaded = json.loads(raw_json)
        if not isinstance(loaded, dict):
            raise BadRun(f"--options must be a JSON object, got {type(loaded).__name__}")
        options.update(loaded)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BadRun(f"--option expects KEY=VALUE, got {pair!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def score(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    options = parse_options(args.option, args.options)
    allow_errors = bool(options.pop(ALLOW_ERRORS, False)) or args.allow_errors
    runs = load_logged_runs(run_dir)
    judge = make_judge(args.judge, **options)
    keys = [(i, task) for i, run in enumerate(runs) for task in run["tasks"]]
    every = [r for i, task in keys for r in runs[i]["tasks"][task]]
    judged = iter(judge_captions(every, judge))  # one batch: a remote judge runs all questions concurrently
    for i, task in keys:
        runs[i]["tasks"][task] = [next(judged) for _ in runs[i]["tasks"][task]]
    out = Path(args.out) if args.out else run_dir / OUT_DIRNAME / _slug(judge.spec.judge_id)
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "judge": {**judge_ref(judge.spec).model_dump(), "options": options},
        "allow_errors": allow_errors,
        "source": str(run_dir.resolve()),
        "runs": [],
        "packages": {d: _version(d) for d in ("covip-bench", "openai", "google-genai", "transformers")},
    }
    stats = getattr(judge, "stats", None)
    if stats is not None:
        report["calls"] = vars(stats)
    errors = 0
    for run in runs:
        entry = {"results": run["results"], "model": run["model"], "tasks": {}}
        for task, records in run["tasks"].items():
            entry["tasks"][task] = task_metrics(records)
            errors += entry["tasks"][task]["judge_error"]
            name = f"{_slug(run['model'])}_{run['stamp']}_samples_{task}.jsonl"
            with open(out / name, "w", encoding="utf-8") as fh:
                fh.writelines(
                    json.dumps({RECORD_KEY: r.model_dump(mode="json")}, ensure_ascii=False) + "\n" for r in records
                )
        report["runs"].append(entry)
    (out / "metrics.json").write_text(json.dumps(report, indent=2, allow_nan=True) + "\n", encoding="utf-8")
    _print(report, out)
    if errors and not allow_errors:
        print(
            f"covip-judge: {errors} judge call(s) failed after retries (judge_error); see 'detail' in the "
            f"samples files; rerun to retry them (answers are cached) or pass --allow-errors",
            file=sys.stderr,
        )
        return 1
    return 0


def _print(report: dict[str, Any], out: Path) -> None:
    print(f"judge {report['judge']['id']}")
    for run in report["runs"]:
        for task, m in run["tasks"].items():
            print(
                f"{run['model']:<20} {task:<28} Acc+ {m['acc_pos']:6.1f}  Acc- {m['acc_neg']:6.1f}  "
                f"invalid {m['judge_invalid']}  error {m['judge_error']}  letters {m['letters']}"
            )
    if "calls" in report:
        print(f"calls: {report['calls']}")
    print(f"wrote {out / 'metrics.json'}")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="covip-judge",
        description="Judge the captions of a logged CoViP run (lmms_eval --log_samples) with any judge.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser(
        "score",
        help="re-judge RUN_DIR's logged captions; writes metrics.json and judged samples to a new directory",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("run_dir", help="an lmms_eval --output_path directory run with --log_samples")
    s.add_argument("--judge", required=True, choices=BACKENDS, help="judge backend")
    s.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="judge option (repeatable)")
    s.add_argument("--options", metavar="JSON", help="judge options as one JSON object (like COVIP_JUDGE_OPTIONS)")
    s.add_argument("--out", help=f"output directory (default RUN_DIR/{OUT_DIRNAME}/<judge id>)")
    s.add_argument("--allow-errors", action="store_true", help="exit 0 even if some judge calls failed")
    # every argument after `repic` goes to its own parser (`covip-judge repic --help`)
    r = sub.add_parser("repic", help="score RePIC caption files (name precision / recall / F1)", prefix_chars="\0")
    r.add_argument("argv", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command == "repic":
        return repic.main(args.argv)
    try:
        return score(args)
    except BudgetExceeded as exc:
        print(f"covip-judge: stopped: {exc}", file=sys.stderr)
        return 1
    except (BadRun, RunError, ValueError, FileNotFoundError) as exc:
        print(f"covip-judge: error: {exc}", file=sys.stderr)
        return 2


def entry() -> None:
    sys.exit(main())
