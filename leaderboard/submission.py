"""Reading a leaderboard submission: lmms-eval output directories, their sample logs and a model card.

A submission is one directory holding lmms-eval's `<stamp>_results.json` file(s) and, per task,
the `--log_samples` file `<stamp>_samples_<task>.jsonl` beside it (trainer checkpoint
evaluations write the same files). Several results files in one directory are one model's runs
(say captioning, then diagnostics). Reading is defensive because a submission is untrusted: each
file must lie inside the submission directory (no symlink out of it), have a sane size and parse;
anything else becomes a `Problem` naming the file and field, and `validate.py` checks the rest.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from covip.leaderboard.tasks import TaskInfo, is_group, task_info
from covip.tasks.scoring.metrics import RECORD_KEY

RESULTS_SUFFIX = "_results.json"
CARD_FILE = "card.yaml"
CARD_FIELDS = ("id", "name", "parameters", "base_model", "method", "training_data", "access", "date", "notes")
ACCESS = ("open", "api")
OBJECT_FIELDS = ("versions", "config", "n-samples", "covip", "configs", "group_subtasks")
MODEL_ACCESS = {"covip_gpt": "api", "covip_gemini": "api", "covip_qwen3_vl": "open", "covip_vllm": "open"}
BASELINES = ("covip_oracle", "covip_shortcut", "covip_blind", "covip_retrieval")


@dataclass(frozen=True)
class Limits:
    """Sizes past which a submission is absurd and rejected rather than read."""

    results_bytes: int = 64 * 2**20
    samples_bytes: int = 1024 * 2**20
    card_bytes: int = 64 * 2**10
    records_per_task: int = 200_000
    text_chars: int = 100_000  # one caption or response
    card_chars: int = 500  # one card value


LIMITS = Limits()


@dataclass(frozen=True)
class Problem:
    """Why a submission is rejected: the file, the field (or line) and what is wrong."""

    file: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.where}: {self.message}"


@dataclass
class TaskLog:
    """One task of a submission: what the results file reported and the per-sample records."""

    info: TaskInfo
    results_file: Path
    samples_file: Path
    reported: dict[str, Any]
    records: list[dict] = field(default_factory=list)
    doc_ids: list[Any] = field(default_factory=list)


@dataclass
class Submission:
    root: Path
    results: dict[Path, dict] = field(default_factory=dict)
    tasks: dict[str, TaskLog] = field(default_factory=dict)
    card: dict[str, Any] = field(default_factory=dict)
    card_file: str = ""
    problems: list[Problem] = field(default_factory=list)

    def problem(self, path: Path | str, where: str, message: str) -> None:
        self.problems.append(Problem(self.rel(path), where, message))

    def rel(self, path: Path | str) -> str:
        try:
            return str(Path(path).relative_to(self.root))
        except ValueError:
            return str(path)

    @property
    def config(self) -> dict[str, Any]:
        for results in self.results.values():
            if isinstance(results.get("config"), dict):
                return results["config"]
        return {}

    @property
    def model_id(self) -> str:
        """The card's `id`, else lmms-eval's model name with its model_args (a checkpoint path, say)."""
        if self.card.get("id"):
            return str(self.card["id"])
        model, args = self.config.get("model") or self.root.name, self.config.get("model_args") or ""
        return f"{model}({args})" if args else str(model)

    @property
    def name(self) -> str:
        return str(self.card.get("name") or self.model_id)

    @property
    def derived_card(self) -> dict[str, str]:
        """Card fields the results themselves establish, shown where the card leaves them out.

        Only what lmms-eval's config says for sure: the base model is `pretrained=`, `lora=` means a
        LoRA adapter, the adapter tells open weights from an API, a baseline is one of ours, and
        the run's date. Parameters or training data are never guessed.
        """
        model, args = str(self.config.get("model") or ""), parse_model_args(self.config.get("model_args"))
        card: dict[str, str] = {}
        if args.get("pretrained"):
            card["base_model"] = args["pretrained"]
        if args.get("lora"):
            card["method"], card["notes"] = "LoRA adapter", f"adapter: {args['lora']}"
        if model in BASELINES:
            card["method"] = f"baseline ({model.removeprefix('covip_')}, shipped with CoViP bench)"
        if model in MODEL_ACCESS:
            card["access"] = MODEL_ACCESS[model]
        stamps = sorted(str(r.get("date", "")) for r in self.results.values())
        m = re.match(r"^(\d{4})(\d{2})(\d{2})", stamps[-1]) if stamps else None
        if m:
            card["date"] = f"{m[1]}-{m[2]}-{m[3]}"
        return card

    @property
    def covip(self) -> dict[str, Any]:
        """The `covip` provenance block of the first results file that has one."""
        for results in self.results.values():
            if isinstance(results.get("covip"), dict):
                return results["covip"]
        return {}


def parse_model_args(model_args: Any) -> dict[str, str]:
    """lmms-eval's `--model_args` string `key=value,key=value` as a dict (anything else: empty)."""
    if not isinstance(model_args, str):
        return {}
    pairs = (item.split("=", 1) for item in model_args.split(",") if "=" in item)
    return {key.strip(): value.strip() for key, value in pairs}


