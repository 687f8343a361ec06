"""Validation of leaderboard submissions: nothing reaches the site that the per-sample logs do not support.

The rules are listed in `RULES`, which `covip-leaderboard validate --help` prints.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from typing import Any

from covip.leaderboard.submission import ACCESS, CARD_FIELDS, LIMITS, Limits, Problem, Submission, TaskLog
from covip.leaderboard.tasks import RECOMPUTE
from covip.tasks.data.schema import OPTION_LETTERS, QAS_PER_CONCEPT
from covip.tasks.scoring import metrics
from covip.tasks.scoring.metrics import RECORD_KEY

REQUIRED_RESULTS_FIELDS = ("results", "versions", "config", "n-samples", "covip")
TOLERANCE = 1e-6
RULES = """Rules (each problem names the file and the field or line):
- schema: the results file has lmms-eval's fields and the `covip` provenance block; each sample
  record has its task family's fields with the right types;
- tasks: every task is a known CoViP task, at the version this package ships;
- judge: the judge configuration is present, and one judge judged the whole submission;
- completeness: a sample log per task with exactly the samples the run counted (no `--limit`),
  doc ids 0..n-1, no duplicate sample; each caption record has 3 questions per context concept
  and one verdict per question (a record cannot leave out the questions it got wrong);
- recomputation: every metric the task YAML declares is reported, and equals its value
  recomputed from the per-sample records (and each record's recognition F1 equals the one
  recomputed from its caption);
