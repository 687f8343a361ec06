"""Reading and writing the canonical on-disk dataset.

Layout of a dataset directory (what `covip-data build` writes and every task reads):

    DIR/manifest.json          format, builder parameters, sha256 of every other file
    DIR/README.md              dataset card
    DIR/caption_{split}.jsonl  one CaptionSample per line (schema.py)
    DIR/{lsd,lar,itr}_{split}.jsonl  one DiagnosticSample per line (schema.py)
    DIR/images/...             PNG files; samples refer to them by path relative to DIR

Reading validates every record and raises `DataError` naming file, record and field.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from covip.tasks.data.schema import (
    DIAGNOSTIC_TARGET,
    CaptionSample,
    Checker,
    DiagnosticSample,
    check_unique_ids,
    parse_caption_sample,
    parse_diagnostic_sample,
)

FORMAT = "covip-canonical"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SPLITS = ("test", "train")


def caption_file(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    return f"caption_{split}.jsonl"


def diagnostic_file(task: str, split: str) -> str:
    if task not in DIAGNOSTIC_TARGET:
        raise ValueError(f"unknown diagnostic task {task!r}; expected one of {tuple(DIAGNOSTIC_TARGET)}")
    caption_file(split)  # validates the split
    return f"{task}_{split}.jsonl"


TASKS = ("caption", *DIAGNOSTIC_TARGET)  # order fixed: the builder derives per-task seeds from it


def task_file(task: str, split: str) -> str:
    """The JSONL file of one task's split: `caption_{split}.jsonl` or `{lsd,lar,itr}_{split}.jsonl`."""
    return caption_file(split) if task == "caption" else diagnostic_file(task, split)


@dataclass(frozen=True)
class CaptionDataset:
    """Validated samples of one split, with the directory their image paths are relative to."""

    root: Path
    split: str
    samples: tuple[CaptionSample, ...]
    manifest_sha256: str

    def image_path(self, relative: str) -> Path:
        return self.root / relative


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def image_checker(root: Path, *, open_images: bool = True):
    """Return a function that says what is wrong with an image reference, or None."""

    def check(relative: str) -> str | None:
        path = (root / relative).resolve()
        if not path.is_relative_to(root.resolve()):
            return f"image path {relative!r} escapes the dataset directory"
        if not path.is_file():
            return f"image file {relative!r} does not exist"
        if open_images:
            try:
                with Image.open(path) as im:
                    im.verify()
            except Exception as exc:  # noqa: BLE001 - any decoder failure means unreadable
                return f"image file {relative!r} is unreadable: {exc}"
        return None

    return check


def jsonl_lines(path: Path) -> Iterator[tuple[int, str, str | None]]:
    """(line number, text, problem) per line; a line that is not UTF-8 is read with replacement characters, so its
    record can still be named, and its problem says which byte is wrong."""
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                yield lineno, raw.decode("utf-8"), None
            except UnicodeDecodeError as exc:
                problem = f"not UTF-8: byte {raw[exc.start]:#04x} at column {exc.start + 1}"
                yield lineno, raw.decode("utf-8", errors="replace"), problem


def sample_label(lineno: int, text: str) -> str:
    """`line N (sample_id=X)` when the line parses far enough to say its sample, else `line N`."""
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return f"line {lineno}"
    sid = obj.get("sample_id") if isinstance(obj, dict) else None
    return f"line {lineno} (sample_id={sid})" if isinstance(sid, str) and sid else f"line {lineno}"


def read_jsonl(path: Path, checker: Checker) -> list[tuple[str, Any]]:
    """Parse a JSONL file into (record label, object) pairs; bad bytes or JSON are problems, not skips."""
    records = []
    for lineno, line, problem in jsonl_lines(path):
        if not line.strip():
            continue
        if problem:
            checker.add(sample_label(lineno, line), "<encoding>", problem)
            continue
        try:
            records.append((f"line {lineno}", json.loads(line)))
        except json.JSONDecodeError as exc:
            checker.add(f"line {lineno}", "<json>", f"invalid JSON: {exc}")
    return records


def _load_split(root: Path, filename: str, parse, open_images: bool) -> tuple[list, str]:
    """Parse every record of one JSONL file with `parse(checker, record, obj, image_check)`; raise on any problem."""
    path = root / filename
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; is {root} a CoViP dataset directory (covip-data build)?")
    checker = Checker(str(path))
    check_image = image_checker(root, open_images=open_images)
    samples = []
    for label, obj in read_jsonl(path, checker):
        sid = obj.get("sample_id") if isinstance(obj, dict) else None
        record = f"{label} (sample_id={sid})" if sid else label
        samples.append(parse(checker, record, obj, check_image))
    if not samples and not checker.problems:
        checker.add("<file>", "<records>", "contains no samples")
    check_unique_ids(checker, samples)
    checker.raise_if_any()
    manifest = root / MANIFEST
    return samples, sha256_file(manifest) if manifest.is_file() else ""


def load_caption_dataset(root: str | Path, split: str = "test", *, open_images: bool = True) -> CaptionDataset:
    """Load and validate one split of a canonical dataset directory."""
    root = Path(root)
    samples, manifest_sha = _load_split(root, caption_file(split), parse_caption_sample, open_images)
    return CaptionDataset(root, split, tuple(samples), manifest_sha)


def load_diagnostic_dataset(
    root: str | Path, task: str, split: str = "test", *, open_images: bool = True
) -> tuple[tuple[DiagnosticSample, ...], str]:
    """Load and validate one diagnostic task's split: (samples, manifest sha256)."""
    root = Path(root)

    def parse(checker: Checker, record: str, obj, check_image) -> DiagnosticSample:
        return parse_diagnostic_sample(checker, record, obj, task, check_image)

    samples, manifest_sha = _load_split(root, diagnostic_file(task, split), parse, open_images)
    return tuple(samples), manifest_sha


def write_manifest(root: Path, meta: dict[str, Any]) -> Path:
    """Write manifest.json listing the sha256 of every file under root (sorted, reproducible)."""
    files = {
        p.relative_to(root).as_posix(): sha256_file(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, **meta, "files": files}
    out = root / MANIFEST
    out.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return out


def verify_manifest(root: Path) -> list[str]:
    """Return the files whose sha256 differs from the manifest (empty when intact)."""
    manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    bad = []
    for rel, digest in manifest.get("files", {}).items():
        path = root / rel
        if not path.is_file() or sha256_file(path) != digest:
            bad.append(rel)
    return bad


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
