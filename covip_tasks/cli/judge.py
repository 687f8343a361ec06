"""`covip-judge score RUN_DIR --judge NAME`: judge a logged run's captions again, with any judge.

Captions are generated once (`lmms_eval ... --log_samples`); every per-sample log line keeps
the caption and all its questions with options (`covip_record`). This command re-judges them
with the judge asked for and writes the same per-task metrics as the lmms-eval aggregation
(metrics.CAPTION_METRICS), plus the letter distribution and the judge's provenance, into a new
directory: the run's own files are never touched.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from covip.judges.registry import BACKENDS, make_judge
from covip.tasks.scoring import metrics
from covip.tasks.scoring.judging import ALLOW_ERRORS, judge_records
from covip.tasks.scoring.metrics import RECORD_KEY

OUT_DIRNAME = "covip-judge"
TASK = re.compile(r"^covip_caption_")

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
  hf       a local transformers causal LM: model=DIRECTORY (required), gguf_file=FILE, device=cpu|cuda, dtype
options of every LLM judge:
  preset=strict|paper   strict (default): temperature 0, seed 0, unreadable answer -> invalid (counted);
                        paper: T=0.7 top_p=0.8 top_k=20 min_p=0, unreadable -> D (parity with the paper)
  temperature, top_p, top_k, min_p, seed, max_tokens   override the preset (null removes one)
  shuffle_seed=N        show A-C in a seeded per-question order (D stays), map answers back
  concurrency=N         requests in flight (default 16); max_attempts=N (default 6),
                        retry_base_delay, retry_max_delay (seconds; back-off with jitter, Retry-After honoured)
  cache=PATH|off        answer cache (SQLite); default $COVIP_JUDGE_CACHE or $COVIP_HOME/judge_cache.sqlite
API keys are read from environment variables only, and never written anywhere.

the paper's judge with the reference's serving flags and sampling, bound to 127.0.0.1 (the reference
bound 0.0.0.0, open to the network); leave out preset=paper for the deterministic strict preset:
  vllm serve Qwen/Qwen3-30B-A3B-Instruct-2507-FP8 --host 127.0.0.1 --port 8000 \\
      --gpu-memory-utilization 0.8 --max-model-len 8192
  covip-judge score runs/x --judge openai --option model=Qwen/Qwen3-30B-A3B-Instruct-2507-FP8 \\
      --option base_url=http://127.0.0.1:8000/v1 --option preset=paper

exit status: 0 done; 1 some judge calls failed after retries (use --allow-errors to report them as
judge_error and exit 0); 2 bad input (no logged samples, malformed record, unknown option).
"""


class BadRun(ValueError):
    """The run directory holds no usable per-sample logs; the message names file, line and field."""


def load_logged_runs(run_dir: Path) -> list[dict[str, Any]]:
    """Every results file under run_dir with its covip_caption tasks' logged records (verdicts stripped)."""
    found = sorted(p for p in run_dir.rglob("*_results.json") if OUT_DIRNAME not in p.relative_to(run_dir).parts)
    if not found:
        raise BadRun(f"no lmms-eval results (*_results.json) under {run_dir}")
    runs = []
    for path in found:
        results = json.loads(path.read_text(encoding="utf-8"))
        stamp = path.name.removesuffix("_results.json")
        tasks: dict[str, list[dict]] = {}
        for task in sorted(results.get("results", {})):
            if not TASK.match(task):
                continue
            samples = path.parent / f"{stamp}_samples_{task}.jsonl"
            if not samples.is_file():
                raise BadRun(
                    f"{path}: task {task} has no per-sample log {samples.name} (run lmms_eval with --log_samples)"
                )
            tasks[task] = _records(samples)
        if tasks:
            model = results.get("config", {}).get("model") or path.parent.name
            runs.append({"results": str(path.relative_to(run_dir)), "model": model, "stamp": stamp, "tasks": tasks})
    if not runs:
        raise BadRun(f"no covip_caption task in the results under {run_dir}")
    return runs


def _records(samples: Path) -> list[dict]:
    records = []
    with open(samples, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BadRun(f"{samples}: line {lineno}: not JSON ({exc})") from exc
            record = row.get(RECORD_KEY) if isinstance(row, dict) else None
            if not isinstance(record, dict):
                raise BadRun(f"{samples}: line {lineno}: field '{RECORD_KEY}' missing")
            for name in ("sample_id", "caption", "questions", "recognition_f1"):
                if name not in record:
                    raise BadRun(f"{samples}: line {lineno}: field '{RECORD_KEY}.{name}' missing")
            for i, q in enumerate(record["questions"]):
                for name in ("qid", "concept", "positive", "question", "options", "gold"):
                    if name not in q:
                        raise BadRun(f"{samples}: line {lineno}: field '{RECORD_KEY}.questions[{i}].{name}' missing")
            records.append({k: v for k, v in record.items() if k not in ("verdicts", "judge")})
    if not records:
        raise BadRun(f"{samples}: no samples")
    return records


def task_metrics(records: list[dict]) -> dict[str, Any]:
    """The aggregation's metrics for one task, with counts and the judge's letter distribution."""
    scores: dict[str, Any] = {name: fn(records) for name, fn in metrics.CAPTION_METRICS.items()}
    scores["letters"] = metrics.letter_distribution(records)
    scores["n_samples"] = len(records)
    scores["n_questions"] = sum(len(r["verdicts"]) for r in records)
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
    every = [r for run in runs for records in run["tasks"].values() for r in records]
    judge_records(every, judge)  # one batch: a remote judge runs all questions of all tasks concurrently
    out = Path(args.out) if args.out else run_dir / OUT_DIRNAME / _slug(judge.spec.judge_id)
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "judge": {**judge.spec.to_dict(), "id": judge.spec.judge_id, "options": options},
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
                fh.writelines(json.dumps({RECORD_KEY: r}, ensure_ascii=False) + "\n" for r in records)
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
    args = parser.parse_args(argv)
    try:
        return score(args)
    except (BadRun, ValueError, FileNotFoundError) as exc:
        print(f"covip-judge: error: {exc}", file=sys.stderr)
        return 2


def entry() -> None:
    sys.exit(main())
