"""The leaderboard's data model: per model scores computed from validated per-sample records, and the
paper's reported figures kept apart.

Everything is recomputed from the records with `covip.tasks.scoring.metrics` (so a site shows nothing a
sample log does not support): Acc+ and Acc− per bucket and pooled, with 95% intervals clustered
by sample; controls; recognition F1; diagnostics (direct and CAG) as the mean per-sample score
with a t interval; and the recognition-vs-retrieval slope. Ranks order computed models by overall
Acc+; reported rows never get a rank. The result is plain JSON, written beside the site.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import datetime, timezone
from importlib import resources
from typing import Any

from covip.leaderboard.stats import fit_slope, mean_ci95, regression_points
from covip.leaderboard.submission import Submission
from covip.leaderboard.tasks import DIAGNOSTICS
from covip.tasks.scoring import metrics

BUCKETS = ("1c", "2c", "3c", "4c")
CONTROLS = ("blind", "noctx")
MODES = ("direct", "cag")


def caption_score(records: list[dict]) -> dict[str, Any]:
    """Acc+/Acc− (micro, clustered CI, macro), recognition F1 and judge failures of some caption records."""
    lo_pos, hi_pos = metrics.micro_ci95(records, positive=True)
    lo_neg, hi_neg = metrics.micro_ci95(records, positive=False)
    return {
        "n": len(records),
        "acc_pos": metrics.micro_accuracy(records, positive=True),
        "acc_pos_ci95": [lo_pos, hi_pos],
        "acc_neg": metrics.micro_accuracy(records, positive=False),
        "acc_neg_ci95": [lo_neg, hi_neg],
        "acc_pos_macro": metrics.macro_accuracy(records, positive=True),
        "acc_neg_macro": metrics.macro_accuracy(records, positive=False),
        "recognition_f1": metrics.mean(r["recognition_f1"] for r in records),
        "judge_invalid": metrics.invalid_count(records),
        "judge_error": metrics.error_count(records),
    }


def diagnostic_score(records: list[dict]) -> dict[str, Any]:
    """Mean per-sample score (percent) with its t interval, clipped to the score's range 0..100."""
    mean, ci = mean_ci95([float(r["score"]) for r in records])
    return {"n": len(records), "score": mean, "score_ci95": [max(0.0, ci[0]), min(100.0, ci[1])] if ci else None}


def card(sub: Submission) -> tuple[dict[str, Any], list[str]]:
    """The shown card: the given card's fields over those derived from the results, and which were derived."""
    given = {k: v for k, v in sub.card.items() if k not in ("id", "name") and v not in (None, "")}
    derived = {k: v for k, v in sub.derived_card.items() if k not in given}
    return {**derived, **given}, sorted(derived)


def _judge(sub: Submission) -> dict[str, Any]:
    """The judge spec recorded on the verdicts (backend, model, preset, id), else the run's configuration."""
    for log in sub.tasks.values():
        for record in log.records:
            if isinstance(record.get("judge"), dict):
                return {k: record["judge"].get(k) for k in ("id", "backend", "model", "preset")}
    return {"id": None, "backend": (sub.covip.get("judge") or {}).get("backend"), "model": None, "preset": None}


def model_entry(sub: Submission) -> dict[str, Any]:
    """One validated submission as a leaderboard entry."""
    main: dict[str, list[dict]] = defaultdict(list)
    controls: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    diagnostics: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for log in sub.tasks.values():
        info = log.info
        if info.family == "caption":
            target = main if info.control == "none" else controls[info.control]
            target[f"{info.bucket}c"].extend(log.records)
        else:
            variant = info.mode if info.control == "none" else info.control
            diagnostics[info.family][variant].extend(log.records)
    caption = {b: caption_score(main[b]) for b in BUCKETS if main.get(b)}
    pooled = [r for b in BUCKETS for r in main.get(b, [])]
    if pooled:
        caption["overall"] = caption_score(pooled)
    control_scores = {}
    for control, buckets in controls.items():
        scores = {b: caption_score(rs) for b, rs in sorted(buckets.items())}
        scores["overall"] = caption_score([r for rs in buckets.values() for r in rs])
        control_scores[control] = scores
    points = regression_points(pooled)
    shown, derived = card(sub)
    return {
        "id": sub.model_id,
        "name": sub.name,
        "card": shown,
        "card_derived": derived,
        "card_source": sub.card_file or "none (no card given)",
        "model": sub.config.get("model"),
        "model_args": sub.config.get("model_args") or "",
        "judge": _judge(sub),
        "caption": caption,
        "controls": control_scores,
        "diagnostics": {
            d: {v: diagnostic_score(rs) for v, rs in sorted(diagnostics[d].items())}
            for d in DIAGNOSTICS
            if d in diagnostics
        },
        "slope": fit_slope(points).to_dict(),
        "points": [[round(x, 6), round(y, 6)] for x, y in points],
        "tasks": sorted(sub.tasks),
        "provenance": {
            "packages": sub.covip.get("packages") or {},
            "data": sorted({str(d.get("manifest_sha256")) for d in (sub.covip.get("data") or {}).values()}),
        },
    }


def _rank_key(entry: dict) -> float:
    value = entry["caption"].get("overall", {}).get("acc_pos", math.nan)
    return -value if isinstance(value, (int, float)) and math.isfinite(value) else math.inf


def rank(entries: list[dict]) -> list[dict]:
    """Computed entries ordered by overall Acc+ (ties share a rank; entries without captioning come last)."""
    ordered = sorted(entries, key=lambda e: (_rank_key(e), e["name"]))
    previous, position = None, 0
    for i, entry in enumerate(ordered, start=1):
        key = _rank_key(entry)
        if key != previous:
            position, previous = i, key
        entry["rank"] = position if math.isfinite(key) else None
    return ordered


def reported() -> dict[str, Any]:
    """The paper's own tables (package data), shown only as rows marked 'reported'."""
    return json.loads(resources.files("covip.leaderboard").joinpath("paper_results.json").read_text("utf-8"))


def leaderboard(subs: list[Submission]) -> dict[str, Any]:
    """The whole site's data: computed entries (ranked) and the reported figures, kept apart."""
    return {
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "models": rank([model_entry(s) for s in subs]),
        "reported": reported(),
    }
