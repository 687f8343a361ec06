"""The leaderboard's data: per model scores recomputed from validated records, grouped into cohorts of like runs
and ranked within each, with the paper's reported figures kept apart.

Everything is recomputed from the typed records with `covip.tasks.scoring.metrics` (a site shows nothing a sample
log does not support): Acc+ and Acc− per bucket and pooled, with 95% intervals clustered by sample; the ranking
score (`stats.combined_score`); controls; recognition F1; diagnostics (direct and CAG) as the mean per-sample score
with a t interval; and the recognition-vs-retrieval slope with its reliability.

Runs are ranked only against like runs: a cohort is the submissions with the same tasks, the same data fingerprint
per task family, the same judges and the same prompt preset. The cohort with the most submissions is the main
table; each other cohort is ranked apart, and its label says how it differs. The result is plain JSON, written
beside the site.

The RePIC tasks (family `repic`) are another benchmark, so they get tables of their own: a submission's CoViP tasks
make its CoViP entry and its RePIC tasks its RePIC entry (a run holding both has both). A RePIC entry holds each
task's precision / recall / F1 under the `repic` preset, the corrected `name_*` metric and `retrieval_recall`,
recomputed from the records; RePIC cohorts are runs of the same RePIC tasks on the same RePIC files (their sha256)
with the same retriever, ranked by the mean corrected F1 over their tasks.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from typing import Any

from covip.leaderboard.stats import combined_score, fit_slope, mean_ci95
from covip.leaderboard.validate import COVIP_FAMILIES, DIAGNOSTICS, REPIC, Report
from covip.tasks.results.records import CaptionRecord, DiagnosticRecord, RepicRecord
from covip.tasks.results.run import Run
from covip.tasks.scoring import metrics

BUCKETS = ("1c", "2c", "3c", "4c")
CONTROLS = ("blind", "noctx")
MODES = ("direct", "cag")


def caption_score(records: Sequence[CaptionRecord]) -> dict[str, Any]:
    """Acc+/Acc− (micro, clustered CI, macro), the ranking score, recognition F1 and judge failures."""
    values = [metrics.sample_values(r) for r in records]
    score = {name: metrics.AGGREGATIONS[name]([v[name] for v in values]) for name in metrics.CAPTION_METRICS}
    return {
        "n": len(records),
        "score": combined_score(score["acc_pos"], score["acc_neg"]),
        **score,
        "acc_pos_ci95": list(metrics.micro_ci95(records, positive=True)),
        "acc_neg_ci95": list(metrics.micro_ci95(records, positive=False)),
    }


def diagnostic_score(records: Sequence[DiagnosticRecord]) -> dict[str, Any]:
    """Mean per-sample score (percent) with its t interval, clipped to the score's range 0..100."""
    mean, ci = mean_ci95([metrics.diagnostic_score(r) for r in records])
    return {"n": len(records), "score": mean, "score_ci95": [max(0.0, ci[0]), min(100.0, ci[1])] if ci else None}


def regression_points(records: Sequence[CaptionRecord]) -> list[tuple[float, float]]:
    """(recognition F1, Acc+ as a fraction) per caption sample that has positive questions."""
    points = []
    for record in records:
        correct, total = metrics.question_counts(record, positive=True)
        if total:
            points.append((metrics.recognition_f1(record.caption, record.names, record.positives), correct / total))
    return points


def repic_score(records: Sequence[RepicRecord], names: Sequence[str]) -> dict[str, Any]:
    """The metrics `names` of one RePIC task, each as the task's aggregation computes it from its records."""
    return {"n": len(records), **{name: metrics.aggregate(name, records) for name in names}}


def repic_scores(run: Run) -> dict[str, dict[str, Any]]:
    """Every RePIC task of a run, by name, with the metrics its YAML declares."""
    return {
        name: repic_score(task.records, task.info.metrics)
        for name, task in sorted(run.tasks.items())
        if task.info.family == REPIC
    }


def card(report: Report) -> tuple[dict[str, Any], list[str]]:
    """The shown card: the given card's fields over those derived from the results, and which were derived."""
    sub = report.submission
    given = {k: v for k, v in sub.card.items() if k not in ("id", "name") and v not in (None, "")}
    derived = {k: v for k, v in sub.derived_card.items() if k not in given}
    return {**derived, **given}, sorted(derived)


def tasks_of(report: Report, families: Sequence[str]) -> list[str]:
    return sorted(name for name, task in report.submission.run.tasks.items() if task.info.family in families)


