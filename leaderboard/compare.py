"""Comparing runs (or judges) on the same samples: which sides are comparable, and their paired statistics.

A comparison is between two or more *sides*, each a label and judged caption records by task and sample id: one per
run (`run_sides`, for `covip-leaderboard compare` and the site's cohorts), or one per judge of one run's captions
(`judge_agreement.py`). Runs are compared only when they are alike, read from each task's recorded identity: the same
captioning tasks, the same data fingerprint and benchmark manifest (its images) per task, and the same judge, unless
the user allows other judges on purpose (`across_judges`). Otherwise `NotComparable` names each difference. A
difference of prompt preset is allowed (comparing presets is a fair question) and noted.

The statistics (`paired_stats`) are computed for every pair of sides on the samples all sides share, per bucket and
pooled over the buckets ("overall"), for the main tasks and for each control the runs hold. Only captioning tasks
are compared; the others are listed as not compared.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import combinations
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from covip.leaderboard.paired_stats import CONFIDENCE, METRICS, RESAMPLES, SampleScore, differences, mcnemar_exact
from covip.leaderboard.submission import load_submission
from covip.leaderboard.validate import Identity
from covip.tasks.results.records import CaptionRecord, JudgeRef
from covip.tasks.results.run import RESULTS_SUFFIX, Run, TaskRun
from covip.tasks.scoring import metrics

CONTROLS = ("none", "blind", "noctx")
OVERALL = "overall"
MCNEMAR = (
    "exact McNemar test on the per-question verdicts: a two-sided binomial test on the questions one side got right "
    "and the other wrong (scipy.stats.binomtest); questions are counted as independent pairs"
)


class NotComparable(ValueError):
    """The sides cannot be compared fairly; the message names each difference."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("not comparable:\n" + "\n".join(f"  {p}" for p in problems))


@dataclass
class Side:
    """One column of a comparison: its label, where it comes from, its judges, and its records by task and sample."""

    label: str
    source: str
    judges: list[JudgeRef]
    presets: list[str]
    records: dict[str, dict[str, CaptionRecord]]  # task -> sample id -> judged record
    tasks: dict[str, TaskRun]  # the run's tasks (where the benchmark of a task is looked for)
    model: str = ""

    def describe(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "source": self.source,
            "model": self.model,
            "judges": [j.model_dump(include={"id", "backend", "model", "preset"}) for j in self.judges],
            "presets": self.presets,
        }


@dataclass
class Settings:
    """How the statistics are computed (stated in the output)."""

    resamples: int = RESAMPLES
    seed: int = 0
    metrics: tuple[str, ...] = METRICS
    notes: list[str] = field(default_factory=list)


def caption_tasks(run: Run) -> dict[str, TaskRun]:
    return {name: task for name, task in sorted(run.tasks.items()) if task.info.family == "caption"}


def records_by_sample(label: str, task: TaskRun) -> tuple[dict[str, CaptionRecord], list[str]]:
    """The task's records by sample id, and what makes them unusable (a repeated sample, an unjudged record)."""
    problems = [
        f"{label}: task {task.name}: sample {sid} logged {n} times"
        for sid, n in Counter(r.sample_id for r in task.records).items()
        if n > 1
    ]
    problems += [
        f"{label}: task {task.name}: sample {r.sample_id} is not judged" for r in task.records if not r.verdicts
    ]
    return {r.sample_id: r for r in task.records}, problems


def _identity(label: str, task: TaskRun) -> tuple[Identity | None, str]:
    if task.identity is None:
        return None, f"{label}: task {task.name} has no recorded identity (data, judge): it cannot be paired"
    try:
        return Identity.model_validate(task.identity), ""
    except ValidationError as exc:
        return None, f"{label}: task {task.name}: malformed identity: {exc.errors()[0]['msg']}"


