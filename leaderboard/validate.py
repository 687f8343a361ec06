"""Validation of leaderboard submissions: nothing reaches the site that the run's own logs do not support.

Every task of a submission is checked, whatever the run's shape, against the rules of `rules.RULES`: what the run
reader found wrong, the results file's fields, the task catalogue, completeness, the run's identity, the tie of each
record to the model's logged response, the rule judge re-run, the benchmark (when found here), the recomputation of
every reported number, and, on request, an LLM-judge spot check. Each submission gets its own `Report`; one bad
submission never stops the others from being checked and reported.

RePIC tasks (family `repic`) are checked the same way, with what their records hold instead of verdicts: bucket and
setting, one candidate pool per task (every ground-truth key of its records), and, when the RePIC directory the run
recorded is found with the same files, each record's ground truth, query image, pool and request against it
(`repic_data.py`). They are not judged; the CoViP prompt preset does not change them.
"""

from __future__ import annotations

import math
import re
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from covip.leaderboard.benchmark import Benchmark, Benchmarks
from covip.leaderboard.rejudge import SpotCheck, rule_rejudge, spot_check, spot_check_rejections
from covip.leaderboard.repic_data import RepicSets, against_repic_data
from covip.leaderboard.rules import Rejection, record_of
from covip.leaderboard.submission import ACCESS, CARD_FIELDS, LIMITS, Limits, Submission
from covip.tasks.catalogue import catalogue
from covip.tasks.data.schema import DIAGNOSTIC_TARGET, QAS_PER_CONCEPT, CaptionSample
from covip.tasks.results.records import RECORD_KEY, CaptionRecord, DiagnosticRecord, JudgeRef, RepicRecord
from covip.tasks.results.run import LoggedSample, Problem, Run, TaskRun
from covip.tasks.scoring import metrics

DIAGNOSTICS = ("lsd", "lar", "itr")
COVIP_FAMILIES = ("caption", *DIAGNOSTICS)  # the CoViP benchmark's tasks: the CoViP tables
REPIC = "repic"  # RePIC's tasks: a table of their own
SCORED_FAMILIES = (*COVIP_FAMILIES, REPIC)  # the task families the leaderboard checks, scores and shows
REQUIRED_FIELDS = ("results", "versions", "config", "n-samples", "configs")
TOLERANCE = 1e-6
JUDGED_FAMILIES = ("caption", "lar")


Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class DataIdentity(BaseModel):
    model_config = ConfigDict(frozen=True)

    location: str
    manifest_sha256: str | None
    samples_sha256: Sha256
    samples: int = Field(ge=1)


class RepicFiles(BaseModel):
    model_config = ConfigDict(frozen=True)

    database: str
    queries: str


class RepicDigests(BaseModel):
    model_config = ConfigDict(frozen=True)

    database: Sha256
    queries: Sha256


class Retriever(BaseModel):
    """The retriever's name and settings (whatever settings it records: they are compared whole)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    name: str


class RepicIdentity(BaseModel):
    """What a RePIC task adds to the identity (`covip.tasks.lmms.repic.RepicTask.identity`)."""

    model_config = ConfigDict(frozen=True)

    files: RepicFiles
    sha256: RepicDigests
    retriever: Retriever | None


class Identity(BaseModel):
    """The run's identity a task writes into its config (`covip.tasks.lmms.task.CovipTask.identity`)."""

    model_config = ConfigDict(frozen=True)

    data: DataIdentity
    preset: Literal["covip", "paper"]
    judge: JudgeRef | None
    covip_bench: str
    repic: RepicIdentity | None = None


@dataclass(frozen=True)
class Options:
    """How far to check: size limits, where the benchmark is, and the optional LLM-judge spot check."""

    limits: Limits = LIMITS
    data_dir: Path | None = None
    repic_dir: Path | None = None  # the RePIC directory (default: where each run recorded it)
    spot_check: int = 0  # questions to re-ask of each LLM-judged submission's judge (0: no spot check)
    spot_seed: int = 0
    judge_options: dict[str, Any] = field(default_factory=dict)  # connection options of the judge (base_url...)
    min_agreement: float = 0.9


