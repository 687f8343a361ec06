"""The one canonical data model of CoViP bench, and its validation.

Every loader (our builder's output, the paper's reference files, the HF datasets) converts
into these classes, and nothing else is consumed downstream. Validation collects every
problem with the file, record and field it concerns, so that a user fixes a dataset in one
pass and no bad record is ever dropped silently.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

ANSWER_LETTERS = ("A", "B", "C")
OPTION_LETTERS = ("A", "B", "C", "D")
UNDETERMINED = "The answer cannot be determined"
MAX_BUCKET = 4
QAS_PER_CONCEPT = 3  # as in the paper (docs/protocol.md §1.5): Acc+ and Acc- weigh every concept alike


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one field of one record."""

    source: str
    record: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.record}: field '{self.field}': {self.message}"


class DataError(ValueError):
    """Raised when a dataset (or a run: `covip.tasks.results.run.RunError`) has problems; carries every one."""

    what = "the dataset"

    def __init__(self, problems: list) -> None:
        self.problems = problems
        shown = "\n".join(f"  {p}" for p in problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"{len(problems)} problem(s) in {self.what}:\n{shown}{more}")


@dataclass(frozen=True)
class QA:
    """A multiple-choice question about one concept; D is always 'cannot be determined'."""

    id: str
    question: str
    options: dict[str, str]
    answer: str


@dataclass(frozen=True)
class Concept:
    """A remembered concept: its pseudonym, one image of it and the dialogue about it."""

    name: str
    image: str
    dialogue: str
    qas: tuple[QA, ...]


@dataclass(frozen=True)
class CaptionSample:
    """A personalized-captioning sample: context concepts, which are in the query, the query."""

    sample_id: str
    bucket: int
    concepts: tuple[Concept, ...]
    positives: tuple[int, ...]
    query_image: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DiagnosticSample:
    """An LSD/LAR/ITR sample (used by the diagnostics tasks)."""

    sample_id: str
    images_context: tuple[str, ...]
    dialogues_context: tuple[str, ...]
    query_image: str
    answer: str
    last_action: str = ""
    trigger: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Checker:
    """Accumulates problems for one source file while records are parsed."""

    source: str
    problems: list[Problem] = field(default_factory=list)

    def add(self, record: str, field_name: str, message: str) -> None:
        self.problems.append(Problem(self.source, record, field_name, message))

    def raise_if_any(self) -> None:
        if self.problems:
            raise DataError(self.problems)


def _str(checker: Checker, record: str, obj: dict, key: str, path: str, *, nonempty: bool = True) -> str:
    value = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(value, str):
        checker.add(record, path, f"must be a string, got {type(value).__name__}")
        return ""
    if nonempty and not value.strip():
        checker.add(record, path, "must not be empty")
    return value


def parse_qa(checker: Checker, record: str, obj: Any, path: str) -> QA:
    """Parse one QA dict, checking the answer letter and the pinned D option."""
    if not isinstance(obj, dict):
        checker.add(record, path, f"must be an object, got {type(obj).__name__}")
        return QA("", "", {}, "")
    qa_id = _str(checker, record, obj, "id", f"{path}.id")
    question = _str(checker, record, obj, "question", f"{path}.question")
    options = obj.get("options")
    if not isinstance(options, dict) or sorted(options) != list(OPTION_LETTERS):
        checker.add(record, f"{path}.options", f"must have exactly the keys A, B, C, D, got {_keys(options)}")
        options = {}
    else:
        for letter in OPTION_LETTERS:
            if not isinstance(options[letter], str) or not options[letter].strip():
                checker.add(record, f"{path}.options.{letter}", "must be a non-empty string")
        if options.get("D") != UNDETERMINED:
            checker.add(record, f"{path}.options.D", f"must be {UNDETERMINED!r}, got {options.get('D')!r}")
        seen: dict[str, str] = {}
        for letter in OPTION_LETTERS:  # a repeated option makes two letters equally right
            text = options[letter].strip().casefold() if isinstance(options[letter], str) else ""
            if text and text in seen:
                checker.add(record, f"{path}.options.{letter}", f"repeats option {seen[text]}: {options[letter]!r}")
            seen.setdefault(text, letter)
    answer = obj.get("answer")
    if answer not in ANSWER_LETTERS:
        checker.add(record, f"{path}.answer", f"must be one of A, B, C, got {answer!r}")
    return QA(qa_id, question, dict(options), answer if isinstance(answer, str) else "")


def _keys(value: Any) -> str:
    return repr(sorted(value)) if isinstance(value, dict) else type(value).__name__