def _run_side(label: str, run: Run) -> tuple[Side, dict[str, Identity], list[str]]:
    """A run's side, its tasks' identities, and what makes its records or identities unusable."""
    tasks = caption_tasks(run)
    problems = [f"{label}: no captioning task in {run.root}"] if not tasks else []
    records, identities = {}, {}
    for name, task in tasks.items():
        records[name], unusable = records_by_sample(label, task)
        problems += unusable
        identity, problem = _identity(label, task)
        if identity is None:
            problems.append(problem)
        else:
            identities[name] = identity
    judges = {i.judge.id: i.judge for i in identities.values() if i.judge}
    presets = sorted({i.preset for i in identities.values()})
    model = f"{run.model}({run.model_args})" if run.model_args else run.model
    side = Side(label, str(run.root), list(judges.values()), presets, records, tasks, model=model)
    return side, identities, problems


def _facets(identity: Identity) -> dict[str, str]:
    """What must be equal between the runs of a task, in the words a refusal uses."""
    return {
        "data fingerprints": identity.data.samples_sha256[:12],
        "benchmark manifests (the images)": (identity.data.manifest_sha256 or "not recorded")[:12],
        "judges": identity.judge.id if identity.judge else "none",
    }


def run_sides(named: Sequence[tuple[str, Run]], across_judges: bool = False) -> tuple[list[Side], list[str]]:
    """One side per run, after checking the runs are alike; returns the sides and the notes on what differs but is
    allowed (presets; judges with `across_judges`). Raises `NotComparable` naming every difference that is not."""
    problems: list[str] = []
    notes: list[str] = []
    sides, identities = [], {}
    for label, run in named:
        side, identities[label], unusable = _run_side(label, run)
        sides.append(side)
        problems += unusable
    first = sides[0]
    for side in sides[1:]:
        if set(side.records) != set(first.records) and side.records and first.records:
            only_first = sorted(set(first.records) - set(side.records)) or "none"
            only_this = sorted(set(side.records) - set(first.records)) or "none"
            problems.append(
                f"the captioning tasks differ: only in {first.label}: {only_first}; only in {side.label}: {only_this}"
            )
    for task in sorted(set.intersection(*(set(found) for found in identities.values()))):
        facets = {label: _facets(found[task]) for label, found in identities.items()}
        for facet in facets[first.label]:
            values = {label: f[facet] for label, f in facets.items()}
            if len(set(values.values())) == 1:
                continue
            text = f"task {task}: {facet} differ: " + ", ".join(f"{label} {v}" for label, v in values.items())
            if facet != "judges":
                problems.append(text)
            elif across_judges:
                notes.append(f"{text} (compared across judges on purpose: --across-judges)")
            else:
                problems.append(f"{text} (pass --across-judges to compare them anyway)")
    presets = {side.label: ", ".join(side.presets) for side in sides}
    if len(set(presets.values())) > 1:
        notes.append("prompt presets differ: " + ", ".join(f"{label} {p}" for label, p in presets.items()))
    if not problems:  # (with other data, every sample would differ)
        problems = pairing_problems(sides)
    if problems:
        raise NotComparable(list(dict.fromkeys(problems)))
    return sides, list(dict.fromkeys(notes))


def pairing_problems(sides: Sequence[Side]) -> list[str]:
    """A sample all sides hold must have the same questions (ids, concepts, gold letters) and positives on each."""
    problems = []
    first = sides[0]
    for side in sides[1:]:
        for task in sorted(set(first.records) & set(side.records)):
            for sid in sorted(set(first.records[task]) & set(side.records[task])):
                a, b = first.records[task][sid], side.records[task][sid]
                if (a.questions, a.positives, a.names) != (b.questions, b.positives, b.names):
                    problems.append(
                        f"task {task}: sample {sid}: questions, names or positive concepts differ between "
                        f"{first.label} and {side.label}"
                    )
    return problems


def shared_samples(sides: Sequence[Side], task: str) -> list[str]:
    """The sample ids of `task` every side holds, in the first side's order."""
    return [sid for sid in sides[0].records.get(task, {}) if all(sid in s.records.get(task, {}) for s in sides[1:])]


def row_groups(sides: Sequence[Side]) -> list[tuple[str, str, list[str]]]:
    """(control, bucket label, tasks) of each row: every bucket, then the buckets pooled, per control."""
    infos = [sides[0].tasks[name].info for name in sorted(sides[0].records)]
    groups = []
    for control in CONTROLS:
        buckets = sorted((i.bucket, i.name) for i in infos if i.control == control)
        groups += [(control, f"{bucket}c", [name]) for bucket, name in buckets]
        if len(buckets) > 1:
            groups.append((control, OVERALL, [name for _, name in buckets]))
    return groups


