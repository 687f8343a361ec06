"""Conversion between the paper's reference test-set files, the HF captioning set and our canonical schema.

The paper (repo `oyt9306/CoViP`, see `docs/protocol.md` §1.2-1.6) keeps a test set in two files:

    meta_CoViP_testset_cleaned.jsonl   one line per sample: {"imgs": query image path,
                                       "concepts": [context image paths], "dialogues": {key: dialogue, ...}}
    QAS_GT_test.json                   {"sample_{idx}": {"qas": {"concept_{j}": {"qa": [QA, QA, QA]}},
                                                         "gts": [positive concept indices]}}

Samples are keyed `sample_{idx}` by line order of the jsonl (idx from 0); the i-th dialogue value (insertion
order) belongs to the i-th concept image; a QA is {"id", "question", "options": {A, B, C, D}, "correct_answer"}.
The concepts' pseudonyms are not stored anywhere (the reference never saved them), so the loaders infer each
name from its dialogue (`infer_concept_name`).

Everything converts into `covip.tasks.data.schema.CaptionSample` through `parse_caption_sample`, so the checks are
the canonical ones; problems are reported in the reference's own terms (file, `sample_12` / `line 13`, and the
reference field such as `qas.concept_1.qa[2].correct_answer`), all at once, and nothing is dropped.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from covip.tasks.data.canonical import image_checker, jsonl_lines
from covip.tasks.data.schema import (
    CaptionSample,
    Checker,
    DataError,
    Problem,
)
from covip.tasks.formats.convert import ALL, Sink, kind_of, to_sample

META_FILE = "meta_CoViP_testset_cleaned.jsonl"
QAS_GT_FILE = "QAS_GT_test.json"
SAMPLE_IDS_FILE = "sample_ids.json"
CONCEPT_NAMES_FILE = "concept_names.json"

_SAMPLE_KEY = re.compile(r"sample_(0|[1-9][0-9]*)")


_BAD_JSON = object()


def _read_meta_records(path: Path, checker: Checker) -> list[tuple[int, Any]]:
    """(line number, object) per record; a bad line keeps its index so sample_{idx} keys stay aligned."""
    records: list[tuple[int, Any]] = []
    blank: int | None = None
    for lineno, line, problem in jsonl_lines(path):
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
        if problem:
            checker.add(f"line {lineno} (sample_{len(records)})", "<encoding>", problem)
            records.append((lineno, _BAD_JSON))
            continue
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


def read_keyed(path: Path, checker: Checker, n: int, what: str) -> dict[str, Any] | None:
    """Read a JSON object keyed sample_0 ... sample_{n-1}; unknown and out-of-range keys are problems."""
    data = _read_json(path, checker)
    if data is None:
        return None
    if not isinstance(data, dict):
        checker.add("<file>", "<top level>", f"must be an object keyed sample_0, sample_1, ..., got {kind_of(data)}")
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
    data = read_keyed(path, checker, n, "one per sample")
    if data is None:
        return None, checker
    ids: list[str] = []
    seen: dict[str, str] = {}
    for idx in range(n):
        key = f"sample_{idx}"
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            checker.add(key, "sample_id", f"must be a non-empty string, got {kind_of(value)}")
        elif value in seen:
            checker.add(key, "sample_id", f"duplicate {value!r} (also {seen[value]})")
        else:
            seen[value] = key
        ids.append(value if isinstance(value, str) else "")
    return ids, checker


def _read_concept_names(path: Path, counts: list[int | None]) -> tuple[list[list[str] | None], Checker]:
    checker = Checker(str(path))
    data = read_keyed(path, checker, len(counts), "one per sample")
    names: list[list[str] | None] = [None] * len(counts)
    if data is None:
        return names, checker
    for idx, count in enumerate(counts):
        key = f"sample_{idx}"
        value = data.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            checker.add(key, "<names>", f"must be a list of non-empty strings, got {kind_of(value)}")
        elif count is not None and len(value) != count:
            checker.add(key, "<names>", f"has {len(value)} name(s) but the sample has {count} concept(s)")
        elif len(set(value)) != len(value):
            checker.add(key, "<names>", f"names must be unique within a sample, got {value}")
        else:
            names[idx] = value
    return names, checker


def _concept_count(obj: Any) -> int | None:
    return len(obj["concepts"]) if isinstance(obj, dict) and isinstance(obj.get("concepts"), list) else None


_SAMPLE_OF = re.compile(r"\bsample_(\d+)\b")


def keep_good(samples: dict[int, CaptionSample], problems: list[Problem], skipped: list[Problem] | None) -> list:
    """The samples, in order, when there is no problem; else raise, or (lenient: `skipped` given) leave out each
    sample that has a problem and move its problems to `skipped`."""
    if not problems:
        return list(samples.values())
    owners = [_SAMPLE_OF.search(p.record) for p in problems]
    if skipped is None or not all(owners):
        raise DataError(problems)
    bad = {int(owner[1]) for owner in owners if owner}
    skipped.extend(problems)
    return [sample for idx, sample in samples.items() if idx not in bad]


def load_reference_testset(
    meta_jsonl: Path,
    qas_gt_json: Path,
    image_root: Path,
    *,
    sample_ids: Path | None = None,
    concept_names: Path | None = None,
    open_images: bool = True,
    skipped: list[Problem] | None = None,
) -> list[CaptionSample]:
    """Read the paper's test set (`meta_*.jsonl` + `QAS_GT_test.json`) into canonical samples.

    Image paths in the returned samples stay relative to `image_root` (as in the jsonl). Sample ids are
    `sample_{idx}` by line order, or the original ids when `sample_ids` (an exported `sample_ids.json`) is
    given. Concept names are inferred from the dialogues (`infer_concept_name`) unless `concept_names`
    (an exported `concept_names.json`) gives them. Every problem in either file is raised together as a
    `DataError` naming the file, the record (`line 13 (sample_12)` in the jsonl, `sample_12` in the GT) and
    the reference field; nothing is dropped. Lenient mode, the reference loader's behaviour made explicit: with a
    `skipped` list, a sample that has problems is left out and its problems are appended to the list (problems of
    no one sample, such as an unreadable file, still raise).
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
    gt_all = read_keyed(qas_gt_json, gt_checker, len(records), f"one per line of {meta_jsonl.name}")
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
    samples: dict[int, CaptionSample] = {}
    for idx, (lineno, obj) in enumerate(records):
        key = f"sample_{idx}"
        if obj is _BAD_JSON:
            continue
        meta_sink = Sink(meta_checker, f"line {lineno} ({key})")
        gt_sink = Sink(gt_checker, key)
        gt = gt_all.get(key)
        if key not in gt_all:
            gt_sink.add("<record>", f"missing: {meta_jsonl.name} line {lineno} has no ground truth", cover=True)
            gt_sink.covered.add(ALL)
        sample_names = names[idx] if names is not None else None
        if names is not None and sample_names is None:  # the names file's problem is reported: do not infer
            sample_names = [f"<concept_{j}>" for j in range(counts[idx] or 0)]
        sample = to_sample(
            ids[idx] if ids and ids[idx] else key, obj, meta_sink, gt, gt_sink, image_exists, names=sample_names
        )
        samples[idx] = sample
    problems = meta_checker.problems + gt_checker.problems + [p for c in extra for p in c.problems]
    return keep_good(samples, problems, skipped)
