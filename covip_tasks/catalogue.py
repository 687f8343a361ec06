"""Which CoViP tasks and groups exist, with their family, bucket, mode, control, version and metrics: read from the
shipped task YAMLs, without importing lmms-eval.

The YAMLs are the one definition: the `lmms_eval` command checks task names against this catalogue, the run reader
knows a task of a results file by it, and the leaderboard learns new tasks from it as data. Each metric comes with
the aggregation the YAML names, resolved to the function in `covip.tasks.scoring.metrics`, so a recomputation uses
exactly what the run used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

FAMILIES = ("caption", "lsd", "lar", "itr", "repic")


@dataclass(frozen=True)
class TaskInfo:
    """One task: its family (caption or a diagnostic), bucket, mode, control, version and metrics."""

    name: str
    family: str
    bucket: int | None
    mode: str
    control: str
    version: Any
    aggregations: tuple[tuple[str, str], ...]  # (metric, the aggregation the YAML names)

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.aggregations)

    def aggregation(self, metric: str) -> Callable[[list[Any]], float]:
        from covip.tasks.scoring.metrics import aggregation_of

        return aggregation_of(dict(self.aggregations)[metric])


@dataclass(frozen=True)
class Catalogue:
    tasks: dict[str, TaskInfo]
    groups: dict[str, tuple[str, ...]]

    def leaves(self, names: Iterable[str]) -> set[str]:
        """The tasks that `names` (tasks or groups, nested) stand for."""
        out: set[str] = set()
        for name in names:
            out |= self.leaves(self.groups[name]) if name in self.groups else ({name} if name in self.tasks else set())
        return out


class _Loader(yaml.SafeLoader):
    """Safe YAML that reads lmms-eval's `!function a.b` tags as plain strings."""


_Loader.add_multi_constructor("!", lambda loader, suffix, node: loader.construct_scalar(node))


def tasks_dir() -> Path:
    return Path(__file__).resolve().parent / "lmms" / "tasks"


def _load(path: Path) -> dict:
    doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader) or {}
    if "include" in doc:
        base = _load(path.parent / doc["include"])
        doc = {**base, **{k: v for k, v in doc.items() if k != "include"}}
    return doc


@cache
def catalogue() -> Catalogue:
    """Every task and group YAML shipped under `tasks/`."""
    tasks: dict[str, TaskInfo] = {}
    groups: dict[str, tuple[str, ...]] = {}
    for path in sorted(tasks_dir().rglob("*.yaml")):
        doc = _load(path)
        if "group" in doc:
            groups[doc["group"]] = tuple(doc["task"])
            continue
        kwargs = doc.get("dataset_kwargs") or {}
        family = kwargs.get("task", "caption" if "bucket" in kwargs else None)  # RePIC tasks have both
        if family not in FAMILIES:
            raise ValueError(f"{path}: task {doc.get('task')!r} has an unknown family {family!r}")
        tasks[doc["task"]] = TaskInfo(
            name=doc["task"],
            family=family,
            bucket=int(kwargs["bucket"]) if "bucket" in kwargs else None,
            mode=kwargs.get("mode", "direct"),
            control=kwargs.get("control", "none"),
            version=(doc.get("metadata") or {}).get("version"),
            aggregations=tuple((m["metric"], str(m["aggregation"])) for m in doc.get("metric_list", [])),
        )
    return Catalogue(tasks, groups)
