"""Writing canonical samples in the paper's test-set structure, so that the reference scripts run on our data."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path, PurePosixPath
from typing import Any

from covip.tasks.data.canonical import image_checker
from covip.tasks.data.schema import (
    CaptionSample,
    Checker,
    DataError,
    check_unique_ids,
    parse_caption_sample,
)
from covip.tasks.formats.names import infer_concept_name
from covip.tasks.formats.testset import CONCEPT_NAMES_FILE, META_FILE, QAS_GT_FILE, SAMPLE_IDS_FILE

EXPORT_IMAGE_DIR = "images"


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