@dataclass
class Report:
    """One submission's rejections, and what was checked (shown on the site)."""

    submission: Submission
    rejections: list[Rejection] = field(default_factory=list)
    identities: dict[str, Identity] = field(default_factory=dict)
    rejudged: int = 0  # verdicts re-judged with the rule judge
    benchmark: dict[str, str] = field(default_factory=dict)  # task -> "" (checked) or why it was not
    spot_check: SpotCheck | None = None

    @property
    def valid(self) -> bool:
        return not self.rejections

    def reject(self, rule: str, file: str, where: str, message: str, task: str = "", record: str = "") -> None:
        self.rejections.append(Rejection(rule, file, where, message, task, record))

    def data_checked(self, tasks: Iterable[str] | None = None) -> str:
        """Whether the records of `tasks` (default: all) were compared with their data: "checked", or why not."""
        names = self.benchmark if tasks is None else [t for t in tasks if t in self.benchmark]
        unchecked = sorted({self.benchmark[name] for name in names if self.benchmark[name]})
        return "checked" if not unchecked else f"not checked: {'; '.join(unchecked)}"

    def checks(self, tasks: Iterable[str] | None = None) -> dict[str, Any]:
        """What validation checked beyond the rules every submission meets (the data: of `tasks` only, if given)."""
        return {
            "rejudged": self.rejudged,
            "benchmark": self.data_checked(tasks),
            "spot_check": self.spot_check.to_dict() if self.spot_check else None,
        }

    def summary(self) -> str:
        run = self.submission.run
        parts = [f"{len(run.tasks)} tasks, {sum(len(t.samples) for t in run.tasks.values())} samples"]
        if self.rejudged:
            parts.append(f"rule judge re-run on {self.rejudged} verdicts")
        parts.append(f"benchmark {self.checks()['benchmark']}")
        if self.spot_check:
            parts.append(self.spot_check.summary())
        return "; ".join(parts)


def validate(subs: list[Submission], options: Options | None = None) -> list[Report]:
    """One report per submission (no rejection: valid)."""
    options = options or Options()
    benchmarks, repic_sets = Benchmarks(options.data_dir), RepicSets(options.repic_dir)
    reports = [check_submission(sub, options, benchmarks, repic_sets) for sub in subs]
    ids = Counter(r.submission.model_id for r in reports if r.submission.run.results)
    for report in reports:
        sub = report.submission
        if sub.run.results and ids[sub.model_id] > 1:
            others = [
                str(o.submission.root) for o in reports if o is not report and o.submission.model_id == sub.model_id
            ]
            file, where = (
                (sub.card_file, "card.id")
                if sub.card.get("id")
                else (sub.run.rel(next(iter(sub.run.results))), "config.model")
            )
            report.reject(
                "unique-id", file, where, f"duplicate model id {sub.model_id!r}: also submitted by {', '.join(others)}"
            )
    return reports


def check_submission(sub: Submission, options: Options, benchmarks: Benchmarks, repic_sets: RepicSets) -> Report:
    report = Report(sub)
    run = sub.run
    for problem in run.problems:
        report.rejections.append(_reader_rejection(run, problem))
    for problem in sub.card_problems:
        report.reject("card", problem.file, problem.where, problem.message)
    _check_card(report, options.limits)
    for path, results in run.results.items():
        file = run.rel(path)
        for name in REQUIRED_FIELDS:
            if name not in results:
                report.reject("schema", file, name, "missing: not a results file of CoViP's `lmms_eval`")
        for where in non_finite(results):
            report.reject("numbers", file, where, "NaN or infinite value", _task_of(where))
        limit = (results.get("config") or {}).get("limit")
        if limit is not None:
            report.reject("complete", file, "config.limit", f"run with --limit {limit}: not the whole test set")
    models = sorted({str((r.get("config") or {}).get("model")) for r in run.results.values()})
    if len(models) > 1:
        file = run.rel(list(run.results)[-1])
        report.reject(
            "identity", file, "config.model", f"results files of different models in one submission: {models}"
        )
    for task, path in run.other_tasks.items():
        report.reject("task", run.rel(path), f"results.{task}", "not a CoViP or RePIC task this package ships", task)
    for task in run.tasks.values():
        if task.info.family in SCORED_FAMILIES:
            _check_task(report, task, benchmarks, repic_sets)
        else:
            message = f"a {task.info.family} task: the leaderboard scores only {', '.join(SCORED_FAMILIES)} tasks"
            report.reject("task", run.rel(task.results_file), f"results.{task.name}", message, task.name)
    _check_one_identity(report)
    if options.spot_check:
        report.spot_check = spot_check(sub, options.spot_check, options.spot_seed, options.judge_options)
        if report.spot_check:
            report.rejections.extend(spot_check_rejections(report.spot_check, options.min_agreement))
    return report