def discover(paths: list[Path]) -> list[Path]:
    """Submission directories under the given paths: each directory holding a `*_results.json`."""
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


def _safe_file(sub: Submission, path: Path, limit: int) -> bool:
    """The file exists, lies inside the submission directory once links are resolved, and is not absurdly big."""
    if not path.resolve().is_relative_to(sub.root.resolve()):
        sub.problem(path, "path", f"resolves to {path.resolve()}, outside the submission directory {sub.root}")
        return False
    if not path.is_file():
        if path.exists():
            sub.problem(path, "path", "not a regular file")
        return False
    size = path.stat().st_size
    if size > limit:
        sub.problem(path, "size", f"{size} bytes is over the limit of {limit}")
        return False
    return True


def load_submission(root: Path, card_path: Path | None = None, limits: Limits = LIMITS) -> Submission:
    """Read every results file, sample log and the card of one submission directory.

    NaN and Infinity parse (Python's json accepts them) so that validation can say where they are.
    """
    sub = Submission(root=root)
    for path in sorted(root.glob(f"*{RESULTS_SUFFIX}")):
        if not _safe_file(sub, path, limits.results_bytes):
            continue
        try:
            results = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            sub.problem(path, "file", f"not valid JSON: {exc}")
            continue
        if not isinstance(results, dict) or not isinstance(results.get("results"), dict):
            sub.problem(path, "results", "missing or not an object: not an lmms-eval results file")
            continue
        for name in OBJECT_FIELDS:
            if name in results and not isinstance(results[name], dict):
                sub.problem(path, name, f"must be an object, got {type(results[name]).__name__}")
                results[name] = {}
        sub.results[path] = results
        _load_tasks(sub, path, results, limits)
    _load_card(sub, card_path, limits)
    return sub


def _load_tasks(sub: Submission, path: Path, results: dict, limits: Limits) -> None:
    stamp = path.name.removesuffix(RESULTS_SUFFIX)
    groups = set(results.get("group_subtasks") or {})
    for task, reported in results["results"].items():
        if is_group(task) or task in groups:
            continue
        info = task_info(task)
        if not isinstance(reported, dict):
            sub.problem(path, f"results.{task}", f"must be an object of metrics, got {type(reported).__name__}")
            continue
        if info is None:
            sub.problem(path, f"results.{task}", "unknown task: not one of the CoViP tasks this leaderboard knows")
            continue
        if task in sub.tasks:
            first = sub.rel(sub.tasks[task].results_file)
            sub.problem(path, f"results.{task}", f"task also reported by {first}: which run counts is ambiguous")
            continue
        samples = path.parent / f"{stamp}_samples_{task}.jsonl"
        log = TaskLog(info, path, samples, reported)
        sub.tasks[task] = log
        if not _safe_file(sub, samples, limits.samples_bytes):
            if not samples.exists():
                sub.problem(path, f"results.{task}", f"no per-sample log {samples.name} (run with --log_samples)")
            continue
        _read_samples(sub, log, limits)


def _read_samples(sub: Submission, log: TaskLog, limits: Limits) -> None:
    with open(log.samples_file, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if lineno > limits.records_per_task:
                sub.problem(log.samples_file, "file", f"more than {limits.records_per_task} samples")
                return
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                sub.problem(log.samples_file, f"line {lineno}", f"not valid JSON: {exc}")
                continue
            record = row.get(RECORD_KEY) if isinstance(row, dict) else None
            if not isinstance(record, dict):
                sub.problem(log.samples_file, f"line {lineno}: {RECORD_KEY}", "missing or not an object")
                continue
            record["_line"] = lineno
            log.records.append(record)
            log.doc_ids.append(row.get("doc_id"))


def _load_card(sub: Submission, card_path: Path | None, limits: Limits) -> None:
    """The model card: `--card` file, else `card.yaml` in the submission, else the results' `covip.card`."""
    if card_path is not None or (sub.root / CARD_FILE).exists():
        path = card_path or sub.root / CARD_FILE
        if card_path is None and not _safe_file(sub, path, limits.card_bytes):
            return
        if card_path is not None and path.stat().st_size > limits.card_bytes:
            sub.problem(path, "size", f"{path.stat().st_size} bytes is over the limit of {limits.card_bytes}")
            return
        try:
            card = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            sub.problem(path, "file", f"not valid YAML: {exc}")
            return
        sub.card_file = str(path) if card_path is not None else CARD_FILE
    else:
        card = sub.covip.get("card")
        if card is None:
            return
        sub.card_file = "results covip.card"
    if not isinstance(card, dict):
        sub.problem(sub.card_file, "card", "must be a mapping of card fields")
        return
    # YAML reads an unquoted `date: 2025-01-01` as a date: keep it, as its ISO text.
    sub.card = {key: value.isoformat() if isinstance(value, date) else value for key, value in card.items()}
