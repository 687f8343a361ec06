"""`covip-leaderboard summary RUNS`: the tables of the scores of every run under RUNS.

Reads each lmms-eval output directory under RUNS with `covip.tasks.results.run.read_run`, whatever the run's shape
(`--tasks 'covip_*'`, single tasks, the `_blind`/`_noctx` groups, `repic_*`), recomputes every number from the typed
records (`aggregate.run_scores` and `aggregate.repic_scores`, the leaderboard's own arithmetic), and writes
`summary.md` (CoViP captioning, diagnostics, and the RePIC tasks in a table of their own) and `summary.json` beside
the runs. A run the reader has problems with is refused, each problem named. This is a reading, not a check of trust:
`covip-leaderboard validate` is that.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from covip.leaderboard.aggregate import BUCKETS, CONTROLS, DIAGNOSTICS, MODES, repic_scores, run_scores
from covip.leaderboard.validate import COVIP_FAMILIES
from covip.tasks.results.run import Run, find_runs, read_run

DIAGNOSTIC_VARIANTS = (*MODES, *CONTROLS)


def load_runs(root: Path) -> dict[str, Run]:
    """Every run under root by a unique name (its model with model_args, and its directory when that repeats)."""
    runs = [read_run(path).raise_problems() for path in find_runs([root])]
    names = [f"{r.model}({r.model_args})" if r.model_args else r.model for r in runs]
    unique = {name: names.count(name) == 1 for name in names}
    return {
        name if unique[name] else f"{name} [{run.root.relative_to(root)}]": run
        for name, run in zip(names, runs, strict=True)
    }


def summarise(runs: dict[str, Run]) -> dict[str, dict[str, Any]]:
    """Per run: each bucket, overall (pooled over buckets), each control pooled, the diagnostics, and each RePIC
    task."""
    table = {}
    for name, run in sorted(runs.items()):
        scores = run_scores(run)
        entry: dict[str, Any] = dict(scores["caption"])
        entry.update({control: s["overall"] for control, s in scores["controls"].items()})
        entry["diagnostics"] = scores["diagnostics"]
        covip = [task for task in run.tasks.values() if task.info.family in COVIP_FAMILIES]
        entry["judges"] = sorted({r.judge.id for task in covip for r in task.records if r.judge})
        entry["repic"] = repic_scores(run)
        table[name] = entry
    return table


def _fmt(value: Any, digits: int = 1) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) and math.isfinite(value) else "–"


def _pair(scores: dict[str, Any] | None) -> str:
    return f"{_fmt(scores['acc_pos'])} / {_fmt(scores['acc_neg'])}" if scores else "–"


def _prf(scores: dict[str, Any], prefix: str = "") -> str:
    return " / ".join(_fmt(scores[f"{prefix}{m}"]) for m in ("precision", "recall", "f1"))


def _table(head: list[str]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]


def to_markdown(table: dict[str, dict[str, Any]]) -> str:
    return "\n".join(covip_markdown(table) + repic_markdown(table))


def covip_markdown(table: dict[str, dict[str, Any]]) -> list[str]:
    """The captioning table (runs with captioning tasks) and the diagnostics table (runs with diagnostics)."""
    captioned = {m: e for m, e in table.items() if any(k in e for k in (*BUCKETS, *CONTROLS))}
    lines = []
    if captioned:
        lines += caption_markdown(captioned)
    diagnosed = {model: entry["diagnostics"] for model, entry in table.items() if entry["diagnostics"]}
    if diagnosed:
        head = ["model"] + [f"{d.upper()} ({' / '.join(DIAGNOSTIC_VARIANTS)})" for d in DIAGNOSTICS]
        lines += _table(head)
        for model, diagnostics in diagnosed.items():
            cells = [
                " / ".join(_fmt(diagnostics.get(d, {}).get(v, {}).get("score")) for v in DIAGNOSTIC_VARIANTS)
                for d in DIAGNOSTICS
            ]
            lines.append("| " + " | ".join([model, *cells]) + " |")
        lines.append(
            "\nDiagnostics: mean per-sample score in percent (LSD token F1, LAR judge accuracy, ITR recall).\n"
        )
    return lines


def caption_markdown(table: dict[str, dict[str, Any]]) -> list[str]:
    head = ["model"] + [f"{b} Acc+ / Acc−" for b in BUCKETS]
    head += ["overall Acc+ [95% CI]", "overall Acc−", "score", "recog. F1", "invalid"]
    head += [f"{c} Acc+ / Acc−" for c in CONTROLS]
    lines = _table(head)
    for model, entry in table.items():
        o = entry.get("overall", {})
        ci = o.get("acc_pos_ci95", [math.nan, math.nan])
        row = [model] + [_pair(entry.get(b)) for b in BUCKETS]
        row += [
            f"{_fmt(o.get('acc_pos'))} [{_fmt(ci[0])}, {_fmt(ci[1])}]",
            _fmt(o.get("acc_neg")),
            _fmt(o.get("score")),
            _fmt(o.get("recognition_f1"), 2),
            str(o.get("judge_invalid", "–")),
        ]
        row += [_pair(entry.get(c)) for c in CONTROLS]
        lines.append("| " + " | ".join(row) + " |")
    judges = sorted({j for entry in table.values() for j in entry["judges"]})
    lines.append(
        "\nAcc+ and Acc− in percent, micro-averaged over questions (as the paper); 95% CI clustered by sample; "
        f"score: harmonic mean of Acc+ and Acc−. Judge(s): {', '.join(judges) or 'none'}.\n"
    )
    return lines


def repic_markdown(table: dict[str, dict[str, Any]]) -> list[str]:
    """The RePIC tasks, one row per run and task."""
    rows = [(model, task, s) for model, entry in table.items() for task, s in entry["repic"].items()]
    if not rows:
        return []
    lines = _table(
        ["model", "RePIC task", "samples", "P / R / F1 (repic)", "P / R / F1 (corrected)", "retrieval recall"]
    )
    for model, task, s in rows:
        cells = [model, task, str(s["n"]), _prf(s), _prf(s, "name_"), _fmt(s["retrieval_recall"])]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append(
        "\nRePIC: name precision / recall / F1 in percent, pooled over every ground-truth slot of the task; `repic`: "
        "RePIC's own scoring, exactly; corrected: the display names the model was shown, as whole phrases; retrieval "
        "recall: percent of ground-truth concepts the model was shown.\n"
    )
    return lines


def write_summary(root: Path) -> str:
    """Write summary.md and summary.json under root; return the markdown."""
    table = summarise(load_runs(root))
    markdown = to_markdown(table)
    (root / "summary.md").write_text(markdown, encoding="utf-8")
    (root / "summary.json").write_text(json.dumps(table, indent=2, allow_nan=True) + "\n", encoding="utf-8")
    return markdown