- numbers: no NaN or infinity anywhere; sizes: no absurd caption, card value or file;
- paths: no file outside the submission directory, a symlink out say (checked while reading);
- identity: no two submissions with the same model id."""


def non_finite(value: Any, path: str = "") -> Iterator[str]:
    """JSON paths of every NaN or infinite number inside value."""
    if isinstance(value, float) and not math.isfinite(value):
        yield path or "(value)"
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from non_finite(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from non_finite(item, f"{path}[{i}]")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def validate(subs: list[Submission], limits: Limits = LIMITS) -> dict[str, list[Problem]]:
    """Problems per submission directory (an empty list: valid); reading problems included."""
    report = {str(sub.root): list(sub.problems) for sub in subs}
    for sub in subs:
        report[str(sub.root)].extend(check_submission(sub, limits))
    ids = Counter(sub.model_id for sub in subs if sub.results)
    for sub in subs:
        if sub.results and ids[sub.model_id] > 1:
            others = [str(o.root) for o in subs if o is not sub and o.model_id == sub.model_id]
            if sub.card.get("id"):
                file, field = sub.card_file, "card.id"
            else:
                file, field = sub.rel(next(iter(sub.results))), "config.model"
            message = f"duplicate model id {sub.model_id!r}: also submitted by {', '.join(others)}"
            report[str(sub.root)].append(Problem(file, field, message))
    return report


def check_submission(sub: Submission, limits: Limits = LIMITS) -> list[Problem]:
    problems: list[Problem] = []

    def bad(file: Any, where: str, message: str) -> None:
        problems.append(Problem(sub.rel(file), where, message))

    if not sub.results and not sub.problems:
        bad(sub.root, "results", "no readable lmms-eval results file")
    for path, results in sub.results.items():
        for name in REQUIRED_RESULTS_FIELDS:
            if name not in results:
                bad(path, name, "missing (an lmms-eval results file written by CoViP's `lmms_eval`)")
        for where in non_finite(results):
            bad(path, where, "NaN or infinite value")
        judge = results.get("covip", {}).get("judge")
        if not isinstance(judge, dict) or not isinstance(judge.get("backend"), str) or not judge["backend"]:
            bad(path, "covip.judge.backend", "judge configuration missing")
        if (results.get("config") or {}).get("limit") is not None:
            bad(path, "config.limit", f"run with --limit {results['config']['limit']}: not the whole test set")
    models = {str(r.get("config", {}).get("model")) for r in sub.results.values()}
    if len(models) > 1:
        bad(sub.root, "config.model", f"results files of different models in one submission: {sorted(models)}")
    problems.extend(_check_card(sub, limits))
    for log in sub.tasks.values():
        problems.extend(_check_task(sub, log, limits))
    problems.extend(_check_judges(sub))
    return problems


def _check_card(sub: Submission, limits: Limits) -> Iterator[Problem]:
    for key, value in sub.card.items():
        where = f"card.{key}"
        if key not in CARD_FIELDS:
            yield Problem(sub.card_file, where, f"unknown card field (known: {', '.join(CARD_FIELDS)})")
        elif not (isinstance(value, str) or _is_number(value)):
            yield Problem(sub.card_file, where, f"must be a string or a number, got {type(value).__name__}")
        elif _is_number(value) and not math.isfinite(value):
            yield Problem(sub.card_file, where, "NaN or infinite value")
        elif len(str(value)) > limits.card_chars:
            yield Problem(
                sub.card_file, where, f"{len(str(value))} characters is over the limit of {limits.card_chars}"
            )
        elif key == "access" and value not in ACCESS:
            yield Problem(sub.card_file, where, f"must be one of {ACCESS}, got {value!r}")


def _check_task(sub: Submission, log: TaskLog, limits: Limits) -> Iterator[Problem]:
    info, results = log.info, sub.results[log.results_file]
    rfile, sfile = sub.rel(log.results_file), sub.rel(log.samples_file)
    version = (results.get("versions") or {}).get(info.name)
    if version != info.version:
        yield Problem(rfile, f"versions.{info.name}", f"version {version!r}; this leaderboard knows {info.version!r}")
    if not log.samples_file.is_file():
        return
    counts = (results.get("n-samples") or {}).get(info.name)
    n = len(log.doc_ids)
    if not isinstance(counts, dict) or not _is_number(counts.get("effective")):
        yield Problem(rfile, f"n-samples.{info.name}", "missing: cannot check the sample log is complete")
    else:
        if counts["effective"] != n:
            yield Problem(sfile, "file", f"{n} samples logged, but the run counted {counts['effective']}")
        if counts.get("original") != counts["effective"]:
            yield Problem(
                rfile,
                f"n-samples.{info.name}",
                f"{counts['effective']} of {counts.get('original')} samples evaluated: not the whole test set",
            )
    if sorted(d for d in log.doc_ids if isinstance(d, int)) != list(range(n)):
        yield Problem(sfile, "doc_id", f"doc ids are not 0..{n - 1} once each: samples missing or repeated")
    record_problems = list(_check_records(sub, log, limits))
    yield from record_problems
    reported = {key.split(",", 1)[0] for key in log.reported if "," in key}
    for name in info.metrics:
        if name not in reported:
            yield Problem(rfile, f"results.{info.name}.{name},none", "missing: the task's metric_list declares it")
    if not record_problems and len(log.records) == n:
        yield from _check_aggregates(sub, log)


def _check_records(sub: Submission, log: TaskLog, limits: Limits) -> Iterator[Problem]:
    sfile, info = sub.rel(log.samples_file), log.info
    seen: Counter[str] = Counter()
    for record in log.records:
        at = f"line {record['_line']}: {RECORD_KEY}"
        for where in non_finite(record):
            yield Problem(sfile, f"{at}.{where}", "NaN or infinite value")
        sample_id = record.get("sample_id")
        if not isinstance(sample_id, str) or not sample_id:
            yield Problem(sfile, f"{at}.sample_id", "missing or not a string")
        else:
            seen[sample_id] += 1
        if record.get("control") != info.control:
            yield Problem(
                sfile, f"{at}.control", f"{record.get('control')!r}, but task {info.name} is {info.control!r}"
            )
        check = _check_caption if info.family == "caption" else _check_diagnostic
        for where, message in check(record, log, limits):
            yield Problem(sfile, f"{at}.{where}", message)
    for sample_id, count in seen.items():
        if count > 1:
            yield Problem(sfile, f"{RECORD_KEY}.sample_id", f"sample {sample_id!r} logged {count} times")


def _text(record: dict, key: str, limits: Limits) -> Iterator[tuple[str, str]]:
    value = record.get(key)
    if not isinstance(value, str):
        yield key, "missing or not a string"
    elif len(value) > limits.text_chars:
        yield key, f"{len(value)} characters is over the limit of {limits.text_chars}"


def _check_caption(record: dict, log: TaskLog, limits: Limits) -> Iterator[tuple[str, str]]:
    if record.get("bucket") != log.info.bucket:
        yield "bucket", f"{record.get('bucket')!r}, but task {log.info.name} is bucket {log.info.bucket}"
    caption_ok = not list(_text(record, "caption", limits))
    yield from _text(record, "caption", limits)
    names, positives = record.get("names"), record.get("positives")
    if not isinstance(names, list) or not all(isinstance(n, str) and len(n) <= limits.card_chars for n in names):
        yield "names", "missing, not a list of strings, or a name is absurdly long"
        return
    if not isinstance(positives, list) or not all(isinstance(p, int) and 0 <= p < len(names) for p in positives):
        yield "positives", "missing or not a list of indices into names"
        return
    f1 = record.get("recognition_f1")
    if not _is_number(f1):
        yield "recognition_f1", "missing or not a number"
    elif caption_ok and math.isfinite(f1):
        recomputed = metrics.recognition_f1(record["caption"], names, positives)
        if not math.isclose(f1, recomputed, abs_tol=TOLERANCE):
            yield "recognition_f1", f"logged {f1!r}, recomputed from the caption {recomputed!r}"
    verdicts = record.get("verdicts")
    if not isinstance(verdicts, list) or not verdicts:
        yield "verdicts", "missing or empty: the sample was not judged"
        return
    for i, v in enumerate(verdicts):
        if not isinstance(v, dict):
            yield f"verdicts[{i}]", "not an object"
            continue
        concept = v.get("concept")
        if not isinstance(concept, int) or not 0 <= concept < len(names):
            yield f"verdicts[{i}].concept", "missing or not an index into names"
        elif v.get("positive") is not (concept in positives):
            yield (
                f"verdicts[{i}].positive",
                f"{v.get('positive')!r}, but concept {concept} positive is {concept in positives}",
            )
        if v.get("gold") not in OPTION_LETTERS:
            yield f"verdicts[{i}].gold", f"{v.get('gold')!r} is not one of {OPTION_LETTERS}"
        if v.get("pred") not in metrics.PREDICTIONS:
            yield f"verdicts[{i}].pred", f"{v.get('pred')!r} is not one of {metrics.PREDICTIONS}"
        if not isinstance(v.get("qid"), str):
            yield f"verdicts[{i}].qid", "missing or not a string"
    yield from _check_coverage(record, names)
    if not isinstance(record.get("judge"), dict) or not isinstance(record["judge"].get("id"), str):
        yield "judge.id", "missing: which judge gave these verdicts is unknown"


def _check_coverage(record: dict, names: list[str]) -> Iterator[tuple[str, str]]:
    """Every context concept has its questions and every question exactly one verdict, of its concept.

    Without this a record could drop the questions it got wrong (and a results file report the
    scores of what is left): the aggregates would still recompute.
    """
    questions = record.get("questions")
    if not isinstance(questions, list) or not all(
        isinstance(q, dict) and isinstance(q.get("qid"), str) and isinstance(q.get("concept"), int) for q in questions
    ):
        yield "questions", "missing, or not a list of questions with a string qid and an integer concept"
        return
    per_concept = Counter(q["concept"] for q in questions)
    for j, name in enumerate(names):
        if per_concept[j] != QAS_PER_CONCEPT:
            yield "questions", f"concept {j} ({name}) has {per_concept[j]} questions, not {QAS_PER_CONCEPT}"
    concept_of = {q["qid"]: q["concept"] for q in questions}
    if len(concept_of) != len(questions):
        yield "questions", "question ids repeat"
    judged = Counter(v["qid"] for v in record["verdicts"] if isinstance(v, dict) and isinstance(v.get("qid"), str))
    if missing := sorted(q for q in concept_of if not judged[q]):
        yield "verdicts", f"no verdict for question(s) {', '.join(missing)}"
    if extra := sorted(q for q, count in judged.items() if count > 1 or q not in concept_of):
        yield "verdicts", f"question(s) {', '.join(extra)} judged more than once or not among the record's questions"
    for i, v in enumerate(record["verdicts"]):
        qid = v.get("qid") if isinstance(v, dict) else None
        if isinstance(qid, str) and qid in concept_of and v.get("concept") != concept_of[qid]:
            message = f"{v.get('concept')!r}, but question {qid} is of concept {concept_of[qid]}"
            yield f"verdicts[{i}].concept", message


def _check_diagnostic(record: dict, log: TaskLog, limits: Limits) -> Iterator[tuple[str, str]]:
    info = log.info
    if record.get("task") != info.family:
        yield "task", f"{record.get('task')!r}, but task {info.name} is {info.family!r}"
    if record.get("mode") != info.mode:
        yield "mode", f"{record.get('mode')!r}, but task {info.name} is {info.mode!r}"
    yield from _text(record, "response", limits)
    score = record.get("score")
    if not _is_number(score) or not 0.0 <= score <= 100.0:
        yield "score", f"{score!r} is not a number in [0, 100]"
    if info.family == "lar" and (not isinstance(record.get("judge"), dict) or "id" not in record["judge"]):
        yield "judge.id", "missing: which judge gave this verdict is unknown"


def _check_aggregates(sub: Submission, log: TaskLog) -> Iterator[Problem]:
    info, rfile = log.info, sub.rel(log.results_file)
    table = RECOMPUTE[info.family]
    for key, value in log.reported.items():
        name = key.split(",", 1)[0]
        if "," not in key or name == RECORD_KEY or "_stderr" in name:
            continue
        where = f"results.{info.name}.{key}"
        if name not in table:
            yield Problem(rfile, where, "a metric the leaderboard cannot recompute from the sample log")
        elif not _is_number(value):
            yield Problem(rfile, where, f"{value!r} is not a number")
        else:
            computed = table[name](log.records)
            if not math.isclose(value, computed, rel_tol=1e-9, abs_tol=TOLERANCE):
                yield Problem(
                    rfile, where, f"reported {value!r}, recomputed from {len(log.records)} sample records {computed!r}"
                )


def _check_judges(sub: Submission) -> Iterator[Problem]:
    backend = ((sub.covip.get("judge") or {}) if isinstance(sub.covip.get("judge"), dict) else {}).get("backend")
    ids: dict[str, str] = {}
    for log in sub.tasks.values():
        for record in log.records:
            judge = record.get("judge")
            if not isinstance(judge, dict) or not isinstance(judge.get("id"), str):
                continue
            ids.setdefault(judge["id"], f"{sub.rel(log.samples_file)}: line {record['_line']}")
            if backend and judge.get("backend") != backend:
                yield Problem(
                    sub.rel(log.samples_file),
                    f"line {record['_line']}: {RECORD_KEY}.judge.backend",
                    f"{judge.get('backend')!r}, but the results' covip.judge.backend is {backend!r}",
                )
                return
    if len(ids) > 1:
        where = "; ".join(f"{i} ({first})" for i, first in ids.items())
        yield Problem(str(sub.root), "judge.id", f"several judges in one submission: {where}")


def is_valid(report: dict[str, list[Problem]]) -> bool:
    return not any(report.values())