def parse_caption_sample(checker: Checker, record: str, obj: Any, image_exists=None) -> CaptionSample:
    """Parse and check one caption sample dict; `image_exists(path)` checks image references."""
    if not isinstance(obj, dict):
        checker.add(record, "<record>", f"must be an object, got {type(obj).__name__}")
        return CaptionSample("", 0, (), (), "")
    sample_id = _str(checker, record, obj, "sample_id", "sample_id")
    query_image = _str(checker, record, obj, "query_image", "query_image")
    if query_image and image_exists is not None:
        problem = image_exists(query_image)
        if problem:
            checker.add(record, "query_image", problem)
    concepts_obj = obj.get("concepts")
    concepts: list[Concept] = []
    if not isinstance(concepts_obj, list) or not concepts_obj:
        checker.add(record, "concepts", "must be a non-empty list")
        concepts_obj = []
    for j, c in enumerate(concepts_obj):
        path = f"concepts[{j}]"
        if not isinstance(c, dict):
            checker.add(record, path, f"must be an object, got {type(c).__name__}")
            continue
        name = _str(checker, record, c, "name", f"{path}.name")
        image = _str(checker, record, c, "image", f"{path}.image")
        if image and image_exists is not None:
            problem = image_exists(image)
            if problem:
                checker.add(record, f"{path}.image", problem)
        dialogue = _str(checker, record, c, "dialogue", f"{path}.dialogue")
        qas_obj = c.get("qas")
        if not isinstance(qas_obj, list):
            checker.add(record, f"{path}.qas", f"must be a list of {QAS_PER_CONCEPT} QAs, got {type(qas_obj).__name__}")
            qas_obj = []
        elif len(qas_obj) != QAS_PER_CONCEPT:
            checker.add(record, f"{path}.qas", f"must hold exactly {QAS_PER_CONCEPT} QAs, got {len(qas_obj)}")
        qas = tuple(parse_qa(checker, record, q, f"{path}.qas[{k}]") for k, q in enumerate(qas_obj))
        first: dict[str, int] = {}
        for k, qa in enumerate(qas):  # results name a question by concept and id (`c{j}.{id}`)
            if qa.id in first:
                checker.add(record, f"{path}.qas[{k}].id", f"duplicate {qa.id!r} (also qas[{first[qa.id]}])")
            elif qa.id:
                first[qa.id] = k
        concepts.append(Concept(name, image, dialogue, qas))
    names = [c.name for c in concepts if c.name]
    if len(set(names)) != len(names):
        checker.add(record, "concepts[].name", f"names must be unique within a sample, got {names}")
    positives_obj = obj.get("positives")
    positives: list[int] = []
    if not isinstance(positives_obj, list) or not positives_obj:
        checker.add(record, "positives", "must be a non-empty list of concept indices")
        positives_obj = []
    for k, p in enumerate(positives_obj):
        if not isinstance(p, int) or isinstance(p, bool) or not 0 <= p < len(concepts):
            checker.add(record, f"positives[{k}]", f"index {p!r} out of range for {len(concepts)} concepts")
        else:
            positives.append(p)
    if len(set(positives)) != len(positives):
        checker.add(record, "positives", f"indices must be unique, got {positives_obj}")
    bucket = obj.get("bucket")
    if not isinstance(bucket, int) or isinstance(bucket, bool) or not 1 <= bucket <= MAX_BUCKET:
        checker.add(record, "bucket", f"must be an integer 1..{MAX_BUCKET}, got {bucket!r}")
        bucket = 0
    elif positives_obj and bucket != min(len(positives_obj), MAX_BUCKET):
        checker.add(record, "bucket", f"is {bucket} but the sample has {len(positives_obj)} positive concept(s)")
    return CaptionSample(sample_id, bucket, tuple(concepts), tuple(positives), query_image)


def check_unique_ids(checker: Checker, samples: Iterable[CaptionSample]) -> None:
    """Duplicate sample ids make per-sample results ambiguous: report every repeat."""
    seen: dict[str, int] = {}
    for i, s in enumerate(samples):
        if s.sample_id in seen:
            checker.add(f"record {i}", "sample_id", f"duplicate {s.sample_id!r} (first at record {seen[s.sample_id]})")
        else:
            seen[s.sample_id] = i


def sample_from_dict(obj: dict[str, Any]) -> CaptionSample:
    """Rebuild a sample from `to_dict()` output (e.g. a logged lmms-eval doc); raises on problems."""
    checker = Checker("<dict>")
    sample = parse_caption_sample(checker, str(obj.get("sample_id", "?")), obj)
    checker.raise_if_any()
    return sample


# Which field each diagnostic task scores against; a sample of that task must have it.
DIAGNOSTIC_TARGET = {"lsd": "answer", "lar": "last_action", "itr": "trigger"}


def parse_diagnostic_sample(checker: Checker, record: str, obj: Any, task: str, image_exists=None) -> DiagnosticSample:
    """Parse and check one LSD/LAR/ITR sample; the field `task` is scored against must be non-empty."""
    if not isinstance(obj, dict):
        checker.add(record, "<record>", f"must be an object, got {type(obj).__name__}")
        return DiagnosticSample("", (), (), "", "")
    sample_id = _str(checker, record, obj, "sample_id", "sample_id")
    query_image = _str(checker, record, obj, "query_image", "query_image")
    images = obj.get("images_context")
    dialogues = obj.get("dialogues_context")
    if not isinstance(images, list) or not images or not all(isinstance(i, str) and i for i in images):
        checker.add(record, "images_context", "must be a non-empty list of image paths")
        images = []
    if not isinstance(dialogues, list) or not all(isinstance(d, str) and d.strip() for d in dialogues):
        checker.add(record, "dialogues_context", "must be a list of non-empty dialogue strings")
        dialogues = []
    elif len(dialogues) != len(images):
        checker.add(record, "dialogues_context", f"has {len(dialogues)} dialogues for {len(images)} context images")
    if image_exists is not None:
        for k, path in enumerate([*images, query_image]):
            problem = image_exists(path) if path else None
            if problem:
                checker.add(record, f"images_context[{k}]" if k < len(images) else "query_image", problem)
    values = {}
    for key in ("answer", "last_action", "trigger"):
        value = obj.get(key, "")
        if not isinstance(value, str):
            checker.add(record, key, f"must be a string, got {type(value).__name__}")
            value = ""
        values[key] = value
    target = DIAGNOSTIC_TARGET[task]
    if not values[target].strip():
        checker.add(record, target, f"must not be empty: the {task.upper()} task scores against it")
    return DiagnosticSample(sample_id, tuple(images), tuple(dialogues), query_image, **values)
