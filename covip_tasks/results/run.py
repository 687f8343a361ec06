"""Reading a run back: the one reader of an lmms-eval output directory, used by every consumer.

A run directory holds lmms-eval's `<stamp>_results.json` file(s) and, per task, the `--log_samples` file
`<stamp>_samples_<task>.jsonl` beside it. Several results files in one directory are one model's runs (say
captioning, then diagnostics). `read_run` reads them all, whatever the run's shape (one task, a glob, groups, a
partial group): a task is a CoViP task when the task catalogue knows its name, and groups are skipped by name, not
by lmms-eval's `group_subtasks` (which lists every task of a `--tasks a,b` run as a group of its own).

Reading never raises on bad content: a run may be untrusted (a leaderboard submission). Each file must lie inside
the run directory (no symlink out of it), have a sane size, decode as UTF-8 and parse; each sample line must hold a
valid typed record (`covip.tasks.results.records`). Anything else becomes a `Problem` naming the file, the line and
the field, and the reader goes on. `Run.raise_problems()` turns them into one error for commands that need a clean
run (`covip-judge`, `covip-leaderboard summary`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

from covip.tasks.catalogue import TaskInfo, catalogue
from covip.tasks.data.schema import DataError
from covip.tasks.results.pricing import estimated_cost_usd
from covip.tasks.results.records import (
    IDENTITY_KEY,
    RECORD_KEY,
    CaptionRecord,
    DiagnosticRecord,
    Record,
    RepicRecord,
)

RESULTS_SUFFIX = "_results.json"
_RECORD = TypeAdapter(Annotated[CaptionRecord | DiagnosticRecord | RepicRecord, Field(discriminator="kind")])


@dataclass(frozen=True)
class Limits:
    """Sizes past which a run is absurd and rejected rather than read."""

    results_bytes: int = 64 * 2**20
    samples_bytes: int = 1024 * 2**20
    records_per_task: int = 200_000
    text_chars: int = 100_000  # one caption or response


LIMITS = Limits()


@dataclass(frozen=True)
class Problem:
    """Why (part of) a run cannot be used: the file, where in it (field or line), and what is wrong."""

    file: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.where}: {self.message}"


class RunError(DataError):
    """A run has problems; the message lists them (file, line, field)."""

    what = "the run"


@dataclass(frozen=True)
class LoggedSample:
    """One line of a sample log: the record, the per-sample metric values and the model's response lmms-eval logged."""

    line: int
    doc_id: Any
    record: Record
    values: dict[str, Any]
    response: Any  # `filtered_resps[0]`: what the model answered, as lmms-eval scored it


@dataclass
class TaskRun:
    """One CoViP task of a run: what the results file reported, its config's identity, and its sample log."""

    info: TaskInfo
    results_file: Path
    samples_file: Path
    reported: dict[str, Any]
    results: dict[str, Any]  # the whole results file this task comes from
    samples: list[LoggedSample] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def records(self) -> list[Record]:
        return [s.record for s in self.samples]

    @property
    def version(self) -> Any:
        return (self.results.get("versions") or {}).get(self.name)

    @property
    def n_samples(self) -> dict[str, Any] | None:
        counts = (self.results.get("n-samples") or {}).get(self.name)
        return counts if isinstance(counts, dict) else None

    @property
    def config(self) -> dict[str, Any]:
        config = (self.results.get("configs") or {}).get(self.name)
        return config if isinstance(config, dict) else {}

    @property
    def identity(self) -> dict[str, Any] | None:
        """The run's identity the task wrote into its config: data, preset, judge, package version."""
        identity = (self.config.get("metadata") or {}).get(IDENTITY_KEY) if isinstance(self.config, dict) else None
        return identity if isinstance(identity, dict) else None

    def metric(self, name: str) -> Any:
        """The reported aggregate of metric `name` (filter `none`)."""
        return self.reported.get(f"{name},none")


@dataclass
class Run:
    """Everything lmms-eval wrote for one model in one directory."""

    root: Path
    results: dict[Path, dict[str, Any]] = field(default_factory=dict)
    tasks: dict[str, TaskRun] = field(default_factory=dict)
    other_tasks: dict[str, Path] = field(default_factory=dict)  # tasks the CoViP catalogue does not know
    problems: list[Problem] = field(default_factory=list)

    def problem(self, path: Path | str, where: str, message: str) -> None:
        self.problems.append(Problem(self.rel(path), where, message))

    def rel(self, path: Path | str) -> str:
        try:
            return str(Path(path).relative_to(self.root))
        except ValueError:
            return str(path)

    def raise_problems(self) -> Run:
        if self.problems:
            raise RunError(self.problems)
        return self

    @property
    def config(self) -> dict[str, Any]:
        """lmms-eval's `config` (model, model_args, ...) of the first results file that has one."""
        for results in self.results.values():
            if isinstance(results.get("config"), dict):
                return results["config"]
        return {}

    @property
    def model(self) -> str:
        return str(self.config.get("model") or self.root.name)

    @property
    def model_args(self) -> str:
        return str(self.config.get("model_args") or "")

    def estimated_cost_usd(self) -> float | None:
        """List-price cost of the run's API tokens (None when no usage was recorded or the model is unpriced)."""
        costs = []
        for results in self.results.values():
            total = (results.get("usage") or {}).get("total")
            args = str((results.get("config") or {}).get("model_args") or "")
            model = next((a.split("=", 1)[1] for a in args.split(",") if a.startswith("model=")), "")
            if total and model:
                output = total.get("output_tokens", 0) + total.get("reasoning_tokens", 0)
                costs.append(estimated_cost_usd(model, total.get("input_tokens", 0), output))
        return None if not costs or any(c is None for c in costs) else sum(costs)


