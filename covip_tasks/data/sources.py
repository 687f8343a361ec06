"""Where a task's data comes from: our builder's output, the paper's test-set files, or an HF dataset.

The location is the `COVIP_DATA` environment variable, else the task YAML's `dataset_path`,
where `default` means the directory `covip-data build` writes by default (so the demo's
benchmark is what a plain `lmms_eval --tasks covip_caption` evaluates). Accepted forms:

- a canonical dataset directory (has `caption_test.jsonl`, written by `covip-data build`);
- a directory with the paper's test-set files (one `meta_*.jsonl` and `QAS_GT_test.json`),
  image paths relative to that directory, plus `sample_ids.json` and `concept_names.json`
  when present (what `covip-data export` writes), so ids and names survive the round trip;
- `hf:<dataset id or saved-to-disk path>` for the paper's HF captioning dataset layout.

The diagnostic tasks read the same canonical directory (`lsd_test.jsonl`, ...); the paper's
separate HF sets are chosen per task with `COVIP_DATA_LSD=hf:Yeongtak/lsd` (and _LAR, _ITR).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from covip.tasks.data.canonical import caption_file, diagnostic_file, load_caption_dataset, load_diagnostic_dataset
from covip.tasks.data.schema import CaptionSample, DiagnosticSample, Problem
from covip.tasks.formats.hf import load_hf_caption_dataset, load_hf_diagnostic_dataset
from covip.tasks.formats.testset import CONCEPT_NAMES_FILE, QAS_GT_FILE, SAMPLE_IDS_FILE, load_reference_testset

ENV_DATA = "COVIP_DATA"
ENV_LENIENT = "COVIP_DATA_LENIENT"
logger = logging.getLogger(__name__)


def default_data_dir() -> Path:
    """`$COVIP_HOME/benchmark`, with COVIP_HOME defaulting to ~/.cache/covip."""
    home = Path(os.environ.get("COVIP_HOME") or Path.home() / ".cache" / "covip")
    return home / "benchmark"


@dataclass(frozen=True)
class Source:
    """Validated samples (caption or diagnostic) plus what is needed to open their images and cite the data."""

    location: str
    root: Path
    samples: tuple[CaptionSample, ...] | tuple[DiagnosticSample, ...]
    manifest_sha256: str
    skipped: tuple[Problem, ...] = ()  # lenient mode: the problems of the records left out

    def samples_sha256(self) -> str:
        """A fingerprint of the samples as loaded (ids, texts, questions, image paths), whatever their source.

        A built dataset also has its manifest's sha256, which covers the image bytes; a reference directory or an HF
        set has only this one.
        """
        blob = json.dumps([s.to_dict() for s in self.samples], sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(blob).hexdigest()


def resolve_location(dataset_path: str | None, task: str = "caption") -> str:
    """The data location for `task`: COVIP_DATA_<TASK>, then COVIP_DATA, then the YAML's dataset_path."""
    location = os.environ.get(f"{ENV_DATA}_{task.upper()}") or os.environ.get(ENV_DATA) or dataset_path or "default"
    return str(default_data_dir()) if location == "default" else location


def missing_data(task: str = "caption", split: str = "test") -> str | None:
    """Why `task`'s data cannot be found where the run will look (None when it is there); checks presence only."""
    location = resolve_location("default", task)
    if location.startswith("hf:"):
        return None
    root = Path(location).expanduser()
    expected = caption_file(split) if task == "caption" else diagnostic_file(task, split)
    if (root / expected).is_file() or (task == "caption" and root.is_dir() and any(root.glob("meta_*.jsonl"))):
        return None
    variable = f"{ENV_DATA}_{task.upper()} or {ENV_DATA}" if task != "caption" else ENV_DATA
    return (
        f"no CoViP {task} data at {location!r} (no {expected} there): build it with `covip-data build`"
        f"{'' if task == 'caption' else f' --tasks {task}'}, or point {variable} at a dataset"
    )


