"""The pages of a comparison: its paired statistics (`index.html`, with the data as `comparison.json`) and, per task,
every shared sample side by side (`<task>.html`: pictures, each side's caption, each question's verdicts, a filter to
the questions the sides judged differently).

Written by `covip-leaderboard compare` and `compare-judges` into their own directory, and by `covip-leaderboard
build` for each ranked table of two or more models (`compare/<table>/`, linked from each model page), sharing the
site's stylesheet, script and thumbnails.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from covip.leaderboard.benchmark import Benchmark, Benchmarks
from covip.leaderboard.compare import Settings, Side, compare, run_sides, shared_samples
from covip.leaderboard.images import sample_pictures
from covip.leaderboard.pages import json_safe, page, render, write_assets
from covip.tasks.results.records import CaptionRecord
from covip.tasks.results.run import Run
from covip.tasks.scoring import metrics

DATA_FILE = "comparison.json"


def task_file(task: str) -> str:
    return f"{re.sub(r'[^a-z0-9_]', '_', task)}.html"


def _counts(record: CaptionRecord, positive: bool) -> str:
    correct, total = metrics.question_counts(record, positive)
    return f"{correct}/{total}" if total else "–"


def _sample(sid: str, records: Sequence[CaptionRecord], labels: Sequence[str]) -> dict[str, Any]:
    """One sample's view: names, each side's caption and scores, each question with every side's verdict."""
    first = records[0]
    judged = [r.judged() for r in records]
    questions = []
    for k, question in enumerate(first.questions):
        verdicts = [
            {"pred": j[k][1].pred, "right": metrics.verdict_correct(r, question, j[k][1])}
            for r, j in zip(records, judged, strict=True)
        ]
        rights = {v["right"] for v in verdicts}
        questions.append(
            {
                "concept": first.names[question.concept],
                "positive": first.is_positive(question),
                "question": question.question,
                "options": sorted(question.options.items()),
                "gold": question.gold,
                "verdicts": verdicts,
                "differs": len(rights) > 1,
                "wrong": False in rights,
            }
        )
    positives = set(first.positives)
    names = [{"name": n, "positive": i in positives} for i, n in enumerate(first.names)]
    captions = [
        {
            "label": label,
            "caption": r.caption,
            "mentioned": [names[i] for i in sorted(metrics.mentioned(r.caption, r.names))],
            "f1": metrics.recognition_f1(r.caption, r.names, r.positives),
            "pos": _counts(r, True),
            "neg": _counts(r, False),
        }
        for label, r in zip(labels, records, strict=True)
    ]
    if len({c["caption"] for c in captions}) == 1 and len(captions) > 1:
        captions = [{**captions[0], "label": "Caption (the same on every side)"}]
    return {
        "sample_id": sid,
        "anchor": "s-" + re.sub(r"[^A-Za-z0-9_-]", "_", sid),
        "names": names,
        "captions": captions,
        "questions": questions,
        "differs": any(q["differs"] for q in questions),
        "wrong": any(q["wrong"] for q in questions),
    }


def side_by_side_page(
    sides: Sequence[Side], task: str, kind: str, found: Benchmark | str, images: Path, depth: int, back: list
) -> str:
    labels = [s.label for s in sides]
    samples = []
    for sid in shared_samples(sides, task):
        view = _sample(sid, [s.records[task][sid] for s in sides], labels)
        pictures = None if isinstance(found, str) else sample_pictures(found, sid, images)
        view["pictures"] = pictures
        view["missing"] = found if isinstance(found, str) else "" if pictures else "the sample is not in the benchmark"
        samples.append(view)
    body = render(
        "side_by_side.html",
        task=task,
        kind=kind,
        sides=labels,
        verdict_labels=labels,
        samples=samples,
        differing=sum(s["differs"] for s in samples),
        control=sides[0].tasks[task].info.control,
        img="../" * depth + "img/",
        back=back,
        compared=True,
        choices=[("differs", "only disagreements"), ("wrong", "only questions some side got wrong")],
    )
    return page(f"Side by side: {task}", body, depth)


