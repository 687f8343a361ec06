"""`covip-leaderboard compare-judges RUN --a JUDGE --b JUDGE`: how much does the judge change the scores of one run?

Captions are generated once and can be judged by many judges (`covip-judge score RUN --judge ...` writes
`RUN/covip-judge/<judge id>/`: metrics.json and the re-judged sample logs). Here two judges of one run's captions are
compared: each JUDGE is `run` (the verdicts the run itself logged) or a directory `covip-judge score` wrote for this
run. Every re-judged record must be one of the run's samples, with the run's own caption and questions, so that the
judges really judged the same thing.

Reported per control (main, blind, noctx) and question type (every question; positive questions, which make Acc+;
negative ones, which make Acc−): how often the judges give the same letter, and the same right/wrong verdict, each
with Cohen's kappa (agreement beyond chance). Per QA id is not reported: the builder draws each concept's questions
in random order, so a QA id (Q1..Q3) names no kind of question. Then the same paired statistics as between runs
(`compare.py`), for Acc+ and Acc−: the difference the judge makes to each score, with its interval and McNemar test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from covip.leaderboard.agreement import cohen_kappa, share_agreeing
from covip.leaderboard.compare import (
    CONTROLS,
    NotComparable,
    Side,
    caption_tasks,
    pairing_problems,
    records_by_sample,
    shared_samples,
)
from covip.tasks.results.records import RECORD_KEY, CaptionRecord, JudgeRef
from covip.tasks.results.run import RESULTS_SUFFIX, Run
from covip.tasks.scoring import metrics

RUN_VERDICTS = "run"
METRICS_FILE = "metrics.json"
QUESTION_TYPES = (("every question", None), ("positive questions (Acc+)", True), ("negative questions (Acc−)", False))


def run_stamp(run: Run) -> str:
    """How `covip-judge score` names a run in its sample files: its results files' stamps, joined."""
    return "_".join(sorted(p.name.removesuffix(RESULTS_SUFFIX) for p in run.results))


def _read_records(path: Path) -> tuple[list[CaptionRecord], list[str]]:
    records, problems = [], []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            records.append(CaptionRecord.model_validate(json.loads(line)[RECORD_KEY]))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            problems.append(f"{path}: line {lineno}: not a {RECORD_KEY} line: {exc}")
        except ValidationError as exc:
            error = exc.errors()[0]
            place = ".".join(str(p) for p in error["loc"])
            problems.append(f"{path}: line {lineno}: {RECORD_KEY}.{place}: {error['msg']}")
    return records, problems


def judge_side(run: Run, spec: str) -> Side:
    """The verdicts of one judge of the run's captions: `run` (the run's own) or a `covip-judge score` directory."""
    tasks = caption_tasks(run)
    if not tasks:
        raise NotComparable([f"{run.root}: no captioning task"])
    if spec == RUN_VERDICTS:
        records, problems = {}, []
        for name, task in tasks.items():
            records[name], unusable = records_by_sample("the run", task)
            problems += unusable
        if problems:
            raise NotComparable(problems)
        judges = {r.judge.id: r.judge for by_id in records.values() for r in by_id.values() if r.judge}
        label = f"the run's verdicts ({', '.join(judges) or 'no judge'})"
        return Side(label, str(run.root), list(judges.values()), [], records, tasks, model=run.model)
    folder = Path(spec)
    report_file = folder / METRICS_FILE
    if not report_file.is_file():
        raise FileNotFoundError(f"{folder}: not a `covip-judge score` output (no {METRICS_FILE}); or use `run`")
    report = json.loads(report_file.read_text(encoding="utf-8"))
    try:
        declared = JudgeRef.model_validate({k: v for k, v in report.get("judge", {}).items() if k != "options"})
    except ValidationError as exc:
        raise ValueError(f"{report_file}: judge: {exc.errors()[0]['msg']}") from exc
    records: dict[str, dict[str, CaptionRecord]] = {}
    problems = []
    stamp = run_stamp(run)
    for name in tasks:
        files = sorted(folder.glob(f"*_{stamp}_samples_{name}.jsonl"))
        if len(files) != 1:
            found = "none" if not files else ", ".join(f.name for f in files)
            problems.append(f"{folder}: task {name} of run {stamp}: one re-judged sample file expected, found {found}")
            continue
        rejudged, unreadable = _read_records(files[0])
        problems += unreadable
        problems += [
            f"{files[0]}: sample {r.sample_id}: judged by {r.judge.id if r.judge else 'no judge'}, not {declared.id}"
            for r in rejudged
            if r.judge != declared
        ]
        records[name] = {r.sample_id: r for r in rejudged}
        if len(records[name]) != len(rejudged):
            problems.append(f"{files[0]}: a sample is there more than once")
        logged = {r.sample_id: r for r in tasks[name].records}
        for sid, record in records[name].items():
            if sid not in logged:
                problems.append(f"{files[0]}: sample {sid} is not a sample of task {name} in the run")
            elif record.caption != logged[sid].caption:
                problems.append(f"{files[0]}: sample {sid}: another caption than the run's: not this run's judging")
        problems += [f"{files[0]}: sample {sid} of the run is missing" for sid in sorted(logged.keys() - records[name])]
    if problems:
        raise NotComparable(problems)
    return Side(f"{declared.id} ({folder.name})", str(folder), [declared], [], records, tasks, model=run.model)


def judge_sides(run: Run, a: str, b: str) -> list[Side]:
    """The two judges' sides, labelled apart, after checking they judged the same questions."""
    sides = [judge_side(run, a), judge_side(run, b)]
    if sides[0].label == sides[1].label:
        sides = [Side(**{**vars(s), "label": f"{tag}: {s.label}"}) for tag, s in zip("AB", sides, strict=True)]
    problems = pairing_problems(sides)
    if problems:
        raise NotComparable(problems)
    return sides


def _labels(record: CaptionRecord, positive: bool | None) -> list[tuple[str, bool]]:
    """(letter, right) of each of the record's questions of the type (None: every question)."""
    return [
        (v.pred, metrics.verdict_correct(record, q, v))
        for q, v in record.judged()
        if positive is None or record.is_positive(q) == positive
    ]


def agreement_rows(sides: list[Side]) -> list[dict[str, Any]]:
    """Per control and question type: questions, share of equal letters and of equal verdicts, each with its kappa."""
    a, b = sides
    rows = []
    for control in CONTROLS:
        tasks = [t for t in sorted(a.records) if a.tasks[t].info.control == control]
        if not tasks:
            continue
        for name, positive in QUESTION_TYPES:
            pairs = [
                (x, y)
                for task in tasks
                for sid in shared_samples(sides, task)
                for x, y in zip(
                    _labels(a.records[task][sid], positive), _labels(b.records[task][sid], positive), strict=True
                )
            ]
            letters_a, letters_b = [x[0] for x, _ in pairs], [y[0] for _, y in pairs]
            right_a, right_b = [str(x[1]) for x, _ in pairs], [str(y[1]) for _, y in pairs]
            rows.append(
                {
                    "control": control,
                    "questions": name,
                    "n": len(pairs),
                    "letters_agree": share_agreeing(letters_a, letters_b),
                    "letters_kappa": cohen_kappa(letters_a, letters_b),
                    "verdicts_agree": share_agreeing(right_a, right_b),
                    "verdicts_kappa": cohen_kappa(right_a, right_b),
                }
            )
    return rows
