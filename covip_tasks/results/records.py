"""The typed per-sample records of a CoViP run: what each sample log line keeps under `covip_record`.

A record is built in one place (`covip.tasks.lmms`), judged by the judging stage, logged by lmms-eval and read
back by `covip.tasks.results.run.read_run`; every consumer (the tasks' per-sample values, `covip-judge`, the
leaderboard, the tests) sees these same models. Facts live once: a question holds its concept and gold letter,
the record holds which concepts are positive, and a verdict is `{qid, pred, detail}`, joined to its question by
`qid`. What can be derived (positivity of a question, the names a caption mentions, a diagnostic score) is
computed (`covip.tasks.scoring.metrics`), never stored, so a log cannot carry a derived value that disagrees
with its source.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from covip.tasks.data.schema import MAX_BUCKET, OPTION_LETTERS

RECORD_KEY = "covip_record"  # where a sample log line keeps the record
IDENTITY_KEY = "covip"  # where a task config's `metadata` keeps the run's identity (see covip.tasks.lmms.task)
BLOCKED = "blocked"  # the verdict of every question of a sample that has no model answer (`model_blocked`)
INVALID = "invalid"  # the judge answered, but its answer could not be read
ERROR = "error"  # the judge call failed after its retries

Letter = Literal["A", "B", "C", "D"]
Prediction = Literal["A", "B", "C", "D", "invalid", "error", "blocked"]
PREDICTIONS: tuple[str, ...] = (*OPTION_LETTERS, INVALID, ERROR, BLOCKED)
BinaryLabel = Literal["correct", "wrong", "invalid", "error", "blocked"]
Control = Literal["none", "blind", "noctx"]
Diagnostic = Literal["lsd", "lar", "itr"]
NonEmpty = Annotated[str, Field(min_length=1)]


class Model(BaseModel):
    """Strict: an unknown or missing field is an error naming it, never silently kept or defaulted."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class JudgeRef(Model):
    """Which judge gave a record's verdicts: the full spec of `covip.judges.protocol.JudgeSpec` and its id."""

    id: NonEmpty
    backend: NonEmpty
    model: str
    preset: str
    decoding: dict[str, Any] = {}
    prompt_hash: str = ""


class Question(Model):
    """One CapEval-QAs question about context concept `concept`; `qid` is `c{concept}.{QA id}`."""

    qid: NonEmpty
    concept: int = Field(ge=0)
    question: str
    options: dict[Letter, str]
    gold: Literal["A", "B", "C"]

    @model_validator(mode="after")
    def _all_options(self) -> Question:
        if sorted(self.options) != list(OPTION_LETTERS):
            raise ValueError(f"options must have exactly the keys A, B, C, D, got {sorted(self.options)}")
        return self


class Verdict(Model):
    """The judge's answer to question `qid`; `detail` says why for `invalid` and `error`."""

    qid: NonEmpty
    pred: Prediction
    detail: str = ""