def _task_of(where: str) -> str:
    """The task a results-file field is about (`results.<task>.<metric>`, `configs.<task>...`), if any."""
    parts = where.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in catalogue().tasks else ""


def _reader_rejection(run: Run, problem: Problem) -> Rejection:
    """A problem the run reader found, named like every rejection (the task from the file name or field)."""
    task, record, where = "", "", problem.where
    if m := re.search(r"_samples_(\w+)\.jsonl$", problem.file):
        task = m[1]
    elif problem.where.startswith("results."):
        task = problem.where.removeprefix("results.")
    if m := re.match(r"^(line \d+)(?:: (.*))?$", problem.where):
        record, where = m[1], m[2] or ""
    found = run.tasks.get(task)
    no_log = (
        found is not None
        and problem.file == run.rel(found.results_file)
        and problem.where == f"results.{task}"
        and not found.samples_file.exists()
    )
    return Rejection("sample-log" if no_log else "readable", problem.file, where, problem.message, task, record)


def non_finite(value: Any) -> Iterator[str]:
    """Dotted paths of every NaN or infinite number inside value (iteratively: depth costs no stack); lmms-eval's
    own standard errors, which the leaderboard neither checks nor shows, are left out."""
    queue: deque[tuple[str, Any]] = deque([("", value)])
    while queue:
        path, item = queue.popleft()
        if isinstance(item, float) and not math.isfinite(item):
            yield path or "(value)"
        elif isinstance(item, dict):
            queue.extend((f"{path}.{k}" if path else str(k), v) for k, v in item.items() if "_stderr" not in str(k))
        elif isinstance(item, list):
            queue.extend((f"{path}[{i}]", v) for i, v in enumerate(item))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_card(report: Report, limits: Limits) -> None:
    sub = report.submission
    for key, value in sub.card.items():
        where = f"card.{key}"
        if key not in CARD_FIELDS:
            report.reject("card", sub.card_file, where, f"unknown card field (known: {', '.join(CARD_FIELDS)})")
        elif not (isinstance(value, str) or _is_number(value)):
            report.reject("card", sub.card_file, where, f"must be a string or a number, got {type(value).__name__}")
        elif _is_number(value) and not math.isfinite(value):
            report.reject("card", sub.card_file, where, "NaN or infinite value")
        elif len(str(value)) > limits.card_chars:
            report.reject(
                "card", sub.card_file, where, f"{len(str(value))} characters is over the limit of {limits.card_chars}"
            )
        elif key == "access" and value not in ACCESS:
            report.reject("card", sub.card_file, where, f"must be one of {ACCESS}, got {value!r}")


def _identity(report: Report, task: TaskRun) -> Identity | None:
    file, where = report.submission.run.rel(task.results_file), f"configs.{task.name}.metadata.covip"
    if task.identity is None:
        report.reject(
            "identity",
            file,
            where,
            "missing: the task did not record the run's identity (data, preset, judge)",
            task.name,
        )
        return None
    try:
        identity = Identity.model_validate(task.identity)
    except ValidationError as exc:
        for error in exc.errors():
            place = ".".join(str(p) for p in error["loc"])
            report.reject("identity", file, f"{where}.{place}", error["msg"], task.name)
        return None
    judged = task.info.family in JUDGED_FAMILIES
    if judged != (identity.judge is not None):
        family = task.info.family
        message = f"missing: a {family} task is judged" if judged else f"a {family} task is not judged: no judge"
        report.reject("identity", file, f"{where}.judge", message, task.name)
        return None
    if task.info.family == REPIC:
        if identity.repic is None:
            message = "missing: a repic task records its RePIC files, their sha256 and its retriever"
            report.reject("identity", file, f"{where}.repic", message, task.name)
            return None
        retrieval = task.info.mode == "retrieval"
        if retrieval != (identity.repic.retriever is not None):
            message = "missing: a retrieval task records its retriever" if retrieval else "a skip task uses none"
            report.reject("identity", file, f"{where}.repic.retriever", message, task.name)
            return None
    report.identities[task.name] = identity
    return identity


