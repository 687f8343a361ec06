"""One reference record (a meta line and its ground truth) into a canonical `CaptionSample`.

Problems are reported in the reference's own terms (file, `sample_12` / `line 13`, and the reference field such
as `qas.concept_1.qa[2].correct_answer`), all at once, and nothing is dropped: the canonical checks of
`parse_caption_sample` run on the converted record and each of their problems is routed back to the reference
file and field that holds the value.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from covip.tasks.data.schema import (
    MAX_BUCKET,
    CaptionSample,
    Checker,
    DataError,
    Problem,
    parse_caption_sample,
)
from covip.tasks.formats.names import infer_concept_name

ALL = "*"  # a covered field meaning "the whole record"
_CONCEPT_KEY = re.compile(r"concept_(0|[1-9][0-9]*)")

ImageCheck = Callable[[str], "str | None"]


@dataclass
class Sink:
    """Problems of one record of one source; a covered field already has its root-cause problem reported."""

    checker: Checker
    record: str
    covered: set[str] = field(default_factory=set)

    @property
    def source(self) -> str:
        return self.checker.source

    def explains(self, field_name: str) -> bool:
        return ALL in self.covered or any(
            field_name == c or field_name.startswith((c + ".", c + "[")) for c in self.covered
        )

    def add(self, field_name: str, message: str, *, cover: bool = False) -> None:
        if self.explains(field_name):
            return
        self.checker.add(self.record, field_name, message)
        if cover:
            self.covered.add(field_name)


def kind_of(value: Any) -> str:
    return "missing or null" if value is None else f"a {type(value).__name__}"


def _dialogue_entries(value: Any, sink: Sink, drop_none: bool) -> tuple[list[str], list[Any]] | None:
    """Dialogue (field path, text) pairs in insertion order, from the dict (reference) or list form."""
    if isinstance(value, dict):
        items = [(k, v) for k, v in value.items() if not (drop_none and v is None)]
        return [f"dialogues.{k}" for k, _ in items], [v for _, v in items]
    if isinstance(value, list):
        return [f"dialogues[{j}]" for j in range(len(value))], list(value)
    sink.add("dialogues", f"must be an object (or a list) of dialogue strings, got {kind_of(value)}", cover=True)
    return None


def _qa_entries(value: Any, sink: Sink, n: int | None, drop_none: bool) -> tuple[list[str], list[Any]]:
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
            "qas", f"must be an object keyed concept_0, concept_1, ... (or a list), got {kind_of(value)}", cover=True
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
            sink.add(path, f"must be an object {{'qa': [QA, ...]}}, got {kind_of(entry)}", cover=True)
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


def to_sample(
    sample_id: str,
    meta: Any,
    meta_sink: Sink,
    gt: Any,
    gt_sink: Sink,
    image_exists: ImageCheck | None,
    *,
    names: list[str] | None = None,
    drop_none: bool = False,
) -> CaptionSample:
    """Build the canonical dict from a meta record and its ground truth, parse it, report in reference terms."""
    if not isinstance(meta, dict):
        meta_sink.add("<record>", f"must be an object, got {kind_of(meta)}", cover=True)
        meta_sink.covered.add(ALL)
        meta = {}
    if not isinstance(gt, dict):
        gt_sink.add("<record>", f"must be an object with keys 'qas' and 'gts', got {kind_of(gt)}", cover=True)
        gt_sink.covered.add(ALL)
        gt = {}
    images = meta.get("concepts")
    if not isinstance(images, list):
        meta_sink.add("concepts", f"must be a list with one entry per context image, got {kind_of(images)}", cover=True)
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
    meta: Sink,
    gt: Sink,
    dialogue_paths: list[str],
    qa_paths: list[str],
    names_given: bool,
) -> tuple[Sink, str, str]:
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
