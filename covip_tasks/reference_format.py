"""Conversion between the paper's reference test-set files, the HF captioning set and our canonical schema.

The paper (repo `oyt9306/CoViP`, see `reference/covip_protocol.md` §1.2-1.6) keeps a test set in two files:

    meta_CoViP_testset_cleaned.jsonl   one line per sample: {"imgs": query image path,
                                       "concepts": [context image paths], "dialogues": {key: dialogue, ...}}
    QAS_GT_test.json                   {"sample_{idx}": {"qas": {"concept_{j}": {"qa": [QA, QA, QA]}},
                                                         "gts": [positive concept indices]}}

Samples are keyed `sample_{idx}` by line order of the jsonl (idx from 0); the i-th dialogue value (insertion
order) belongs to the i-th concept image; a QA is {"id", "question", "options": {A, B, C, D}, "correct_answer"}.
The concepts' pseudonyms are not stored anywhere (the reference never saved them), so the loaders infer each
name from its dialogue (`infer_concept_name`).

Everything converts into `covip.tasks.schema.CaptionSample` through `parse_caption_sample`, so the checks are
the canonical ones; problems are reported in the reference's own terms (file, `sample_12` / `line 13`, and the
reference field such as `qas.concept_1.qa[2].correct_answer`), all at once, and nothing is dropped.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path, PurePosixPath
from typing import Any

from PIL import Image

from covip.tasks.dataset import image_checker
from covip.tasks.schema import (
    DIAGNOSTIC_TARGET,
    MAX_BUCKET,
    CaptionSample,
    Checker,
    DataError,
    DiagnosticSample,
    Problem,
    check_unique_ids,
    parse_caption_sample,
    parse_diagnostic_sample,
)

META_FILE = "meta_CoViP_testset_cleaned.jsonl"
QAS_GT_FILE = "QAS_GT_test.json"
SAMPLE_IDS_FILE = "sample_ids.json"
CONCEPT_NAMES_FILE = "concept_names.json"
EXPORT_IMAGE_DIR = "images"

_SAMPLE_KEY = re.compile(r"sample_(0|[1-9][0-9]*)")
_CONCEPT_KEY = re.compile(r"concept_(0|[1-9][0-9]*)")
_ALL = "*"  # a covered field meaning "the whole record"

ImageCheck = Callable[[str], "str | None"]


# --------------------------------------------------------------------------------------------------------------
# Concept-name inference
# --------------------------------------------------------------------------------------------------------------

# Capitalised words that are never a concept's pseudonym, wherever they stand.
_SPEAKERS = {"User", "Model", "Assistant", "Human", "Bot", "System", "Dialogue", "Dialog", "Conversation", "Turn"}
_WEEKDAYS = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}
_HOLIDAYS = {"Christmas", "Halloween", "Thanksgiving", "Easter", "Hanukkah", "Ramadan", "Diwali"}
# Nationalities are not excluded: Faker has the surnames English and French (the paper's occasional pick).
_NEVER_NAMES = frozenset(_SPEAKERS | _WEEKDAYS | _HOLIDAYS)
# Months are also first names (Faker has "April"): only their date uses ("in April", "April 5") are excluded.
_MONTHS = frozenset(
    {"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November",
     "December"}
)  # fmt: skip
_DATE_PREPS = frozenset(
    {"in", "of", "last", "next", "this", "early", "late", "mid", "since", "until", "till", "during", "through",
     "throughout", "by", "every", "each", "before", "after", "on", "from", "that", "one", "whole", "entire"}
)  # fmt: skip
# Common words that are capitalised only because they open a sentence. Kept free of Faker's en_US first names
# (no "Will", "May", "Joy", "Grace", "Mark"...): a name is recognised by its mid-sentence uses anyway.
_STOPWORDS = frozenset(
    """a an the and but or so yet for nor if when while where what which who whom whose why how that this these
    those there here then than it its he she they we you your yours my mine our ours his her hers their theirs me
    him us them oh ah aw aww awww wow yes yeah yep no nope not ok okay sure well hey hi hello thanks thank please
    sorry absolutely definitely totally really honestly actually exactly indeed of in on at by with without from
    to into onto after before during since until as because also even just only still maybe perhaps probably
    certainly clearly surely always never sometimes often usually every each all any some many much more most
    one two three four five last next first second third finally today tonight yesterday tomorrow now later once
    again sounds sound seems seem looks look let lets do does did is are was were be been have has had can could
    would should shall might must good great nice lovely wonderful amazing beautiful awesome cool fun funny
    interesting haha lol dear happy poor speaking tell imagine remember love like such both either neither other
    another being having getting going seeing hearing whether though although however therefore besides anyway
    plus right true alright agreed glad cute adorable fantastic perfect picture sharing thinking whenever wherever
    whatever nothing something everything everyone someone anyone""".split()
)
_ABBREVIATIONS = ("Mr.", "Mrs.", "Ms.", "Dr.", "St.", "Mt.", "Jr.", "Sr.", "Prof.", "vs.", "e.g.", "i.e.")
_OPENERS = '"“‘([{'
_CLOSERS = "\"”’')]}"
_SENTENCE_END = ".!?:…"
_SPEAKER_LINE = re.compile(r"^[\s*_#>]*(user|model|assistant|human|ai|bot|system)[\s*_]*:[\s*_]*", re.IGNORECASE)
_MARKDOWN = re.compile(r"[*_`#]+")
_TOKEN = re.compile(r"(?<!\w)(?<!\w['’])[^\W\d_][\w'’-]*")
_CONTRACTIONS = ("'s", "’s", "'ll", "’ll", "'re", "’re", "'ve", "’ve", "'m", "’m", "'d", "’d")


@dataclass
class _Occurrence:
    word: str
    role: str  # "user", "model" or "question"
    text_index: int
    start: int
    end: int
    initial: bool
    date: bool
    in_run: bool = False


def _dialogue_turns(dialogue: str) -> list[tuple[str, str]]:
    """Split 'User: ...' / 'Model: ...' lines into (role, text); a text without speaker labels is one User turn."""
    turns: list[tuple[str, str]] = []
    role: str | None = None
    lines: list[str] = []
    for line in dialogue.splitlines():
        match = _SPEAKER_LINE.match(line)
        if match:
            if role is not None:
                turns.append((role, "\n".join(lines)))
            role = "user" if match[1].lower() in ("user", "human") else "model"
            lines = [line[match.end() :]]
        elif role is not None:
            lines.append(line)
    if role is not None:
        turns.append((role, "\n".join(lines)))
    if not turns:
        turns = [("user", dialogue)]
    return [(r, _MARKDOWN.sub("", t)) for r, t in turns]


def _normalise_word(raw: str) -> str | None:
    """Reduce a token to a name-shaped word ("Seth's" -> "Seth", "Don't" -> None), or None."""
    word = raw.rstrip("-'’")
    lower = word.lower()
    if lower.endswith(("n't", "n’t")):
        return None
    for suffix in _CONTRACTIONS:
        if lower.endswith(suffix):
            word = word[: -len(suffix)]
            break
    parts = word.split("-")
    kept = []
    for part in parts:  # "Seth-like" -> "Seth", "Mary-Kate" stays
        if not part[:1].isupper():
            break
        kept.append(part)
    word = "-".join(kept)
    if len(word) < 2 or not word[0].isupper() or word.isupper():
        return None
    if not all(ch.isalpha() or ch in "'’-" for ch in word):
        return None
    return word


def _sentence_initial(text: str, pos: int) -> bool:
    if pos > 0 and text[pos - 1] in _OPENERS:
        return True
    before = text[:pos].rstrip()
    if "\n" in text[len(before) : pos]:
        return True
    before = before.rstrip(_CLOSERS).rstrip()
    if not before:
        return True
    if before.endswith(_ABBREVIATIONS):
        return False
    return before[-1] in _SENTENCE_END or before[-1] in _OPENERS


def _date_use(text: str, start: int, end: int) -> bool:
    """'in April', 'April 5', '5 April' are dates; 'I took April to the park' is a name."""
    if re.match(r"\s*\d", text[end:]):
        return True
    prev = re.search(r"([\w']+)\W*$", text[:start])
    return bool(prev) and (prev[1].lower() in _DATE_PREPS or prev[1][0].isdigit())


def _scan(texts: list[tuple[str, str]]) -> list[_Occurrence]:
    occurrences: list[_Occurrence] = []
    for index, (role, text) in enumerate(texts):
        found: list[_Occurrence] = []
        for match in _TOKEN.finditer(text):
            word = _normalise_word(match.group())
            if word is None:
                continue
            start, end = match.start(), match.start() + len(word)
            date = word in _MONTHS and _date_use(text, start, end)
            found.append(_Occurrence(word, role, index, start, end, _sentence_initial(text, start), date))
        for a, b in pairwise(found):  # "Central Park", "Golden Gate Bridge": places, not a first name
            if _proper(a) and _proper(b) and re.fullmatch(r"[ \t]+", text[a.end : b.start]):
                a.in_run = b.in_run = True
        occurrences.extend(found)
    return occurrences


def _proper(occ: _Occurrence) -> bool:
    return not (occ.word in _NEVER_NAMES or occ.date or (occ.initial and occ.word.lower() in _STOPWORDS))


def infer_concept_name(
    dialogue: str,
    questions: Sequence[str],
    *,
    source: str = "<dialogue>",
    record: str = "<dialogue>",
    field: str = "dialogue",
) -> str:
    """Recover a concept's pseudonym, which the reference files never stored, from its dialogue and questions.

    The pseudonym is a single capitalised first name that the User turns use for the concept. Candidates are
    capitalised words that are not speaker labels ('User', 'Model', 'Dialogue'), weekdays, holidays,
    months used as dates, contractions, or part of a multi-word proper noun ('Central Park'). A sentence-initial
    word counts only if the word is also capitalised mid-sentence somewhere in the dialogue or the questions
    (so 'Sounds', 'What', 'Will you' are ignored, while a name like 'Will' or 'April' is found). Score:
    2 per User-turn use + 1 per Model-turn use + 2 per question mentioning it; ties go to the earliest use.
    Raises `DataError` naming `source`, `record` and `field` when no candidate exists.
    """
    if not isinstance(dialogue, str) or not dialogue.strip():
        raise DataError([Problem(source, record, field, "cannot infer the concept's name: the dialogue is empty")])
    dialogue_texts = _dialogue_turns(dialogue)
    texts = dialogue_texts + [("question", q) for q in questions if isinstance(q, str)]
    occurrences = [o for o in _scan(texts) if o.word not in _NEVER_NAMES and not o.date and not o.in_run]
    mid_words = {o.word for o in occurrences if not o.initial}
    in_dialogue = [o for o in occurrences if o.role != "question"]
    candidates = {o.word for o in in_dialogue if o.word in mid_words}
    counted = occurrences
    if not candidates:  # the name never appears mid-sentence: fall back to non-common sentence openers
        counted = [o for o in occurrences if o.word.lower() not in _STOPWORDS]
        candidates = {o.word for o in counted if o.role != "question"}
    if not candidates:
        raise DataError(
            [
                Problem(
                    source,
                    record,
                    field,
                    "cannot infer the concept's name: no capitalised word in the dialogue other than speaker labels, "
                    "sentence-initial common words, weekdays and dates (expected a pseudonym the User turns use, "
                    "as in 'User: I took Seth to the park ...')",
                )
            ]
        )
    score: dict[str, int] = dict.fromkeys(candidates, 0)
    first: dict[str, tuple[int, int]] = {}
    mentioned_in: dict[str, set[int]] = {w: set() for w in candidates}
    for occ in counted:
        if occ.word not in score:
            continue
        if occ.role == "question":
            mentioned_in[occ.word].add(occ.text_index)
            continue
        score[occ.word] += 2 if occ.role == "user" else 1
        first.setdefault(occ.word, (occ.text_index, occ.start))
    for word, indices in mentioned_in.items():
        score[word] += 2 * len(indices)
    return max(candidates, key=lambda w: (score[w], tuple(-x for x in first[w])))


# --------------------------------------------------------------------------------------------------------------
# Reference record -> canonical sample
# --------------------------------------------------------------------------------------------------------------


@dataclass
class _Sink:
    """Problems of one record of one source; a covered field already has its root-cause problem reported."""

    checker: Checker
    record: str
    covered: set[str] = field(default_factory=set)

    @property
    def source(self) -> str:
        return self.checker.source

    def explains(self, field_name: str) -> bool:
        return _ALL in self.covered or any(
            field_name == c or field_name.startswith((c + ".", c + "[")) for c in self.covered
        )

    def add(self, field_name: str, message: str, *, cover: bool = False) -> None:
        if self.explains(field_name):
            return
        self.checker.add(self.record, field_name, message)
        if cover:
            self.covered.add(field_name)


def _kind(value: Any) -> str:
    return "missing or null" if value is None else f"a {type(value).__name__}"


def _dialogue_entries(value: Any, sink: _Sink, drop_none: bool) -> tuple[list[str], list[Any]] | None:
    """Dialogue (field path, text) pairs in insertion order, from the dict (reference) or list form."""
    if isinstance(value, dict):
        items = [(k, v) for k, v in value.items() if not (drop_none and v is None)]
        return [f"dialogues.{k}" for k, _ in items], [v for _, v in items]
    if isinstance(value, list):
        return [f"dialogues[{j}]" for j in range(len(value))], list(value)
    sink.add("dialogues", f"must be an object (or a list) of dialogue strings, got {_kind(value)}", cover=True)
    return None


def _qa_entries(value: Any, sink: _Sink, n: int | None, drop_none: bool) -> tuple[list[str], list[Any]]:
    """Per-concept QA-list field paths and values, from {"concept_j": {"qa": [...]}} or a list over concepts."""
    entries: dict[int, tuple[str, Any]] = {}
    if isinstance(value, dict):
        for key, entry in value.items():
            if drop_none and entry is None:
                continue
            match = _CONCEPT_KEY.fullmatch(str(key))
            if not match:
                sink.add(f"qas.{key}", "unexpected key; expected concept_0, concept_1, ... (one per context image)")
                continue
            entries[int(match[1])] = (f"qas.{key}", entry)
        prefix = "qas.concept_{}"
    elif isinstance(value, list):
        entries = {j: (f"qas[{j}]", entry) for j, entry in enumerate(value)}
        prefix = "qas[{}]"
    else:
        sink.add(
            "qas", f"must be an object keyed concept_0, concept_1, ... (or a list), got {_kind(value)}", cover=True
        )
        return [f"qas.concept_{j}" for j in range(n or 0)], [None] * (n or 0)
    if n is not None and sorted(entries) != list(range(n)):
        got = [f"concept_{j}" for j in sorted(entries)] if isinstance(value, dict) else f"{len(entries)} entries"
        sink.add("qas", f"has {got} but the sample lists {n} context image(s) (expected concept_0 ... concept_{n - 1})")
    paths: list[str] = []
    lists: list[Any] = []
    for j in range(n) if n is not None else sorted(entries):
        if j not in entries:
            path = prefix.format(j)
            sink.covered.add(path)  # explained by the count problem above
            paths.append(path)
            lists.append(None)
            continue
        path, entry = entries[j]
        if isinstance(entry, dict) and "qa" in entry:
            paths.append(f"{path}.qa")
            lists.append(entry["qa"])
        elif isinstance(entry, list):
            paths.append(path)
            lists.append(entry)
        else:
            sink.add(path, f"must be an object {{'qa': [QA, ...]}}, got {_kind(entry)}", cover=True)
            paths.append(path)
            lists.append(None)
    return paths, lists


def _canonical_qa(qa: Any) -> Any:
    if not isinstance(qa, dict):
        return qa
    return {
        "id": qa.get("id"),
        "question": qa.get("question"),
        "options": qa.get("options"),
        "answer": qa.get("correct_answer"),
    }


_CANON_CONCEPT_FIELD = re.compile(r"concepts\[(\d+)\]\.(name|image|dialogue|qas)(.*)")


def _to_sample(
    sample_id: str,
    meta: Any,
    meta_sink: _Sink,
    gt: Any,
    gt_sink: _Sink,
    image_exists: ImageCheck | None,
    *,
    names: list[str] | None = None,
    drop_none: bool = False,
) -> CaptionSample:
    """Build the canonical dict from a meta record and its ground truth, parse it, report in reference terms."""
    if not isinstance(meta, dict):
        meta_sink.add("<record>", f"must be an object, got {_kind(meta)}", cover=True)
        meta_sink.covered.add(_ALL)
        meta = {}
    if not isinstance(gt, dict):
        gt_sink.add("<record>", f"must be an object with keys 'qas' and 'gts', got {_kind(gt)}", cover=True)
        gt_sink.covered.add(_ALL)
        gt = {}
    images = meta.get("concepts")
    if not isinstance(images, list):
        meta_sink.add("concepts", f"must be a list with one entry per context image, got {_kind(images)}", cover=True)
        images = None
    n = len(images) if images else None  # None: no usable concept list (already reported), skip cross-checks

    dialogue_paths: list[str] = []
    dialogues: list[Any] = []
    entries = _dialogue_entries(meta.get("dialogues"), meta_sink, drop_none)
    if entries is not None:
        dialogue_paths, dialogues = entries
        if n is not None and len(dialogues) != n:
            meta_sink.add(
                "dialogues",
                f"has {len(dialogues)} dialogue(s) but 'concepts' lists {n} image(s); the i-th dialogue belongs to "
                "the i-th image",
            )
    if n is not None:
        for j in range(len(dialogue_paths), n):
            dialogue_paths.append(f"dialogues[{j}]")
            meta_sink.covered.add(dialogue_paths[-1])
    qa_paths, qa_lists = _qa_entries(gt.get("qas"), gt_sink, n, drop_none)

    gts = gt.get("gts")
    bucket = min(len(gts), MAX_BUCKET) if isinstance(gts, list) and gts else 1
    if n is None and isinstance(gts, list):  # indices cannot be range-checked against a broken concept list
        gt_sink.covered.update(f"gts[{k}]" for k in range(len(gts)))
    concepts = []
    for j in range(n or 0):
        dialogue = dialogues[j] if j < len(dialogues) else None
        qa_list = qa_lists[j] if j < len(qa_lists) else None
        name = f"<concept_{j}: name not inferred>"
        if names is not None:
            name = names[j]
        elif isinstance(dialogue, str) and dialogue.strip():
            questions = [q.get("question") for q in qa_list if isinstance(q, dict)] if isinstance(qa_list, list) else []
            try:
                name = infer_concept_name(
                    dialogue,
                    [q for q in questions if isinstance(q, str)],
                    source=meta_sink.source,
                    record=meta_sink.record,
                    field=dialogue_paths[j],
                )
            except DataError as exc:
                for p in exc.problems:
                    meta_sink.add(p.field, p.message)
        concepts.append(
            {
                "name": name,
                "image": images[j],
                "dialogue": dialogue,
                "qas": [_canonical_qa(q) for q in qa_list] if isinstance(qa_list, list) else qa_list,
            }
        )
    obj = {
        "sample_id": sample_id,
        "bucket": bucket,
        "query_image": meta.get("imgs"),
        "concepts": concepts if images is not None else None,
        "positives": gts,
    }
    scratch = Checker("<canonical>")
    sample = parse_caption_sample(scratch, sample_id, obj, image_exists)
    for problem in scratch.problems:
        sink, path, message = _route(problem, meta_sink, gt_sink, dialogue_paths, qa_paths, names is not None)
        sink.add(path, message)
    return sample


def _route(
    problem: Problem,
    meta: _Sink,
    gt: _Sink,
    dialogue_paths: list[str],
    qa_paths: list[str],
    names_given: bool,
) -> tuple[_Sink, str, str]:
    """Translate a canonical field path into the reference file and field that hold the value."""
    f, message = problem.field, problem.message
    if f == "query_image":
        return meta, "imgs", message
    if f == "concepts":
        return meta, "concepts", message
    if f == "concepts[].name":
        origin = "given in concept_names" if names_given else "inferred from the dialogues"
        return meta, "dialogues", f"concept {message} (names {origin})"
    if f.startswith("positives"):
        return gt, "gts" + f[len("positives") :], message
    if f == "bucket":
        return gt, "gts", message
    match = _CANON_CONCEPT_FIELD.fullmatch(f)
    if match:
        j, part, rest = int(match[1]), match[2], match[3]
        if part == "image":
            return meta, f"concepts[{j}]", message
        if part in ("dialogue", "name"):
            path = dialogue_paths[j] if j < len(dialogue_paths) else f"dialogues[{j}]"
            return meta, path, message if part == "dialogue" else f"inferred concept name {message}"
        path = qa_paths[j] if j < len(qa_paths) else f"qas[{j}]"
        return gt, path + re.sub(r"\.answer$", ".correct_answer", rest), message
    return meta, f, message


# --------------------------------------------------------------------------------------------------------------
# Reading the reference files
# --------------------------------------------------------------------------------------------------------------

_BAD_JSON = object()


def _read_meta_records(path: Path, checker: Checker) -> list[tuple[int, Any]]:
    """(line number, object) per record; a bad line keeps its index so sample_{idx} keys stay aligned."""
    records: list[tuple[int, Any]] = []
    blank: int | None = None
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                blank = blank or lineno
                continue
            if blank is not None:
                checker.add(
                    f"line {blank}",
                    "<line>",
                    "blank line inside the file: records are keyed sample_{idx} by line order",
                )
                blank = None
            try:
                records.append((lineno, json.loads(line)))
            except json.JSONDecodeError as exc:
                checker.add(f"line {lineno} (sample_{len(records)})", "<json>", f"invalid JSON: {exc}")
                records.append((lineno, _BAD_JSON))
    if not records:
        checker.add("<file>", "<records>", "contains no samples")
    return records


def _read_json(path: Path, checker: Checker) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        checker.add("<file>", "<json>", f"invalid JSON: {exc}")
        return None


def _read_keyed(path: Path, checker: Checker, n: int, what: str) -> dict[str, Any] | None:
    """Read a JSON object keyed sample_0 ... sample_{n-1}; unknown and out-of-range keys are problems."""
    data = _read_json(path, checker)
    if data is None:
        return None
    if not isinstance(data, dict):
        checker.add("<file>", "<top level>", f"must be an object keyed sample_0, sample_1, ..., got {_kind(data)}")
        return None
    for key in data:
        match = _SAMPLE_KEY.fullmatch(key)
        if not match:
            checker.add(key, "<key>", f"unexpected key; expected sample_{{idx}} with idx < {n} ({what})")
        elif int(match[1]) >= n:
            checker.add(key, "<record>", f"no matching sample: there are only {n} ({what})")
    return data


def _read_sample_ids(path: Path, n: int) -> tuple[list[str] | None, Checker]:
    checker = Checker(str(path))
    data = _read_keyed(path, checker, n, "one per sample")
    if data is None:
        return None, checker
    ids: list[str] = []
    seen: dict[str, str] = {}
    for idx in range(n):
        key = f"sample_{idx}"
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            checker.add(key, "sample_id", f"must be a non-empty string, got {_kind(value)}")
        elif value in seen:
            checker.add(key, "sample_id", f"duplicate {value!r} (also {seen[value]})")
        else:
            seen[value] = key
        ids.append(value if isinstance(value, str) else "")
    return ids, checker


def _read_concept_names(path: Path, counts: list[int | None]) -> tuple[list[list[str] | None], Checker]:
    checker = Checker(str(path))
    data = _read_keyed(path, checker, len(counts), "one per sample")
    names: list[list[str] | None] = [None] * len(counts)
    if data is None:
        return names, checker
    for idx, count in enumerate(counts):
        key = f"sample_{idx}"
        value = data.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            checker.add(key, "<names>", f"must be a list of non-empty strings, got {_kind(value)}")
        elif count is not None and len(value) != count:
            checker.add(key, "<names>", f"has {len(value)} name(s) but the sample has {count} concept(s)")
        elif len(set(value)) != len(value):
            checker.add(key, "<names>", f"names must be unique within a sample, got {value}")
        else:
            names[idx] = value
    return names, checker


def _concept_count(obj: Any) -> int | None:
    return len(obj["concepts"]) if isinstance(obj, dict) and isinstance(obj.get("concepts"), list) else None


def load_reference_testset(
    meta_jsonl: Path,
    qas_gt_json: Path,
    image_root: Path,
    *,
    sample_ids: Path | None = None,
    concept_names: Path | None = None,
    open_images: bool = True,
) -> list[CaptionSample]:
    """Read the paper's test set (`meta_*.jsonl` + `QAS_GT_test.json`) into canonical samples.

    Image paths in the returned samples stay relative to `image_root` (as in the jsonl). Sample ids are
    `sample_{idx}` by line order, or the original ids when `sample_ids` (an exported `sample_ids.json`) is
    given. Concept names are inferred from the dialogues (`infer_concept_name`) unless `concept_names`
    (an exported `concept_names.json`) gives them. Every problem in either file is raised together as a
    `DataError` naming the file, the record (`line 13 (sample_12)` in the jsonl, `sample_12` in the GT) and
    the reference field; nothing is dropped.
    """
    meta_jsonl, qas_gt_json, image_root = Path(meta_jsonl), Path(qas_gt_json), Path(image_root)
    for path in (meta_jsonl, qas_gt_json):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file (the paper's test set is {META_FILE} + {QAS_GT_FILE})")
    if not image_root.is_dir():
        raise FileNotFoundError(f"{image_root}: image root is not a directory")
    meta_checker = Checker(str(meta_jsonl))
    gt_checker = Checker(str(qas_gt_json))
    records = _read_meta_records(meta_jsonl, meta_checker)
    gt_all = _read_keyed(qas_gt_json, gt_checker, len(records), f"one per line of {meta_jsonl.name}")
    if gt_all is None:
        raise DataError(meta_checker.problems + gt_checker.problems)
    extra: list[Checker] = []
    ids: list[str] | None = None
    if sample_ids is not None:
        ids, ids_checker = _read_sample_ids(Path(sample_ids), len(records))
        extra.append(ids_checker)
    names: list[list[str] | None] | None = None
    if concept_names is not None:
        counts = [_concept_count(obj) for _, obj in records]
        names, names_checker = _read_concept_names(Path(concept_names), counts)
        extra.append(names_checker)

    image_exists = image_checker(image_root, open_images=open_images)
    samples: list[CaptionSample] = []
    for idx, (lineno, obj) in enumerate(records):
        key = f"sample_{idx}"
        if obj is _BAD_JSON:
            continue
        meta_sink = _Sink(meta_checker, f"line {lineno} ({key})")
        gt_sink = _Sink(gt_checker, key)
        gt = gt_all.get(key)
        if key not in gt_all:
            gt_sink.add("<record>", f"missing: {meta_jsonl.name} line {lineno} has no ground truth", cover=True)
            gt_sink.covered.add(_ALL)
        sample_names = names[idx] if names is not None else None
        if names is not None and sample_names is None:  # the names file's problem is reported: do not infer
            sample_names = [f"<concept_{j}>" for j in range(counts[idx] or 0)]
        sample = _to_sample(
            ids[idx] if ids and ids[idx] else key, obj, meta_sink, gt, gt_sink, image_exists, names=sample_names
        )
        samples.append(sample)
    problems = meta_checker.problems + gt_checker.problems + [p for c in extra for p in c.problems]
    if problems:
        raise DataError(problems)
    return samples


# --------------------------------------------------------------------------------------------------------------
# The HF captioning dataset
# --------------------------------------------------------------------------------------------------------------

_PNG_MODES = {"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"}
_FILE_BUILDERS = {".parquet": "parquet", ".arrow": "arrow", ".json": "json", ".jsonl": "json"}


def _open_hf(path_or_id: str, split: str) -> tuple[Any, Path | None]:
    import datasets  # heavy import, only needed here

    local = Path(path_or_id).expanduser()
    if local.exists():
        if (local / "dataset_dict.json").is_file() or (local / "state.json").is_file():
            loaded = datasets.load_from_disk(str(local))
            if isinstance(loaded, datasets.DatasetDict):
                if split not in loaded:
                    raise ValueError(f"{path_or_id}: no split {split!r}; available: {sorted(loaded)}")
                return loaded[split], local
            return loaded, local  # a single saved Dataset: `split` does not apply
        builder = _FILE_BUILDERS.get(local.suffix.lower()) if local.is_file() else None
        if builder is not None:  # one data file holds one split: `split` does not apply
            return datasets.load_dataset(builder, data_files=str(local), split="train"), local.parent
        return datasets.load_dataset(str(local), split=split), local
    return datasets.load_dataset(path_or_id, split=split), None


def _maybe_json(value: Any) -> Any:
    """HF exports sometimes store nested columns as JSON strings; decode those, leave anything else alone."""
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _store_image(value: Any, image_dir: Path, relative: str, base: Path | None, sink: _Sink, path: str) -> str | None:
    """Write an HF image value (PIL image, {'bytes','path'} dict or a file path) as PNG; return its relative path."""
    try:
        if isinstance(value, Image.Image):
            image = value
        elif isinstance(value, dict) and value.get("bytes"):
            image = Image.open(io.BytesIO(value["bytes"]))
        elif isinstance(value, (dict, str)) and (value.get("path") if isinstance(value, dict) else value):
            file = Path(value["path"] if isinstance(value, dict) else value)
            if not file.is_absolute() and base is not None:
                file = base / file
            image = Image.open(file)
        else:
            sink.add(path, f"must be an image, got {_kind(value)}", cover=True)
            return None
        image.load()
        if image.mode not in _PNG_MODES:
            image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        target = image_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        image.save(target, format="PNG")
    except Exception as exc:  # noqa: BLE001 - any decoder or file failure makes this image unusable
        sink.add(path, f"cannot read the image: {exc}", cover=True)
        return None
    return relative


def load_hf_caption_dataset(
    path_or_id: str,
    split: str = "test",
    *,
    image_dir: Path,
    qas_gt_json: Path | None = None,
) -> list[CaptionSample]:
    """Read the HF captioning set (`Yeongtak/benchmark_CoViP_captioning`) into canonical samples.

    ASSUMED ROW FORMAT (the dataset cannot be opened from here; this is inferred from the reference code):
      - `imgs`: the query image (an HF Image: decoded PIL image, or {'bytes', 'path'}, or a file path);
      - `concepts`: list of context images, same forms;
      - `dialogues`: list of dialogue strings, or a dict whose values in insertion order are the dialogues
        (Arrow pads a dict column with None for keys other rows have: None values are ignored);
      - `qas`: list over concepts of {"qa": [QA, ...]} (or of bare QA lists), or the reference's dict form
        {"concept_j": {"qa": [...]}} (None padding ignored); QA = {id, question, options {A-D}, correct_answer};
      - `gts`: list of positive concept indices.
    `dialogues`, `qas` and `gts` may also be JSON strings. If the dataset carries no `qas`/`gts` columns, pass
    the reference `qas_gt_json` (keyed `sample_{idx}` by row order); it then replaces those columns.
    Rows become samples `sample_{idx}` by row order. `path_or_id` is a local directory (`save_to_disk` output:
    `load_from_disk`; otherwise `load_dataset` on the directory), a single .parquet/.arrow/.json(l) file (the
    whole file is read, `split` does not apply), or a Hub id (`load_dataset`). Every image is
    written as PNG under `image_dir` (`sample_{idx}/query.png`, `sample_{idx}/concept_{j}.png`, overwritten on
    each call) and the returned image paths are relative to `image_dir`. Problems raise one `DataError`.
    """
    image_dir = Path(image_dir)
    ds, base = _open_hf(path_or_id, split)
    checker = Checker(f"{path_or_id} (split {split})")
    required = ["imgs", "concepts", "dialogues"] + (["qas", "gts"] if qas_gt_json is None else [])
    missing = [c for c in required if c not in ds.column_names]
    if missing:
        hint = "; pass qas_gt_json for the ground truth" if {"qas", "gts"} & set(missing) else ""
        for column in missing:
            checker.add("<dataset>", column, f"missing column (columns: {ds.column_names}){hint}")
        checker.raise_if_any()
    gt_checker = Checker(str(qas_gt_json)) if qas_gt_json is not None else checker
    gt_all: dict[str, Any] | None = None
    if qas_gt_json is not None:
        gt_all = _read_keyed(Path(qas_gt_json), gt_checker, len(ds), f"one per row of {path_or_id}")
        if gt_all is None:
            raise DataError(gt_checker.problems)
    if len(ds) == 0:
        checker.add("<dataset>", "<rows>", "contains no samples")
    image_dir.mkdir(parents=True, exist_ok=True)
    image_exists = image_checker(image_dir, open_images=False)
    samples: list[CaptionSample] = []
    for idx, row in enumerate(ds):
        key = f"sample_{idx}"
        meta_sink = _Sink(checker, f"row {idx} ({key})")
        query = _store_image(row["imgs"], image_dir, f"{key}/query.png", base, meta_sink, "imgs")
        images = row["concepts"]
        if isinstance(images, list):
            images = [
                _store_image(v, image_dir, f"{key}/concept_{j}.png", base, meta_sink, f"concepts[{j}]")
                for j, v in enumerate(images)
            ]
        meta = {"imgs": query, "concepts": images, "dialogues": _maybe_json(row["dialogues"])}
        if gt_all is not None:
            gt_sink = _Sink(gt_checker, key)
            gt = gt_all.get(key)
            if key not in gt_all:
                gt_sink.add("<record>", f"missing: row {idx} of {path_or_id} has no ground truth", cover=True)
                gt_sink.covered.add(_ALL)
        else:
            gt_sink = _Sink(checker, meta_sink.record)
            gt = {"qas": _maybe_json(row["qas"]), "gts": _maybe_json(row["gts"])}
        samples.append(_to_sample(key, meta, meta_sink, gt, gt_sink, image_exists, drop_none=True))
    problems = checker.problems + (gt_checker.problems if gt_checker is not checker else [])
    if problems:
        raise DataError(problems)
    return samples


def load_hf_diagnostic_dataset(
    path_or_id: str, task: str, split: str = "test", *, image_dir: Path, trigger: str = "SKS"
) -> list[DiagnosticSample]:
    """Read the paper's diagnostic sets (`Yeongtak/lsd`, `Yeongtak/lar`, `Yeongtak/itr`) into canonical samples.

    ASSUMED ROW FORMAT (inferred from the reference scripts, covip_protocol.md §4): `images_context` (list of
    images), `dialogues_context` (list of strings, same order), `query_image`, `answer`, and `last_action` for
    LAR (the LAR scripts also read `answer`). The ITR set carries no trigger column: the reference checks the
    literal `SKS`, so `trigger` (default SKS) is set on every ITR sample. Images are written as PNG under
    `image_dir/sample_{idx}/`; returned paths are relative to it. Problems raise one `DataError`.
    """
    image_dir = Path(image_dir)
    ds, base = _open_hf(path_or_id, split)
    checker = Checker(f"{path_or_id} (split {split})")
    required = ["images_context", "dialogues_context", "query_image", DIAGNOSTIC_TARGET[task]]
    if task == "itr":
        required.remove("trigger")
    for column in [c for c in required if c not in ds.column_names]:
        checker.add("<dataset>", column, f"missing column (columns: {ds.column_names})")
    checker.raise_if_any()
    image_dir.mkdir(parents=True, exist_ok=True)
    samples = []
    for idx, row in enumerate(ds):
        key = f"sample_{idx}"
        sink = _Sink(checker, f"row {idx} ({key})")
        images = row["images_context"]
        if isinstance(images, list):
            images = [
                _store_image(v, image_dir, f"{key}/memory_{j}.png", base, sink, f"images_context[{j}]")
                for j, v in enumerate(images)
            ]
        obj = {
            "sample_id": key,
            "images_context": images,
            "dialogues_context": _maybe_json(row["dialogues_context"]),
            "query_image": _store_image(row["query_image"], image_dir, f"{key}/query.png", base, sink, "query_image"),
            "answer": row.get("answer") or "",
            "last_action": row.get("last_action") or "",
            "trigger": trigger if task == "itr" else "",
        }
        samples.append(parse_diagnostic_sample(checker, sink.record, obj, task, image_checker(image_dir)))
    if not samples:
        checker.add("<dataset>", "<rows>", "contains no samples")
    checker.raise_if_any()
    return samples


# --------------------------------------------------------------------------------------------------------------
# Writing the reference files
# --------------------------------------------------------------------------------------------------------------


def _export_path(relative: str) -> str | None:
    """Where an image goes under out_dir: kept if already under images/, else prefixed; None if unsafe."""
    path = PurePosixPath(relative.replace("\\", "/"))
    if not relative or path.is_absolute() or ".." in path.parts:
        return None
    posix = path.as_posix()
    return posix if path.parts[0] == EXPORT_IMAGE_DIR else f"{EXPORT_IMAGE_DIR}/{posix}"


def export_reference(samples: list[CaptionSample], image_root: Path, out_dir: Path) -> None:
    """Write canonical samples in the paper's test-set structure, so the reference scripts can run on our data.

    Writes `meta_CoViP_testset_cleaned.jsonl` (imgs / concepts / dialogues {concept_j: ...}),
    `QAS_GT_test.json` (indent=4, ASCII-escaped, like the reference), copies every image to
    `out_dir/images/...` (a path already starting with `images/` is kept, anything else is prefixed with it),
    and, because the reference keys samples by line order and never stores pseudonyms, `sample_ids.json`
    (`sample_{idx}` -> our sample_id) and `concept_names.json` (`sample_{idx}` -> names). Reload with
    `load_reference_testset(out/meta, out/QAS, out, sample_ids=..., concept_names=...)`. Samples are re-checked
    first (images must exist under `image_root`); a name that `infer_concept_name` would not recover from its
    dialogue gives a warning. Existing files of the same names are overwritten.
    """
    image_root, out_dir = Path(image_root), Path(out_dir)
    if not samples:
        raise ValueError("export_reference: no samples to export")
    checker = Checker(f"export input (image_root={image_root})")
    image_exists = image_checker(image_root, open_images=False)
    copies: dict[str, str] = {}  # destination -> source relative path
    for i, sample in enumerate(samples):
        record = f"sample {i} (sample_id={sample.sample_id})"
        parse_caption_sample(checker, record, json.loads(json.dumps(sample.to_dict())), image_exists)
        images = [("query_image", sample.query_image)] + [
            (f"concepts[{j}].image", c.image) for j, c in enumerate(sample.concepts)
        ]
        for field_name, relative in images:
            target = _export_path(relative)
            if target is None:
                checker.add(record, field_name, f"image path {relative!r} must be relative, without '..'")
            elif copies.setdefault(target, relative) != relative:
                checker.add(
                    record, field_name, f"{relative!r} and {copies[target]!r} would both be exported as {target!r}"
                )
    check_unique_ids(checker, samples)
    checker.raise_if_any()

    out_dir.mkdir(parents=True, exist_ok=True)
    for target, relative in copies.items():
        dest = out_dir / target
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(image_root / relative, dest)
    meta_lines: list[str] = []
    gt: dict[str, Any] = {}
    ids: dict[str, str] = {}
    names: dict[str, list[str]] = {}
    unrecoverable: list[str] = []
    for idx, sample in enumerate(samples):
        key = f"sample_{idx}"
        record = {
            "imgs": _export_path(sample.query_image),
            "concepts": [_export_path(c.image) for c in sample.concepts],
            "dialogues": {f"concept_{j}": c.dialogue for j, c in enumerate(sample.concepts)},
        }
        meta_lines.append(json.dumps(record) + "\n")
        gt[key] = {
            "qas": {
                f"concept_{j}": {
                    "qa": [
                        {"id": q.id, "question": q.question, "options": dict(q.options), "correct_answer": q.answer}
                        for q in c.qas
                    ]
                }
                for j, c in enumerate(sample.concepts)
            },
            "gts": list(sample.positives),
        }
        ids[key] = sample.sample_id
        names[key] = [c.name for c in sample.concepts]
        for j, c in enumerate(sample.concepts):
            try:
                inferred = infer_concept_name(c.dialogue, [q.question for q in c.qas])
            except DataError:
                inferred = None
            if inferred != c.name:
                unrecoverable.append(f"{key} ({sample.sample_id}) concept_{j}: {c.name!r} inferred as {inferred!r}")
    (out_dir / META_FILE).write_text("".join(meta_lines), encoding="utf-8")
    (out_dir / QAS_GT_FILE).write_text(json.dumps(gt, indent=4), encoding="utf-8")
    (out_dir / SAMPLE_IDS_FILE).write_text(json.dumps(ids, indent=4) + "\n", encoding="utf-8")
    (out_dir / CONCEPT_NAMES_FILE).write_text(json.dumps(names, indent=4) + "\n", encoding="utf-8")
    if unrecoverable:
        warnings.warn(
            f"{len(unrecoverable)} concept name(s) are not recoverable from their dialogue by infer_concept_name "
            f"(kept in {CONCEPT_NAMES_FILE}); first: {unrecoverable[0]}",
            stacklevel=2,
        )