def _check_task(report: Report, task: TaskRun, benchmarks: Benchmarks, repic_sets: RepicSets) -> None:
    run, info = report.submission.run, task.info
    rfile, sfile = run.rel(task.results_file), run.rel(task.samples_file)

    def reject(rule: str, file: str, where: str, message: str, sample: LoggedSample | None = None) -> None:
        report.reject(rule, file, where, message, task.name, record_of(sample) if sample else "")

    if task.version != info.version:
        reject(
            "task",
            rfile,
            f"versions.{task.name}",
            f"version {task.version!r}; this package's task is version {info.version!r}",
        )
    identity = _identity(report, task)
    if not task.samples_file.is_file():
        return  # the reader said why (no sample log, or not a file of the submission)
    n, counts = len(task.samples), task.n_samples
    complete = not any(p.file == sfile for p in run.problems)
    if counts is None or not _is_number(counts.get("effective")):
        reject("complete", rfile, f"n-samples.{task.name}", "missing: cannot check the sample log is complete")
        complete = False
    else:
        if counts["effective"] != n:
            reject("complete", sfile, "file", f"{n} samples logged, but the run counted {counts['effective']}")
            complete = False
        if counts.get("original") != counts["effective"]:
            reject(
                "complete",
                rfile,
                f"n-samples.{task.name}",
                f"{counts['effective']} of {counts.get('original')} samples evaluated: not the whole test set",
            )
    if sorted(s.doc_id for s in task.samples if isinstance(s.doc_id, int)) != list(range(n)):
        reject("complete", sfile, "doc_id", f"doc ids are not 0..{n - 1} once each: samples missing or repeated")
    for sample_id, times in Counter(s.record.sample_id for s in task.samples).items():
        if times > 1:
            reject("complete", sfile, f"{RECORD_KEY}.sample_id", f"sample {sample_id!r} logged {times} times")
    for sample in task.samples:
        for rule, where, message in _record_problems(task, sample, identity):
            reject(rule, sfile, where, message, sample)
        complete = complete and _judged(sample.record)
    if info.family == REPIC:
        for where, message, sample in _pool_problems(task):
            reject("complete", sfile, where, message, sample)
            complete = False
        found = repic_sets.find(task, identity) if identity else "the run's identity is missing"
        checks = against_repic_data
    else:
        rejections, count = rule_rejudge(task)
        report.rejections.extend(rejections)
        report.rejudged += count
        found = benchmarks.find(task) if identity else "the run's identity is missing"
        checks = _against_benchmark
    report.benchmark[task.name] = found if isinstance(found, str) else ""
    if not isinstance(found, str):
        for where, message, sample in checks(task, found):
            reject("benchmark", sfile, where, message, sample)
    _check_metrics(report, task, complete)


def _judged(record: CaptionRecord | DiagnosticRecord | RepicRecord) -> bool:
    if isinstance(record, CaptionRecord):
        return bool(record.verdicts)
    if isinstance(record, RepicRecord):
        return True  # scored without a judge
    return record.task != "lar" or record.verdict is not None


