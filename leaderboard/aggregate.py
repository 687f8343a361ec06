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
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib import resources
from typing import Any

from covip.leaderboard.stats import combined_score, fit_slope, mean_ci95
from covip.leaderboard.validate import DIAGNOSTICS, SCORED_FAMILIES, Report
from covip.tasks.results.records import CaptionRecord, DiagnosticRecord
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


def card(report: Report) -> tuple[dict[str, Any], list[str]]:
    """The shown card: the given card's fields over those derived from the results, and which were derived."""
    sub = report.submission
    given = {k: v for k, v in sub.card.items() if k not in ("id", "name") and v not in (None, "")}
    derived = {k: v for k, v in sub.derived_card.items() if k not in given}
    return {**derived, **given}, sorted(derived)


def comparison_key(report: Report) -> dict[str, Any]:
    """What makes two submissions comparable: tasks, data fingerprint per family, judges, preset."""
    run, identities = report.submission.run, report.identities
    family = {name: run.tasks[name].info.family for name in identities}
    return {
        "tasks": sorted(run.tasks),
        "data": dict(sorted({family[n]: i.data.samples_sha256 for n, i in identities.items()}.items())),
        "judges": dict(sorted({family[n]: i.judge.id for n, i in identities.items() if i.judge}.items())),
        "preset": sorted({i.preset for i in identities.values()}),
    }


def run_scores(run: Run) -> dict[str, Any]:
    """Every score of a run: captioning per bucket and overall, the controls, the diagnostics, the slope's points
    (tasks of a family the leaderboard does not score are left out)."""
    main: dict[str, list[CaptionRecord]] = defaultdict(list)
    controls: dict[str, dict[str, list[CaptionRecord]]] = defaultdict(lambda: defaultdict(list))
    diagnostics: dict[str, dict[str, list[DiagnosticRecord]]] = defaultdict(lambda: defaultdict(list))
    for task in run.tasks.values():
        info = task.info
        if info.family not in SCORED_FAMILIES:
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


def model_entry(report: Report) -> dict[str, Any]:
    """One validated submission as a leaderboard entry."""
    sub = report.submission
    scores = run_scores(sub.run)
    shown, derived = card(report)
    judge = next((i.judge for _, i in sorted(report.identities.items()) if i.judge), None)
    key = comparison_key(report)
    return {
        "id": sub.model_id,
        "name": sub.name,
        "card": shown,
        "card_derived": derived,
        "card_source": sub.card_file or "none (no card given)",
        "model": sub.run.model,
        "model_args": sub.run.model_args,
        "judge": judge.model_dump(include={"id", "backend", "model", "preset"}) if judge else {},
        "checks": report.checks(),
        "caption": scores["caption"],
        "controls": scores["controls"],
        "diagnostics": scores["diagnostics"],
        "slope": fit_slope(scores["points"]).to_dict(),
        "points": [[round(x, 6), round(y, 6)] for x, y in scores["points"]],
        "tasks": key["tasks"],
        "comparison": key,
        "covip_bench": sorted({i.covip_bench for i in report.identities.values()}),
    }


def _rank_value(entry: dict) -> float:
    value = entry["caption"].get("overall", {}).get("score", math.nan)
    return -value if math.isfinite(value) else math.inf


def rank(entries: list[dict]) -> list[dict]:
    """Entries ordered by overall ranking score (ties share a rank; entries without captioning come last)."""
    ordered = sorted(entries, key=lambda e: (_rank_value(e), e["name"]))
    previous, position = None, 0
    for i, entry in enumerate(ordered, start=1):
        value = _rank_value(entry)
        if value != previous:
            position, previous = i, value
        entry["rank"] = position if math.isfinite(value) else None
    return ordered


def _describe(key: dict[str, Any]) -> str:
    data = ", ".join(f"{family} {sha[:10]}" for family, sha in key["data"].items()) or "none"
    judges = ", ".join(sorted(set(key["judges"].values()))) or "none"
    tasks = f"{len(key['tasks'])} task{'s' if len(key['tasks']) != 1 else ''}"
    return f"{tasks} · data {data} · judge {judges} · preset {', '.join(key['preset'])}"


def _label(key: dict[str, Any], main: dict[str, Any]) -> str:
    """What a cohort is, and for all but the main table, how it differs from it."""
    if key == main:
        return f"Ranked: {_describe(key)}"
    facets = {"tasks": "other tasks", "data": "other data", "judges": "another judge", "preset": "another preset"}
    differs = ", ".join(text for facet, text in facets.items() if key[facet] != main[facet])
    return f"Ranked apart ({differs}): {_describe(key)}"


def reported() -> dict[str, Any]:
    """The paper's own tables (package data), shown only as rows marked 'reported'."""
    return json.loads(resources.files("covip.leaderboard").joinpath("paper_results.json").read_text("utf-8"))


def leaderboard(reports: list[Report]) -> dict[str, Any]:
    """The whole site's data: cohorts of like runs, each ranked; rejected submissions; the reported figures."""
    valid = [r for r in reports if r.valid]
    by_key: dict[str, list[dict]] = defaultdict(list)
    for report in valid:
        entry = model_entry(report)
        by_key[json.dumps(entry["comparison"], sort_keys=True)].append(entry)
    order = sorted(by_key.values(), key=lambda es: (-len(es), -len(es[0]["tasks"]), es[0]["name"]))
    main = order[0][0]["comparison"] if order else {}
    cohorts, models = [], []
    for number, entries in enumerate(order, start=1):
        for entry in rank(entries):
            entry["cohort"] = number
            models.append(entry)
        cohorts.append({"id": number, "label": _label(entries[0]["comparison"], main), "key": entries[0]["comparison"]})
    return {
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cohorts": cohorts,
        "models": models,
        "rejected": [
            {"path": str(r.submission.root), "problems": [str(p) for p in r.rejections]} for r in reports if not r.valid
        ],
        "reported": reported(),
    }
