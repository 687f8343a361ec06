"""What the leaderboard rejects, and how a rejection is named.

Every rejection names the file (relative to the submission), the task, the record (line and sample id) when it is
about one, the field, what is wrong, and the rule it breaks. `RULES` is the list `covip-leaderboard validate
--help` prints.
"""

from __future__ import annotations

from dataclasses import dataclass

from covip.tasks.results.run import LoggedSample

RULES: dict[str, str] = {
    "readable": "every file lies inside the submission directory (no symlink out of it), has a sane size and is "
    "UTF-8 JSON; every sample line holds a valid record of its task's kind",
    "schema": "a results file has lmms-eval's fields: results, versions, config, n-samples, configs",
    "task": "every task is a CoViP or RePIC task this package ships, at the version it ships",
    "sample-log": "every task has its sample log (run with --log_samples)",
    "complete": "a sample log holds exactly the samples the run counted, the whole test set (no --limit), doc ids "
    "0..n-1, no sample twice; each record is of its task (bucket, control, mode or RePIC setting), judged, with 3 "
    "questions per context concept; the records of a RePIC task share its candidate pool (every ground-truth key of "
    "its records, one display name each)",
    "identity": "each task's config records the run's identity (data fingerprint, preset, judge; a RePIC task also its "
    "files' sha256 and, with retrieval, its retriever) and every record carries its task's judge; a submission is one "
    "model, one preset, one judge and one dataset per CoViP task family, and one retriever",
    "output": "every record's caption or response is the response lmms-eval logged for that sample (filtered_resps)",
    "rejudge": "rule-judged records are judged again with this package's rule judge, which is deterministic: every "
    "verdict must come out the same",
    "benchmark": "when the run's benchmark is found here (same fingerprint): the log holds exactly the task's "
    "samples, each with the benchmark's names, positive concepts, questions and gold letters, or reference answer; "
    "when a RePIC task's directory is found (same files' sha256): each record's query image, ground truth, candidate "
    "pool and request are the data's, and every shown concept is in its database",
    "recompute": "every metric the task declares is reported, every reported metric is one the leaderboard can "
    "recompute, and each equals its value recomputed from the records (so does each logged per-sample value)",
    "numbers": "no NaN or infinite number, in a results file or a record",
    "card": "the model card has known fields with string or number values of sane size; access is open or api",
    "unique-id": "no two submissions have the same model id",
    "spot-check": "with --spot-check N: LLM-judged verdicts, re-asked of the judge they declare on a seeded sample "
    "of N, agree at least as often as --min-agreement",
}


@dataclass(frozen=True)
class Rejection:
    """Why a submission is rejected: the rule, the file and field, and the task and record when it is about one."""

    rule: str
    file: str
    where: str
    message: str
    task: str = ""
    record: str = ""

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"unknown rule {self.rule!r}")

    def __str__(self) -> str:
        parts = [self.file, f"task {self.task}" if self.task else "", self.record, self.where, self.message]
        return ": ".join(p for p in parts if p) + f" [rule: {self.rule}]"


def record_of(sample: LoggedSample) -> str:
    """How a rejection names a logged record: its line and sample id."""
    return f"line {sample.line} (sample {sample.record.sample_id})"