def write_comparison(
    data: dict[str, Any],
    sides: Sequence[Side],
    out: Path,
    benchmarks: Benchmarks,
    *,
    depth: int = 0,
    back: Sequence[tuple[str, str]] = (),
    title: str = "Comparison",
    intro: str = "",
    agreement: dict[str, Any] | None = None,
) -> Path:
    """Write the comparison's pages into `out` (thumbnails into the `img/` folder `depth` levels up); return the
    index page."""
    out.mkdir(parents=True, exist_ok=True)
    images = out.joinpath(*([".."] * depth), "img").resolve() if depth else out / "img"
    pages = []
    for task in data["tasks"]:
        found = benchmarks.find(sides[0].tasks[task])
        up = [("index.html", "← comparison"), *back]
        html = side_by_side_page(sides, task, data["kind"], found, images, depth, up)
        (out / task_file(task)).write_text(html, encoding="utf-8")
        pages.append((task, task_file(task)))
    (out / DATA_FILE).write_text(json.dumps(json_safe(data), indent=1, allow_nan=False) + "\n", encoding="utf-8")
    context = {"title": title, "intro": intro, "agreement": agreement, "back": list(back)}
    body = render("compare.html", data=data, pages=pages, **context)
    index = out / "index.html"
    index.write_text(page(title, body, depth), encoding="utf-8")
    return index


def prepare_out(out: Path) -> None:
    """A fresh output directory for a standalone comparison: created, or a previous comparison there replaced; any
    other non-empty directory is refused (nothing of it is touched)."""
    if out.exists() and any(out.iterdir()):
        if not (out / DATA_FILE).is_file():
            raise FileExistsError(f"{out} exists and is not a comparison (no {DATA_FILE}): refusing to overwrite")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    write_assets(out)


@dataclass
class CohortComparison:
    """A ranked table's comparison in the site: where its pages are, its sides, and each model's side label."""

    folder: str  # relative to the site's root
    sides: list[Side]
    labels: dict[str, str]  # model id -> side label

    def others(self, model_id: str, task: str, sample_id: str) -> dict[str, list[bool]]:
        """Per question id of the sample: whether each other side got it right."""
        rights: dict[str, list[bool]] = {}
        for side in self.sides:
            if side.label == self.labels[model_id]:
                continue
            record = side.records[task][sample_id]
            for question, verdict in record.judged():
                rights.setdefault(question.qid, []).append(metrics.verdict_correct(record, question, verdict))
        return rights


def cohort_comparison(
    cohort: dict[str, Any], members: list[dict[str, Any]], runs: dict[str, Run], site: Path, benchmarks: Benchmarks
) -> CohortComparison | None:
    """Compare the models of one ranked table (alike by construction) into `site`/compare/<table>/; None when the
    table has fewer than two models or no captioning task."""
    if len(members) < 2 or not any(t.info.family == "caption" for t in runs[members[0]["id"]].tasks.values()):
        return None
    names = [m["name"] for m in members]
    labels = {m["id"]: m["name"] if names.count(m["name"]) == 1 else f"{m['name']} ({m['id']})" for m in members}
    sides, notes = run_sides([(labels[m["id"]], runs[m["id"]]) for m in members])
    data = compare(sides, Settings(notes=notes))
    folder = f"compare/{cohort['id']}"
    intro = (
        f"The models of one ranked table ({cohort['label']}), compared pair by pair on the same samples with paired "
        "statistics, and side by side sample by sample."
    )
    write_comparison(
        data,
        sides,
        site / folder,
        benchmarks,
        depth=2,
        back=[("../../index.html", "leaderboard")],
        title=f"Table {cohort['id']}: paired comparison",
        intro=intro,
    )
    return CohortComparison(folder, sides, labels)