def _record_problems(task: TaskRun, sample: LoggedSample, identity: Identity | None) -> Iterator[tuple[str, str, str]]:
    """(rule, field, message) of one record: its task, judging, questions, tie to the logged response, judge."""
    info, record = task.info, sample.record
    at = RECORD_KEY
    if isinstance(record, (CaptionRecord, RepicRecord)) and record.bucket != info.bucket:
        yield "complete", f"{at}.bucket", f"{record.bucket}, but task {info.name} is bucket {info.bucket}"
    if isinstance(record, (DiagnosticRecord, RepicRecord)) and record.mode != info.mode:
        yield "complete", f"{at}.mode", f"{record.mode!r}, but task {info.name} is {info.mode!r}"
    control = "none" if isinstance(record, RepicRecord) else record.control  # RePIC has no controls
    if control != info.control:
        yield "complete", f"{at}.control", f"{control!r}, but task {info.name} is {info.control!r}"
    if not _judged(record):
        yield (
            "complete",
            f"{at}.{'verdicts' if info.family == 'caption' else 'verdict'}",
            "missing: the sample was not judged",
        )
    if isinstance(record, CaptionRecord):
        per_concept = Counter(q.concept for q in record.questions)
        for j, name in enumerate(record.names):
            if per_concept[j] != QAS_PER_CONCEPT:
                yield (
                    "complete",
                    f"{at}.questions",
                    f"concept {j} ({name}) has {per_concept[j]} questions, not {QAS_PER_CONCEPT}",
                )
    if not isinstance(sample.response, str):
        yield "output", "filtered_resps", "missing or not one text: the model's response is not logged"
    elif record.answer != sample.response:
        what = "response" if isinstance(record, DiagnosticRecord) else "caption"
        yield (
            "output",
            f"{at}.{what}",
            "differs from the model's response lmms-eval logged for this sample (filtered_resps)",
        )
    judge = None if isinstance(record, RepicRecord) else record.judge  # RePIC is scored without a judge
    if identity is not None and judge != identity.judge:
        said = judge.id if judge else "no judge"
        yield (
            "identity",
            f"{at}.judge",
            f"{said}, but the task's config records judge {identity.judge.id if identity.judge else None}",
        )
    if identity is not None and isinstance(record, DiagnosticRecord) and record.preset != identity.preset:
        yield "identity", f"{at}.preset", f"{record.preset!r}, but the task's config records preset {identity.preset!r}"
    for where in non_finite(record.model_dump(mode="python")):
        yield "numbers", f"{at}.{where}", "NaN or infinite value"


def _pool_problems(task: TaskRun) -> Iterator[tuple[str, str, LoggedSample | None]]:
    """(field, message, record) where a RePIC record's candidate pool is not its task's: the pool is every
    ground-truth key of the task's samples, each with one display name (both metrics count misses against it)."""
    keys = {key for record in task.records for key in record.gt}
    names: dict[str, Counter[str]] = {}
    for sample in task.samples:
        pool = sample.record.pool
        if set(pool) != keys:
            differs = f"extra {sorted(set(pool) - keys)}, missing {sorted(keys - set(pool))}"
            yield f"{RECORD_KEY}.pool", f"not the task's candidate pool (its ground-truth keys): {differs}", sample
        for key, name in pool.items():
            names.setdefault(key, Counter())[name] += 1
    for key, seen in sorted(names.items()):
        if len(seen) > 1:
            yield f"{RECORD_KEY}.pool", f"the records give {key} different display names: {sorted(seen)}", None


def _against_benchmark(task: TaskRun, benchmark: Benchmark) -> Iterator[tuple[str, str, LoggedSample | None]]:
    """(field, message, record) where the log differs from the task's samples in the benchmark."""
    info = task.info
    expected = {
        sid: s for sid, s in benchmark.samples.items() if not isinstance(s, CaptionSample) or s.bucket == info.bucket
    }
    logged = {s.record.sample_id for s in task.samples}
    if missing := sorted(set(expected) - logged):
        yield "file", f"sample(s) {', '.join(missing)} of the benchmark missing from the log", None
    for sample in task.samples:
        truth = expected.get(sample.record.sample_id)
        if truth is None:
            yield f"{RECORD_KEY}.sample_id", f"not a sample of {info.name} in the benchmark at {benchmark.root}", sample
        elif isinstance(truth, CaptionSample):
            for where, message in _caption_differs(sample.record, truth):
                yield f"{RECORD_KEY}.{where}", message, sample
        elif sample.record.reference != (want := getattr(truth, DIAGNOSTIC_TARGET[info.family])):
            yield f"{RECORD_KEY}.reference", f"{sample.record.reference!r}, the benchmark's is {want!r}", sample