def comparison_key(report: Report) -> dict[str, Any]:
    """What makes two submissions' CoViP parts comparable: tasks, data fingerprint per family, judges, preset."""
    run, tasks = report.submission.run, tasks_of(report, COVIP_FAMILIES)
    identities = {name: identity for name, identity in report.identities.items() if name in tasks}
    family = {name: run.tasks[name].info.family for name in identities}
    return {
        "tasks": tasks,
        "data": dict(sorted({family[n]: i.data.samples_sha256 for n, i in identities.items()}.items())),
        "judges": dict(sorted({family[n]: i.judge.id for n, i in identities.items() if i.judge}.items())),
        "preset": sorted({i.preset for i in identities.values()}),
    }


def run_scores(run: Run) -> dict[str, Any]:
    """Every CoViP score of a run: captioning per bucket and overall, the controls, the diagnostics, the slope's
    points (RePIC tasks are scored by `repic_scores`)."""
    main: dict[str, list[CaptionRecord]] = defaultdict(list)
    controls: dict[str, dict[str, list[CaptionRecord]]] = defaultdict(lambda: defaultdict(list))
    diagnostics: dict[str, dict[str, list[DiagnosticRecord]]] = defaultdict(lambda: defaultdict(list))
    for task in run.tasks.values():
        info = task.info
        if info.family not in COVIP_FAMILIES:
            continue
        if info.family == "caption":
            target = main if info.control == "none" else controls[info.control]
            target[f"{info.bucket}c"].extend(task.records)
        else:
            variant = info.mode if info.control == "none" else info.control
            diagnostics[info.family][variant].extend(task.records)
    caption = {b: caption_score(main[b]) for b in BUCKETS if main.get(b)}
    pooled = [r for b in BUCKETS for r in main.get(b, [])]
    if pooled:
        caption["overall"] = caption_score(pooled)
    control_scores = {}
    for control, buckets in sorted(controls.items()):
        scores = {b: caption_score(rs) for b, rs in sorted(buckets.items())}
        scores["overall"] = caption_score([r for rs in buckets.values() for r in rs])
        control_scores[control] = scores
    return {
        "caption": caption,
        "controls": control_scores,
        "diagnostics": {
            d: {v: diagnostic_score(rs) for v, rs in sorted(diagnostics[d].items())}
            for d in DIAGNOSTICS
            if d in diagnostics
        },
        "points": regression_points(pooled),
    }


def submission_fields(report: Report) -> dict[str, Any]:
    """What every entry of a submission shows of it: ids, name, card, lmms-eval model."""
    sub = report.submission
    shown, derived = card(report)
    return {
        "id": sub.model_id,
        "name": sub.name,
        "card": shown,
        "card_derived": derived,
        "card_source": sub.card_file or "none (no card given)",
        "model": sub.run.model,
        "model_args": sub.run.model_args,
    }


def model_entry(report: Report) -> dict[str, Any]:
    """The CoViP part of one validated submission as a leaderboard entry."""
    scores = run_scores(report.submission.run)
    judge = next((i.judge for _, i in sorted(report.identities.items()) if i.judge), None)
    key = comparison_key(report)
    return {
        **submission_fields(report),
        "judge": judge.model_dump(include={"id", "backend", "model", "preset"}) if judge else {},
        "checks": report.checks(key["tasks"]),
        "caption": scores["caption"],
        "controls": scores["controls"],
        "diagnostics": scores["diagnostics"],
        "slope": fit_slope(scores["points"]).to_dict(),
        "points": [[round(x, 6), round(y, 6)] for x, y in scores["points"]],
        "tasks": key["tasks"],
        "comparison": key,
        "covip_bench": sorted({report.identities[t].covip_bench for t in key["tasks"]}),
    }


def repic_key(report: Report) -> dict[str, Any]:
    """What makes two submissions' RePIC parts comparable: tasks, each task's RePIC files (sha256), retriever."""
    tasks = tasks_of(report, (REPIC,))
    repic = {name: report.identities[name].repic for name in tasks}  # validation requires it of every RePIC task
    retrievers = {json.dumps(r.retriever.model_dump(), sort_keys=True) for r in repic.values() if r.retriever}
    return {
        "tasks": tasks,
        "data": {name: r.sha256.model_dump() for name, r in repic.items()},
        "retriever": [json.loads(r) for r in sorted(retrievers)],
    }


def repic_entry(report: Report) -> dict[str, Any]:
    """The RePIC part of one validated submission: each task's scores, and the means that rank it."""
    scores, key = repic_scores(report.submission.run), repic_key(report)
    return {
        **submission_fields(report),
        "data_checked": report.data_checked(key["tasks"]),
        "repic": scores,
        "score": metrics.mean(s["name_f1"] for s in scores.values()),
        "score_repic": metrics.mean(s["f1"] for s in scores.values()),
        "n": sum(s["n"] for s in scores.values()),
        "tasks": key["tasks"],
        "comparison": key,
    }


def covip_rank_value(entry: dict) -> float:
    """The CoViP ranking score: overall Score (NaN without captioning)."""
    return entry["caption"].get("overall", {}).get("score", math.nan)