def lenient() -> bool:
    """`COVIP_DATA_LENIENT=1`: load the paper's formats as its own loader does, leaving out a malformed record
    (each one reported, and counted in the run's identity) instead of refusing the whole set."""
    value = os.environ.get(ENV_LENIENT, "").strip().lower()
    if value not in ("", "0", "1", "false", "true"):
        raise ValueError(f"{ENV_LENIENT} must be 1 or 0, got {value!r}")
    return value in ("1", "true")


def _report(skipped: list[Problem]) -> tuple[Problem, ...]:
    for problem in skipped:
        logger.warning("%s=1: left out %s", ENV_LENIENT, problem)
    return tuple(skipped)


def load_caption_source(dataset_path: str | None = None, split: str = "test") -> Source:
    """Load the captioning samples from wherever the user pointed us; errors name the location."""
    location = resolve_location(dataset_path)
    skipped: list[Problem] | None = [] if lenient() else None
    if location.startswith("hf:"):
        cache = default_data_dir().parent / "hf_images" / location[3:].replace("/", "__")
        samples = load_hf_caption_dataset(location[3:], split=split, image_dir=cache, skipped=skipped)
        return Source(location, cache, tuple(samples), "", _report(skipped or []))
    root = Path(location).expanduser()
    if (root / caption_file(split)).is_file():
        data = load_caption_dataset(root, split)
        return Source(location, root, data.samples, data.manifest_sha256)
    metas = sorted(root.glob("meta_*.jsonl")) if root.is_dir() else []
    if metas and (root / QAS_GT_FILE).is_file():
        samples = _load_reference_dir(root, metas, skipped)
        return Source(location, root, tuple(samples), "", _report(skipped or []))
    hint = " (build it with `covip-data build`, or set COVIP_DATA)" if location == str(default_data_dir()) else ""
    raise FileNotFoundError(
        f"no CoViP captioning data at {location!r}{hint}: expected a directory with {caption_file(split)}, "
        f"or one with a meta_*.jsonl and {QAS_GT_FILE}, or 'hf:<dataset>'"
    )


def _load_reference_dir(root: Path, metas: list[Path], skipped: list[Problem] | None) -> list[CaptionSample]:
    """The paper's test set in `root`; `sample_ids.json` / `concept_names.json` (written by export) when present.

    The GT file is keyed by the line order of one meta file, so a directory with several is ambiguous: refused.
    """
    if len(metas) > 1:
        raise ValueError(
            f"{root}: {len(metas)} meta_*.jsonl files ({', '.join(m.name for m in metas)}) for one {QAS_GT_FILE}, "
            "which is keyed by the line order of a single one; keep one per directory"
        )
    sidecars = {"sample_ids": root / SAMPLE_IDS_FILE, "concept_names": root / CONCEPT_NAMES_FILE}
    given = {k: p for k, p in sidecars.items() if p.is_file()}
    return load_reference_testset(metas[0], root / QAS_GT_FILE, root, skipped=skipped, **given)


def load_diagnostic_source(task: str, dataset_path: str | None = None, split: str = "test") -> Source:
    """Load one diagnostic task's samples from a canonical directory or `hf:<dataset>`."""
    location = resolve_location(dataset_path, task)
    if location.startswith("hf:"):
        cache = default_data_dir().parent / "hf_images" / location[3:].replace("/", "__")
        samples = load_hf_diagnostic_dataset(location[3:], task, split, image_dir=cache)
        return Source(location, cache, tuple(samples), "")
    root = Path(location).expanduser()
    if not (root / diagnostic_file(task, split)).is_file():
        raise FileNotFoundError(
            f"no {task.upper()} data at {location!r}: expected {diagnostic_file(task, split)} there "
            f"(build it with `covip-data build --tasks {task}`), or set {ENV_DATA}_{task.upper()}=hf:<dataset>"
        )
    samples, manifest_sha = load_diagnostic_dataset(root, task, split)
    return Source(location, root, samples, manifest_sha)
