"""`covip-human report`: what the raters said, per pair of systems and criterion.

- **Win / tie / loss**: the shares of ratings preferring system A, tying, and preferring B, each with a 95%
  percentile interval from a bootstrap clustered by item (the items are resampled with replacement, with all their
  ratings: ratings of one item by several raters are not independent, so treating them as such would make the
  interval too narrow). Seeded; the number of resamples is stated.
- **Inter-rater agreement**: Fleiss' kappa over the items two or more raters rated, on the rater's preference in
  system terms (A, tie, B), whatever side each saw it on.
- **Agreement with the LLM judge** on the same items: the judge prefers the system with the higher per-sample score
  on the matching measure (context awareness: Acc+; faithfulness: Acc−; `study.CRITERIA`), and ties when they are
  equal. Reported: the share of ratings where the rater's preference equals the judge's, Cohen's kappa of the two,
  and, over the ratings where both prefer a system, the share where it is the same one.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from covip.leaderboard.agreement import cohen_kappa, fleiss_kappa, share_agreeing
from covip.leaderboard.human.store import Rating
from covip.leaderboard.human.study import CRITERIA
from covip.leaderboard.paired_stats import CONFIDENCE, RESAMPLES

OUTCOMES = ("a", "tie", "b")  # system A preferred, a tie, system B preferred


@dataclass(frozen=True)
class Settings:
    resamples: int = RESAMPLES
    seed: int = 0


def _outcome(winner: str | None, a: str) -> str:
    return "tie" if winner is None else "a" if winner == a else "b"


def judge_outcome(item: dict[str, Any], metric: str) -> str | None:
    """The judge's preference on the item (None when a score is undefined: no question of that kind)."""
    a, b = item["judge"][item["a"]][metric], item["judge"][item["b"]][metric]
    if a is None or b is None:
        return None
    return "tie" if a == b else "a" if a > b else "b"


def shares_with_intervals(per_item: list[Counter], settings: Settings) -> dict[str, dict[str, Any]]:
    """Each outcome's share of all ratings, with its 95% interval from a bootstrap clustered by item."""
    counts = np.array([[c[o] for o in OUTCOMES] for c in per_item], dtype=float).reshape(-1, len(OUTCOMES))
    total = counts.sum()
    out = {o: {"n": int(counts[:, i].sum()), "share": None, "ci95": None} for i, o in enumerate(OUTCOMES)}
    if not total:
        return out
    for i, o in enumerate(OUTCOMES):
        out[o]["share"] = counts[:, i].sum() / total
    if len(per_item) >= 2:

        def statistic(*columns: np.ndarray, axis: int = -1) -> np.ndarray:
            sums = np.stack([c.sum(axis=axis) for c in columns])
            return sums / sums.sum(axis=0)

        result = stats.bootstrap(
            tuple(counts.T),
            statistic,
            paired=True,
            vectorized=True,
            n_resamples=settings.resamples,
            confidence_level=CONFIDENCE,
            method="percentile",
            rng=np.random.default_rng(settings.seed),
        )
        for i, o in enumerate(OUTCOMES):
            low, high = float(result.confidence_interval.low[i]), float(result.confidence_interval.high[i])
            out[o]["ci95"] = [low, high] if math.isfinite(low) and math.isfinite(high) else None
    return out