def find_runs(paths: list[Path]) -> list[Path]:
    """Run directories under the given paths: each directory that holds a `*_results.json` (or that file's folder)."""
    roots: list[Path] = []
    for path in paths:
        if path.is_file() and path.name.endswith(RESULTS_SUFFIX):
            found = [path.parent]
        elif path.is_dir():
            found = sorted({Path(d) for d, _, files in os.walk(path) if any(f.endswith(RESULTS_SUFFIX) for f in files)})
        else:
            raise FileNotFoundError(f"{path}: neither a directory nor an lmms-eval *{RESULTS_SUFFIX} file")
        if not found:
            raise FileNotFoundError(f"{path}: no lmms-eval results (*{RESULTS_SUFFIX}) under it")
        roots.extend(r for r in found if r not in roots)
    return roots


def _safe_file(run: Run, path: Path, limit: int) -> bool:
    """The file exists, lies inside the run directory once links are resolved, and is not absurdly big."""
    if not path.resolve().is_relative_to(run.root.resolve()):
        run.problem(path, "path", f"resolves to {path.resolve()}, outside the run directory {run.root}")
        return False
    if not path.is_file():
        if path.exists():
            run.problem(path, "path", "not a regular file")
        return False
    size = path.stat().st_size
    if size > limit:
        run.problem(path, "size", f"{size} bytes is over the limit of {limit}")
        return False
    return True


def _loads(text: str) -> Any:
    """JSON, with nesting too deep for Python reported like any other parse error."""
    try:
        return json.loads(text)
    except RecursionError as exc:
        raise json.JSONDecodeError("nested too deeply", text[:80], 0) from exc


def read_run(root: Path, limits: Limits = LIMITS) -> Run:
    """Read every results file and sample log in `root` (one model's run); problems are collected, not raised."""
    run = Run(root=Path(root))
    known = catalogue()
    for path in sorted(run.root.glob(f"*{RESULTS_SUFFIX}")):
        if not _safe_file(run, path, limits.results_bytes):
            continue
        try:
            results = _loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            run.problem(path, "file", f"not valid JSON: {exc}")
            continue
        if not isinstance(results, dict) or not isinstance(results.get("results"), dict):
            run.problem(path, "results", "missing or not an object: not an lmms-eval results file")
            continue
        for name in ("versions", "config", "n-samples", "configs"):
            if name in results and not isinstance(results[name], dict):
                run.problem(path, name, f"must be an object, got {type(results[name]).__name__}")
                results[name] = {}
        run.results[path] = results
        stamp = path.name.removesuffix(RESULTS_SUFFIX)
        for task, reported in results["results"].items():
            if task in known.groups:
                continue
            if task not in known.tasks:
                run.other_tasks[task] = path
                continue
            if not isinstance(reported, dict):
                run.problem(path, f"results.{task}", f"must be an object of metrics, got {type(reported).__name__}")
                continue
            if task in run.tasks:
                first = run.rel(run.tasks[task].results_file)
                run.problem(path, f"results.{task}", f"task also reported by {first}: which run counts is ambiguous")
                continue
            log = TaskRun(known.tasks[task], path, path.parent / f"{stamp}_samples_{task}.jsonl", reported, results)
            run.tasks[task] = log
            if _safe_file(run, log.samples_file, limits.samples_bytes):
                _read_samples(run, log, limits)
            elif not log.samples_file.exists():
                run.problem(path, f"results.{task}", f"no sample log {log.samples_file.name} (run with --log_samples)")
    return run


def _read_samples(run: Run, log: TaskRun, limits: Limits) -> None:
    kind = log.info.family if log.info.family in ("caption", "repic") else "diagnostic"
    with open(log.samples_file, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if lineno > limits.records_per_task:
                run.problem(log.samples_file, "file", f"more than {limits.records_per_task} samples")
                return
            where = f"line {lineno}"
            try:
                row = _loads(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                run.problem(log.samples_file, where, f"not UTF-8: byte {raw[exc.start]:#04x} at column {exc.start + 1}")
                continue
            except json.JSONDecodeError as exc:
                run.problem(log.samples_file, where, f"not valid JSON: {exc}")
                continue
            if not isinstance(row, dict) or not isinstance(row.get(RECORD_KEY), dict):
                run.problem(log.samples_file, f"{where}: {RECORD_KEY}", "missing or not an object")
                continue
            try:
                record = _RECORD.validate_python(row[RECORD_KEY])
            except ValidationError as exc:
                for error in exc.errors():
                    loc = (
                        error["loc"][1:]
                        if error["loc"][:1] in (("caption",), ("diagnostic",), ("repic",))
                        else error["loc"]
                    )
                    place = ".".join(str(part) for part in loc)  # without the union's tag: the record's own fields
                    run.problem(log.samples_file, f"{where}: {RECORD_KEY}.{place}".rstrip("."), error["msg"])
                continue
            if record.kind != kind or (kind == "diagnostic" and record.task != log.info.family):
                got = record.kind if record.kind != kind else record.task
                run.problem(log.samples_file, f"{where}: {RECORD_KEY}", f"a {got} record in task {log.name}")
                continue
            if len(record.answer) > limits.text_chars:
                run.problem(log.samples_file, f"{where}: {RECORD_KEY}", f"answer over {limits.text_chars} characters")
                continue
            responses = row.get("filtered_resps")
            response = responses[0] if isinstance(responses, list) and len(responses) == 1 else responses
            values = {k: v for k, v in row.items() if k in log.info.metrics}
            log.samples.append(LoggedSample(lineno, row.get("doc_id"), record, values, response))