class CaptionRecord(Model):
    """A personalized-captioning sample's caption, its questions and (once judged) one verdict per question."""

    kind: Literal["caption"] = "caption"
    sample_id: NonEmpty
    bucket: int = Field(ge=1, le=MAX_BUCKET)
    control: Control
    caption: str
    model_blocked: str | None = None
    names: list[NonEmpty]
    positives: list[int]
    questions: list[Question]
    verdicts: list[Verdict] = []
    judge: JudgeRef | None = None

    @model_validator(mode="after")
    def _consistent(self) -> CaptionRecord:
        n = len(self.names)
        if not self.positives or len(set(self.positives)) != len(self.positives):
            raise ValueError(f"positives must be a non-empty list of distinct indices, got {self.positives}")
        if any(not 0 <= p < n for p in self.positives):
            raise ValueError(f"positives {self.positives} out of range for {n} names")
        qids = [q.qid for q in self.questions]
        if len(set(qids)) != len(qids):
            raise ValueError("question ids repeat")
        if any(q.concept >= n for q in self.questions):
            raise ValueError(f"a question's concept is out of range for {n} names")
        if self.verdicts:
            judged = [v.qid for v in self.verdicts]
            if sorted(judged) != sorted(qids):
                missing = sorted(set(qids) - set(judged))
                extra = sorted(q for q in set(judged) if judged.count(q) > 1 or q not in qids)
                raise ValueError(f"verdicts must cover each question once: missing {missing}, extra {extra}")
            blocked = [v.pred == BLOCKED for v in self.verdicts]
            if any(blocked) != (self.model_blocked is not None) or (any(blocked) and not all(blocked)):
                raise ValueError("every verdict is 'blocked' exactly when the model answer was blocked")
            if self.judge is None:
                raise ValueError("judged record without its judge")
        return self

    @property
    def answer(self) -> str:
        """The model's answer this record scores."""
        return self.caption

    def is_positive(self, question: Question) -> bool:
        return question.concept in self.positives

    def judged(self) -> list[tuple[Question, Verdict]]:
        """Each question with its verdict (raises when the record is not judged)."""
        if not self.verdicts:
            raise ValueError(f"sample {self.sample_id}: not judged")
        by_qid = {v.qid: v for v in self.verdicts}
        return [(q, by_qid[q.qid]) for q in self.questions]


class DiagnosticRecord(Model):
    """An LSD / LAR / ITR sample's response, what it is scored against and (LAR) the judge's verdict."""

    kind: Literal["diagnostic"] = "diagnostic"
    sample_id: NonEmpty
    task: Diagnostic
    mode: Literal["direct", "cag"]
    control: Control
    preset: Literal["covip", "paper"]
    response: str
    model_blocked: str | None = None
    reference: str
    verdict: BinaryLabel | None = None
    judge: JudgeRef | None = None

    @property
    def answer(self) -> str:
        """The model's answer this record scores."""
        return self.response

    @model_validator(mode="after")
    def _consistent(self) -> DiagnosticRecord:
        if self.task == "lar" and self.verdict is not None:
            if (self.verdict == BLOCKED) != (self.model_blocked is not None):
                raise ValueError("the verdict is 'blocked' exactly when the model answer was blocked")
            if self.judge is None:
                raise ValueError("judged record without its judge")
        if self.task != "lar" and (self.verdict is not None or self.judge is not None):
            raise ValueError(f"a {self.task.upper()} record is not judged: no verdict or judge")
        return self


class RepicRecord(Model):
    """A RePIC captioning sample (docs/protocol.md §7.2): the caption, its ground-truth concept keys, the concepts the
    model was shown, and the task's candidate pool with each concept's display name (both metrics need the pool)."""

    kind: Literal["repic"] = "repic"
    sample_id: NonEmpty
    bucket: Literal[1, 2, 4]
    mode: Literal["skip", "retrieval"]
    image: NonEmpty  # the query image as the query file names it (a RePIC caption row's image_path)
    gt: list[NonEmpty]
    shown: list[NonEmpty]
    pool: dict[NonEmpty, NonEmpty]
    request: NonEmpty
    caption: str
    model_blocked: str | None = None

    @property
    def answer(self) -> str:
        """The model's answer this record scores."""
        return self.caption

    @model_validator(mode="after")
    def _consistent(self) -> RepicRecord:
        if len(self.gt) != self.bucket or len(set(self.gt)) != len(self.gt):
            raise ValueError(f"gt must hold {self.bucket} distinct keys, got {self.gt}")
        if any(key not in self.pool for key in self.gt):
            raise ValueError(f"every gt key must be in the pool: {[k for k in self.gt if k not in self.pool]}")
        if len(set(self.shown)) != len(self.shown):
            raise ValueError(f"a shown concept repeats: {self.shown}")
        return self


Record = CaptionRecord | DiagnosticRecord | RepicRecord