def _caption_differs(record: CaptionRecord, truth: CaptionSample) -> Iterator[tuple[str, str]]:
    names = [c.name for c in truth.concepts]
    if record.names != names:
        yield "names", f"{record.names}, the benchmark's are {names}"
    if record.positives != list(truth.positives):
        yield "positives", f"{record.positives}, the benchmark's are {list(truth.positives)}"
    want = {
        f"c{j}.{qa.id}": (j, qa.question, qa.options, qa.answer) for j, c in enumerate(truth.concepts) for qa in c.qas
    }
    got = {q.qid: (q.concept, q.question, dict(q.options), q.gold) for q in record.questions}
    if set(got) != set(want):
        yield "questions", f"question ids {sorted(set(got) ^ set(want))} are not both in the record and the benchmark"
    for qid in sorted(set(got) & set(want)):
        if got[qid] != want[qid]:
            yield "questions", f"question {qid} (concept, text, options or gold letter) differs from the benchmark's"
            return


def _same(logged: Any, computed: Any) -> bool:
    if _is_number(logged) and _is_number(computed):
        return math.isclose(logged, computed, rel_tol=1e-9, abs_tol=TOLERANCE)
    if isinstance(logged, dict) and isinstance(computed, dict):
        return logged.keys() == computed.keys() and all(_same(logged[k], computed[k]) for k in logged)
    return logged == computed


def _check_metrics(report: Report, task: TaskRun, complete: bool) -> None:
    """Declared metrics reported; every reported one recomputable and equal to its recomputation from the records."""
    run, info = report.submission.run, task.info
    rfile, sfile = run.rel(task.results_file), run.rel(task.samples_file)

    def reject(file: str, where: str, message: str, sample: LoggedSample | None = None) -> None:
        report.reject("recompute", file, where, message, task.name, record_of(sample) if sample else "")

    for name in info.metrics:
        if f"{name},none" not in task.reported:
            reject(rfile, f"results.{task.name}.{name},none", "missing: the task's metric_list declares it")
    if not complete:
        return  # what is wrong with the log is reported; numbers from part of it prove nothing
    values = [metrics.sample_values(s.record) for s in task.samples]
    for sample, value in zip(task.samples, values, strict=True):
        for name in info.metrics:
            if not _same(sample.values.get(name), value[name]):
                reject(
                    sfile,
                    name,
                    f"logged {sample.values.get(name)!r}, recomputed from the record {value[name]!r}",
                    sample,
                )
                break
    for key, reported in task.reported.items():
        name, _, filter_name = key.partition(",")
        if not filter_name or "_stderr" in name or name == RECORD_KEY:
            continue  # the alias, lmms-eval's standard errors, and the records themselves
        where = f"results.{task.name}.{key}"
        if filter_name != "none" or name not in info.metrics:
            reject(rfile, where, "a metric the leaderboard cannot recompute from the sample log")
        elif not _is_number(reported):
            reject(rfile, where, f"{reported!r} is not a number")
        elif math.isfinite(reported):
            computed = info.aggregation(name)([v[name] for v in values])
            if not math.isclose(reported, computed, rel_tol=1e-9, abs_tol=TOLERANCE):
                reject(
                    rfile, where, f"reported {reported!r}, recomputed from {len(values)} sample records {computed!r}"
                )


def _check_one_identity(report: Report) -> None:
    """One preset, one dataset per task family, and one judge per judged family, across the submission's CoViP tasks;
    one retriever across its RePIC retrieval tasks (each RePIC task has data of its own; the preset does not change
    them)."""
    run = report.submission.run
    first: dict[tuple[str, str], tuple[str, Any]] = {}
    for name in sorted(report.identities):
        identity, family = report.identities[name], run.tasks[name].info.family
        facets: dict[tuple[str, str], tuple[str, Any]] = {}
        if family != REPIC:
            facets[("preset", "")] = ("preset", identity.preset)
            facets[("data", family)] = ("data.samples_sha256", identity.data.samples_sha256)
        elif identity.repic is not None and identity.repic.retriever is not None:
            facets[("retriever", family)] = ("repic.retriever", identity.repic.retriever.model_dump())
        if identity.judge is not None:
            facets[("judge", family)] = ("judge.id", identity.judge.id)
        for key, (where, value) in facets.items():
            seen = first.setdefault(key, (name, value))
            if seen[1] != value:
                message = f"{value!r}, but task {seen[0]} of the same submission has {seen[1]!r}"
                report.reject(
                    "identity",
                    run.rel(run.tasks[name].results_file),
                    f"configs.{name}.metadata.covip.{where}",
                    message,
                    name,
                )
