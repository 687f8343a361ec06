"""The `lmms_eval` command: lmms-eval's own CLI with CoViP's tasks on the include path and an honest exit status.

lmms-eval 0.7.3 finds outside tasks only through `--include_path`, and exits 0 even when an evaluation failed (it
prints the exception and goes on; it has no hook that reports the failure). Users type
`lmms_eval --model M --tasks 'covip_*'`; this command:
1. checks what a user gets wrong first, before anything heavy loads, and says it in one line (exit 2): an unknown
   `covip_*` task or model (with "did you mean"), an unknown argument of a `covip_*` model, a missing dataset;
2. runs lmms-eval's CLI unchanged, with our task directory added to the include path;
3. exits 1 when a CoViP task it was asked for did not finish on this process (judged and every sample scored:
   lmms-eval caught an error on the way, perhaps before the task even loaded), or when a results file this run
   wrote has a task without finite metrics.
Everything about the run's identity is in the task configs (`results["configs"][task]["metadata"]["covip"]`),
written by the tasks themselves: nothing of lmms-eval is patched.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

HELP = """lmms_eval (CoViP bench): lmms-eval with the covip_* tasks registered (no --include_path needed).

usage: lmms_eval --model MODEL [--model_args K=V,...] --tasks TASKS [--output_path DIR --log_samples] [...]
       lmms_eval eval --help      every evaluation option (lmms-eval's own help)
       lmms_eval tasks list       every task, ours included
       lmms_eval {models,version,...}   lmms-eval's other commands

example: lmms_eval --model covip_oracle --tasks 'covip_*' --output_path runs/x --log_samples

CoViP tasks: covip_caption (group of covip_caption_1c..4c), covip_caption_blind, covip_caption_noctx,
  covip_diag (LSD, LAR, ITR, direct and CAG), covip_diag_controls; 'covip_*' runs them all.
RePIC tasks: repic_skip and repic_retrieval (name precision/recall/F1 at 1, 2 and 4 concepts), 'repic_*'.
CoViP models: covip_qwen3_vl, covip_vllm, covip_gpt, covip_gemini, and the baselines covip_oracle,
  covip_retrieval, covip_structure, covip_shortcut, covip_blind.
Environment: COVIP_DATA (dataset; default: the `covip-data build` directory), COVIP_JUDGE and
  COVIP_JUDGE_OPTIONS (judge; default: the offline rule judge), COVIP_PRESET (covip or paper),
  COVIP_CAPTION_INSTRUCTION (an instruction file used verbatim), COVIP_DATA_LENIENT=1 (skip malformed
  records of the paper's formats), COVIP_DATA_REPIC (a RePIC directory).
Exit status: 0 done; 1 an evaluation failed (lmms-eval itself exits 0 then); 2 bad input (unknown task, model
  or model argument, missing dataset), said in one line; add --verbosity DEBUG for a traceback.
"""


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


class BadInput(ValueError):
    """What the user asked for cannot run; the message says what and how to fix it."""


def _option(argv: list[str], name: str) -> str | None:
    """The value of `--name V` or `--name=V` in argv (the last one wins, as in argparse)."""
    value = None
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(name + "="):
            value = arg.split("=", 1)[1]
    return value


def _did_you_mean(word: str, known: list[str]) -> str:
    close = difflib.get_close_matches(word, known, n=3, cutoff=0.6)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def check_tasks(tasks: str) -> list[str]:
    """The CoViP tasks selected by `--tasks`; an unknown `covip_*` name or pattern is an error."""
    from covip.tasks.catalogue import catalogue

    known = catalogue()
    names = sorted({*known.tasks, *known.groups})
    selected: set[str] = set()
    for item in (t.strip() for t in tasks.split(",") if t.strip()):
        matches = fnmatch.filter(names, item) if any(c in item for c in "*?[") else [n for n in names if n == item]
        if matches:
            selected.update(matches)
        elif item.startswith("covip"):
            raise BadInput(f"unknown CoViP task {item!r}{_did_you_mean(item, names)}; see `lmms_eval tasks list`")
    return sorted(known.leaves(selected))


def init_arguments(cls: type) -> list[str]:
    """The keyword arguments `cls(...)` takes, following `**kwargs` that an `__init__` hands to its base class."""
    names: list[str] = []
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = inspect.signature(klass.__init__).parameters.values()
        names += [p.name for p in params if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break
    return list(dict.fromkeys(names))


def check_model(model: str, model_args: str | None) -> None:
    """An unknown `covip_*` model, or an argument its adapter does not take, is an error naming it."""
    if not model.startswith("covip"):
        return
    import lmms_eval.models  # noqa: F401  (loads the entry points, ours included, before we read them)

    from covip.model_adapters.registry import MANIFESTS

    classes = {m.model_id: m.chat_class_path for m in MANIFESTS}
    if model not in classes:
        raise BadInput(f"unknown CoViP model {model!r}{_did_you_mean(model, sorted(classes))}")
    module, _, name = classes[model].rpartition(".")
    cls = getattr(__import__(module, fromlist=[name]), name)
    params = inspect.signature(cls.__init__).parameters
    accepted = init_arguments(cls)
    given = [kv.split("=", 1)[0].strip() for kv in (model_args or "").split(",") if kv.strip()]
    for key in given:
        if key not in accepted:
            hint = _did_you_mean(key, accepted)
            raise BadInput(f"{model}: unknown model argument {key!r}{hint}; it takes: {', '.join(accepted)}")
    required = [p for p in params if p != "self" and params[p].default is inspect.Parameter.empty]
    required = [
        p for p in required if params[p].kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    ]
    missing = [p for p in required if p not in given]
    if missing:
        raise BadInput(f"{model}: missing model argument(s) {', '.join(missing)} (--model_args {missing[0]}=...)")


def check_data(tasks: list[str]) -> None:
    """Every selected task's dataset is where the run will look for it."""
    from covip.tasks.catalogue import catalogue
    from covip.tasks.data.sources import missing_data
    from covip.tasks.repic.dataset import missing_data as missing_repic_data

    for family in sorted({catalogue().tasks[t].family for t in tasks}):
        problem = missing_repic_data() if family == "repic" else missing_data(family)
        if problem:
            raise BadInput(problem)


def results_written_since(output_path: str | None, start: float) -> list[Path]:
    if not output_path:
        return []
    root = Path(output_path)
    return sorted(p for p in root.rglob("*_results.json") if p.stat().st_mtime >= start) if root.is_dir() else []


def failed_tasks(results: dict[str, Any]) -> list[str]:
    """Tasks (not groups) of a results file whose metrics are missing or not finite."""
    groups = set(results.get("groups", {})) | {g for g, subs in results.get("group_subtasks", {}).items() if subs}
    bad = []
    for task, values in sorted(results.get("results", {}).items()):
        if task in groups:
            continue
        numbers = [v for k, v in values.items() if "," in k and "stderr" not in k and isinstance(v, (int, float))]
        if not numbers or any(not math.isfinite(v) for v in numbers):
            bad.append(task)
    return bad


def run(argv: list[str]) -> int:
    """Check, then evaluate with lmms-eval's own CLI, then say whether every CoViP task finished."""
    tasks = _option(argv, "--tasks")
    model = _option(argv, "--model") or ""
    covip = check_tasks(tasks) if tasks else []
    check_model(model, _option(argv, "--model_args"))
    check_data(covip)

    import lmms_eval.__main__ as lm

    from covip.tasks.lmms.task import CovipTask

    sys.argv = ["lmms_eval", *argv]
    _, args = lm.parse_eval_args()
    extra = [args.include_path] if isinstance(args.include_path, str) else list(args.include_path or [])
    args.include_path = [str(tasks_path()), *extra]
    start, mark = time.time(), len(CovipTask.loaded)
    lm.cli_evaluate(args)

    finished = {t.config.task for t in CovipTask.loaded[mark:] if t.done}
    problems = [f"task {t} did not finish (see the error above)" for t in covip if t not in finished]
    for path in results_written_since(args.output_path, start):
        bad = failed_tasks(json.loads(path.read_text(encoding="utf-8")))
        if bad:
            problems.append(f"{path}: no finite metrics for task(s) {', '.join(bad)}")
    if problems:
        print("lmms_eval (covip): FAILED: " + "; ".join(problems), file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(HELP)
        return 0
    if argv[0] == "eval" and argv[1:2] not in (["-h"], ["--help"]):
        argv = argv[1:]
    if not argv[0].startswith("-"):  # lmms-eval's subcommands (tasks, models, version, eval --help, ...)
        from lmms_eval.cli.dispatch import main as dispatch

        if argv[:1] == ["tasks"] and "--include-path" not in argv:
            argv = [*argv, "--include-path", str(tasks_path())]
        sys.argv = ["lmms_eval", *argv]
        dispatch()
        return 0
    try:
        return run(argv)
    except BadInput as exc:
        if _option(argv, "--verbosity") == "DEBUG":
            raise
        print(f"lmms_eval: error: {exc}", file=sys.stderr)
        return 2


def entry() -> None:
    sys.exit(main())