@dataclass(frozen=True)
class Scored:
    """What the statistics need of one record: its scores, and whether each positive (negative) question was right."""

    score: SampleScore
    positive: list[bool]
    negative: list[bool]

    @classmethod
    def of(cls, record: CaptionRecord) -> Scored:
        pos, neg = metrics.question_counts(record, True), metrics.question_counts(record, False)
        f1 = metrics.recognition_f1(record.caption, record.names, record.positives)
        rights = [(record.is_positive(q), metrics.verdict_correct(record, q, v)) for q, v in record.judged()]
        return cls(SampleScore(*pos, *neg, f1), [r for p, r in rights if p], [r for p, r in rights if not p])


def pair_row(a: Sequence[Scored], b: Sequence[Scored], settings: Settings) -> dict[str, Any]:
    """Paired statistics of two sides' records of the same samples (in the same order)."""
    diffs = differences([x.score for x in a], [x.score for x in b], settings.metrics, settings.resamples, settings.seed)
    row: dict[str, Any] = {"samples": len(a), **{m: d.to_dict() for m, d in diffs.items()}}
    for key, attr in (("mcnemar_pos", "positive"), ("mcnemar_neg", "negative")):
        right_a = [r for x in a for r in getattr(x, attr)]
        right_b = [r for x in b for r in getattr(x, attr)]
        row[key] = mcnemar_exact(right_a, right_b).to_dict()
    return row


def compare(sides: Sequence[Side], settings: Settings, kind: str = "runs") -> dict[str, Any]:
    """The comparison's data (written as JSON and shown as a page): sides, samples, and every pair's rows."""
    tasks = sorted(sides[0].records)
    shared = {task: shared_samples(sides, task) for task in tasks}
    scored = [{t: {sid: Scored.of(side.records[t][sid]) for sid in shared[t]} for t in tasks} for side in sides]
    pairs = []
    for i, j in combinations(range(len(sides)), 2):
        rows = []
        for control, bucket, names in row_groups(sides):
            a = [scored[i][t][sid] for t in names for sid in shared[t]]
            b = [scored[j][t][sid] for t in names for sid in shared[t]]
            rows.append({"control": control, "bucket": bucket, "tasks": names, **pair_row(a, b, settings)})
        pairs.append({"a": sides[i].label, "b": sides[j].label, "rows": rows})
    others = sorted({name for side in sides for name, t in side.tasks.items() if t.info.family != "caption"})
    return {
        "kind": kind,
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sides": [side.describe() for side in sides],
        "notes": settings.notes,
        "tasks": {
            task: {"shared": len(shared[task]), "samples": {s.label: len(s.records[task]) for s in sides}}
            for task in tasks
        },
        "settings": {
            "difference": "B − A; Acc+ and Acc− in percent points (micro over questions), recognition F1 in 0..1",
            "interval": f"{CONFIDENCE:.0%} percentile interval, paired bootstrap clustered by sample "
            f"(scipy.stats.bootstrap, paired=True): {settings.resamples} resamples, seed {settings.seed}",
            "test": MCNEMAR,
            "resamples": settings.resamples,
            "seed": settings.seed,
        },
        "pairs": pairs,
        "not_compared": others,
    }


def read_runs(paths: Sequence[Path]) -> list[tuple[str, Run]]:
    """Each run directory read (`read_run`, through `load_submission` for its card; problems raised), labelled by its
    card's name or model id, made unique with its path."""
    for path in paths:
        if not any(Path(path).glob(f"*{RESULTS_SUFFIX}")):
            raise FileNotFoundError(f"{path}: not a run directory (no lmms-eval *{RESULTS_SUFFIX} in it)")
    subs = [load_submission(Path(p)) for p in paths]
    for sub in subs:
        sub.run.raise_problems()
    names = [sub.name for sub in subs]
    labels = [name if names.count(name) == 1 else f"{name} [{sub.root}]" for name, sub in zip(names, subs, strict=True)]
    if len(set(labels)) != len(labels):
        raise ValueError(f"the same run is given twice: {', '.join(str(s.root) for s in subs)}")
    return list(zip(labels, (s.run for s in subs), strict=True))