def repic_rank_value(entry: dict) -> float:
    """The RePIC ranking score: the mean corrected F1 over the entry's RePIC tasks."""
    return entry["score"]


def rank(entries: list[dict], value_of: Callable[[dict], float]) -> list[dict]:
    """Entries ordered by ranking score, highest first (ties share a rank; entries without one come last)."""

    def order(entry: dict) -> float:
        value = value_of(entry)
        return -value if math.isfinite(value) else math.inf

    ordered = sorted(entries, key=lambda e: (order(e), e["name"]))
    previous, position = None, 0
    for i, entry in enumerate(ordered, start=1):
        value = order(entry)
        if value != previous:
            position, previous = i, value
        entry["rank"] = position if math.isfinite(value) else None
    return ordered


def _tasks(key: dict[str, Any]) -> str:
    return f"{len(key['tasks'])} task{'s' if len(key['tasks']) != 1 else ''}"


def _describe(key: dict[str, Any]) -> str:
    data = ", ".join(f"{family} {sha[:10]}" for family, sha in key["data"].items()) or "none"
    judges = ", ".join(sorted(set(key["judges"].values()))) or "none"
    return f"{_tasks(key)} · data {data} · judge {judges} · preset {', '.join(key['preset'])}"


def _describe_repic(key: dict[str, Any]) -> str:
    """The RePIC files are shown as one short fingerprint over every task's files."""
    data = hashlib.sha256(json.dumps(key["data"], sort_keys=True).encode()).hexdigest()[:10]
    retrievers = ", ".join(r["name"] for r in key["retriever"]) or "none (retrieval skipped)"
    return f"{_tasks(key)} · RePIC files {data} · retriever {retrievers}"


@dataclass(frozen=True)
class Table:
    """How one benchmark's entries are grouped into like runs, described and ranked."""

    prefix: str  # of a cohort's label
    facets: dict[str, str]  # comparison-key field -> how a cohort that differs in it is labelled
    describe: Callable[[dict[str, Any]], str]
    rank_value: Callable[[dict], float]


COVIP_TABLE = Table(
    "Ranked",
    {"tasks": "other tasks", "data": "other data", "judges": "another judge", "preset": "another preset"},
    _describe,
    covip_rank_value,
)
REPIC_TABLE = Table(
    "RePIC ranked",
    {"tasks": "other tasks", "data": "other RePIC files", "retriever": "another retriever"},
    _describe_repic,
    repic_rank_value,
)


def _label(table: Table, key: dict[str, Any], main: dict[str, Any]) -> str:
    """What a cohort is, and for all but the main table, how it differs from it."""
    if key == main:
        return f"{table.prefix}: {table.describe(key)}"
    differs = ", ".join(text for facet, text in table.facets.items() if key[facet] != main[facet])
    return f"{table.prefix} apart ({differs}): {table.describe(key)}"


def cohorts(entries: list[dict], table: Table) -> tuple[list[dict], list[dict]]:
    """(cohorts, entries): like entries grouped, the largest group first, each ranked on its own and labelled."""
    by_key: dict[str, list[dict]] = defaultdict(list)
    for entry in entries:
        by_key[json.dumps(entry["comparison"], sort_keys=True)].append(entry)
    order = sorted(by_key.values(), key=lambda es: (-len(es), -len(es[0]["tasks"]), es[0]["name"]))
    main = order[0][0]["comparison"] if order else {}
    groups, ranked = [], []
    for number, members in enumerate(order, start=1):
        for entry in rank(members, table.rank_value):
            entry["cohort"] = number
            ranked.append(entry)
        key = members[0]["comparison"]
        groups.append({"id": number, "label": _label(table, key, main), "key": key})
    return groups, ranked


def reported() -> dict[str, Any]:
    """The paper's own tables (package data), shown only as rows marked 'reported'."""
    return json.loads(resources.files("covip.leaderboard").joinpath("paper_results.json").read_text("utf-8"))


def leaderboard(reports: list[Report]) -> dict[str, Any]:
    """The whole site's data: cohorts of like runs, each ranked (CoViP's and RePIC's apart); rejected submissions;
    the reported figures."""
    valid = [r for r in reports if r.valid]
    covip_cohorts, models = cohorts([model_entry(r) for r in valid if tasks_of(r, COVIP_FAMILIES)], COVIP_TABLE)
    repic_cohorts, repic_models = cohorts([repic_entry(r) for r in valid if tasks_of(r, (REPIC,))], REPIC_TABLE)
    return {
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "submissions": len(valid),
        "cohorts": covip_cohorts,
        "models": models,
        "repic": {"cohorts": repic_cohorts, "models": repic_models},
        "rejected": [
            {"path": str(r.submission.root), "problems": [str(p) for p in r.rejections]} for r in reports if not r.valid
        ],
        "reported": reported(),
    }
