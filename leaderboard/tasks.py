"""Which CoViP tasks exist, their versions and metrics: read from the shipped lmms-eval task YAMLs.

The leaderboard learns tasks as data: a task YAML added under `covip_tasks/lmms/tasks/` (for
instance the diagnostics `covip_lsd`, `covip_lar_cag`) is known here without code changes, with
its version and metric names. What cannot be read from YAML is how to recompute each metric from
the per-sample records; `RECOMPUTE` holds that, straight from `covip.tasks.scoring.metrics` (the same
tables the tasks aggregate with).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from covip.tasks.scoring import metrics

Records = list[dict]

RECOMPUTE: dict[str, dict[str, Callable[[Records], float]]] = {
    "caption": metrics.CAPTION_METRICS,
    **metrics.DIAGNOSTIC_METRICS,
}
DIAGNOSTICS = ("lsd", "lar", "itr")


@dataclass(frozen=True)
class TaskInfo:
    """One known task: its family (caption or a diagnostic), bucket, mode, control, version, metrics."""

    name: str
    family: str
    bucket: int | None
    mode: str
    control: str
    version: Any
    metrics: tuple[str, ...]


class _Loader(yaml.SafeLoader):
    """Safe YAML that reads lmms-eval's `!function a.b` tags as plain strings."""


_Loader.add_multi_constructor("!", lambda loader, suffix, node: loader.construct_scalar(node))


def tasks_dir() -> Path:
    return Path(importlib.import_module("covip.tasks.lmms.tasks").__file__).resolve().parent


def _load(path: Path) -> dict:
    doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader) or {}
    if "include" in doc:
        base = _load(path.parent / doc["include"])
        doc = {**base, **{k: v for k, v in doc.items() if k != "include"}}
    return doc


@cache
def catalogue() -> tuple[dict[str, TaskInfo], frozenset[str]]:
    """(tasks by name, group names) from every task YAML shipped with covip.tasks."""
    tasks: dict[str, TaskInfo] = {}
    groups: set[str] = set()
    for path in sorted(tasks_dir().rglob("*.yaml")):
        doc = _load(path)
        if "group" in doc:
            groups.add(doc["group"])
            continue
        kwargs = doc.get("dataset_kwargs") or {}
        family = "caption" if "bucket" in kwargs else kwargs.get("task")
        if family not in RECOMPUTE:
            raise ValueError(f"{path}: task {doc.get('task')!r} has a family the leaderboard does not know: {family!r}")
        tasks[doc["task"]] = TaskInfo(
            name=doc["task"],
            family=family,
            bucket=int(kwargs["bucket"]) if "bucket" in kwargs else None,
            mode=kwargs.get("mode", "direct"),
            control=kwargs.get("control", "none"),
            version=(doc.get("metadata") or {}).get("version"),
            metrics=tuple(m["metric"] for m in doc.get("metric_list", [])),
        )
    return tasks, frozenset(groups)


def task_info(name: str) -> TaskInfo | None:
    return catalogue()[0].get(name)


def is_group(name: str) -> bool:
    return name in catalogue()[1]
