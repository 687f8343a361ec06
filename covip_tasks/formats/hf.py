"""The paper's HF layouts (captioning set and the LSD/LAR/ITR sets) into canonical samples.

The HF datasets cannot be opened from here: the row formats below are inferred from the reference code that
consumes them, and each loader says what it assumes. Images are written out as PNG so that samples refer to
files, like every other source.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from PIL import Image

from covip.tasks.data.canonical import image_checker
from covip.tasks.data.schema import (
    DIAGNOSTIC_TARGET,
    CaptionSample,
    Checker,
    DataError,
    DiagnosticSample,
    Problem,
    parse_diagnostic_sample,
)
from covip.tasks.formats.convert import ALL, Sink, kind_of, to_sample
from covip.tasks.formats.testset import keep_good, read_keyed

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


def _store_image(value: Any, image_dir: Path, relative: str, base: Path | None, sink: Sink, path: str) -> str | None:
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
            sink.add(path, f"must be an image, got {kind_of(value)}", cover=True)
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
    skipped: list[Problem] | None = None,
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
    each call) and the returned image paths are relative to `image_dir`. Problems raise one `DataError`; with a
    `skipped` list (lenient mode), a row with problems is left out instead and its problems are appended to it.
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
        gt_all = read_keyed(Path(qas_gt_json), gt_checker, len(ds), f"one per row of {path_or_id}")
        if gt_all is None:
            raise DataError(gt_checker.problems)
    if len(ds) == 0:
        checker.add("<dataset>", "<rows>", "contains no samples")
    image_dir.mkdir(parents=True, exist_ok=True)
    image_exists = image_checker(image_dir, open_images=False)
    samples: dict[int, CaptionSample] = {}
    for idx, row in enumerate(ds):
        key = f"sample_{idx}"
        meta_sink = Sink(checker, f"row {idx} ({key})")
        query = _store_image(row["imgs"], image_dir, f"{key}/query.png", base, meta_sink, "imgs")
        images = row["concepts"]
        if isinstance(images, list):
            images = [
                _store_image(v, image_dir, f"{key}/concept_{j}.png", base, meta_sink, f"concepts[{j}]")
                for j, v in enumerate(images)
            ]
        meta = {"imgs": query, "concepts": images, "dialogues": _maybe_json(row["dialogues"])}
        if gt_all is not None:
            gt_sink = Sink(gt_checker, key)
            gt = gt_all.get(key)
            if key not in gt_all:
                gt_sink.add("<record>", f"missing: row {idx} of {path_or_id} has no ground truth", cover=True)
                gt_sink.covered.add(ALL)
        else:
            gt_sink = Sink(checker, meta_sink.record)
            gt = {"qas": _maybe_json(row["qas"]), "gts": _maybe_json(row["gts"])}
        samples[idx] = to_sample(key, meta, meta_sink, gt, gt_sink, image_exists, drop_none=True)
    problems = checker.problems + (gt_checker.problems if gt_checker is not checker else [])
    return keep_good(samples, problems, skipped)


def load_hf_diagnostic_dataset(
    path_or_id: str, task: str, split: str = "test", *, image_dir: Path, trigger: str = "SKS"
) -> list[DiagnosticSample]:
    """Read the paper's diagnostic sets (`Yeongtak/lsd`, `Yeongtak/lar`, `Yeongtak/itr`) into canonical samples.

    ASSUMED ROW FORMAT (inferred from the reference scripts, docs/protocol.md §4): `images_context` (list of
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
        sink = Sink(checker, f"row {idx} ({key})")
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