def pair_report(
    a: str, b: str, items: list[dict[str, Any]], ratings: list[Rating], settings: Settings
) -> dict[str, Any]:
    """One pair of systems: per criterion, the outcomes, the raters' agreement and the agreement with the judge."""
    by_id = {item["id"]: item for item in items}
    mine = [r for r in ratings if r.item in by_id]
    criteria = {}
    for criterion in CRITERIA:
        per_item: dict[str, Counter] = defaultdict(Counter)
        human, judge = [], []
        for rating in mine:
            item = by_id[rating.item]
            outcome = _outcome(rating.winner(criterion.key), a)
            per_item[rating.item][outcome] += 1
            judged = judge_outcome(item, criterion.judge_metric)
            if judged is not None:
                human.append(outcome)
                judge.append(judged)
        decisive = [(h, j) for h, j in zip(human, judge, strict=True) if "tie" not in (h, j)]
        overlapping = [c for c in per_item.values() if sum(c.values()) >= 2]
        criteria[criterion.key] = {
            "title": criterion.title,
            "outcomes": shares_with_intervals(list(per_item.values()), settings),
            "raters": {
                "items_rated_by_several": len(overlapping),
                "fleiss_kappa": fleiss_kappa([[c[o] for o in OUTCOMES] for c in overlapping]),
            },
            "judge": {
                "metric": criterion.judge_metric,
                "ratings": len(human),
                "agreement": share_agreeing(human, judge),
                "cohen_kappa": cohen_kappa(human, judge) if human else None,
                "decisive": len(decisive),
                "decisive_agreement": share_agreeing([h for h, _ in decisive], [j for _, j in decisive]),
            },
        }
    return {
        "a": a,
        "b": b,
        "items": len(items),
        "rated_items": len({r.item for r in mine}),
        "ratings": len(mine),
        "raters": sorted({r.rater for r in mine}),
        "criteria": criteria,
    }


def report(definition: dict[str, Any], ratings: list[Rating], settings: Settings = Settings()) -> dict[str, Any]:
    """The study's report (plain JSON) from its stored definition and ratings."""
    pairs: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for item in definition["items"]:
        pairs[(item["a"], item["b"])].append(item)
    return {
        "systems": definition["systems"],
        "raters": dict(sorted(Counter(r.rater for r in ratings).items())),
        "settings": {
            "interval": f"{CONFIDENCE:.0%} percentile interval, bootstrap clustered by item: {settings.resamples} "
            f"resamples, seed {settings.seed}",
            "resamples": settings.resamples,
            "seed": settings.seed,
            "judge_measures": {c.key: c.judge_metric for c in CRITERIA},
        },
        "pairs": [pair_report(a, b, items, ratings, settings) for (a, b), items in pairs.items()],
    }


def to_markdown(data: dict[str, Any]) -> str:
    """The report as a markdown table (what `covip-human report` prints)."""

    def share(o: dict[str, Any]) -> str:
        if o["share"] is None:
            return "–"
        ci = f" [{100 * o['ci95'][0]:.0f}, {100 * o['ci95'][1]:.0f}]" if o["ci95"] else ""
        return f"{100 * o['share']:.0f}%{ci}"

    def number(value: float | None, percent: bool = False) -> str:
        return "–" if value is None else f"{100 * value:.0f}%" if percent else f"{value:.2f}"

    head = "| A | B | criterion | ratings | A wins | tie | B wins | Fleiss κ (items) | same as judge | κ judge |"
    lines = [head, "|" + "---|" * 10]
    for pair in data["pairs"]:
        for c in pair["criteria"].values():
            o, r, j = c["outcomes"], c["raters"], c["judge"]
            lines.append(
                f"| {pair['a']} | {pair['b']} | {c['title']} | {pair['ratings']} | {share(o['a'])} | "
                f"{share(o['tie'])} | {share(o['b'])} | {number(r['fleiss_kappa'])} ({r['items_rated_by_several']}) | "
                f"{number(j['agreement'], True)} | {number(j['cohen_kappa'])} |"
            )
    raters = ", ".join(f"{name} ({n})" for name, n in data["raters"].items()) or "none"
    lines.append(f"\nRaters (ratings): {raters}. Intervals: {data['settings']['interval']}.")
    return "\n".join(lines) + "\n"


def read_human_report(path: Path) -> dict[str, Any]:
    """A report written by `covip-human report --out` (for the leaderboard site), checked for its top-level shape."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable JSON file: {exc}") from exc
    shape = {"systems": list, "raters": dict, "settings": dict, "pairs": list}
    for key, kind in shape.items():
        if not isinstance(data, dict) or not isinstance(data.get(key), kind):
            raise ValueError(f"{path}: {key}: missing or not a {kind.__name__}: not a `covip-human report` file")
    return data
