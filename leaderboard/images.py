"""Thumbnails of a sample's pictures (the query image and the context pictures) for the site's pages, copied from the
benchmark the run used.

Sample logs name a sample, not an image file, so the images come from the run's benchmark as `benchmark.py` finds
it (only a benchmark with the run's fingerprint, so a page never shows another benchmark's image); a RePIC record
names its query image and the concepts it was shown, whose pictures come from the RePIC data as `repic_data.py`
finds it. Every image path must stay inside that directory. Thumbnails are JPEG, named by content hash, so one
image shared by several models, controls or samples is stored once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from PIL import Image

from covip.leaderboard.benchmark import Benchmark
from covip.tasks.data.schema import CaptionSample
from covip.tasks.repic.dataset import RepicSet
from covip.tasks.results.records import Record, RepicRecord

THUMB = (320, 320)


@dataclass(frozen=True)
class Picture:
    """A thumbnail's file name (None: the image is not in the benchmark) and what it shows."""

    file: str | None
    label: str
    positive: bool = False  # a context concept that is in the query image


@dataclass(frozen=True)
class Pictures:
    """A sample's query image and its context pictures, in the order the model saw them."""

    query: Picture
    context: list[Picture] = field(default_factory=list)


def thumbnail(root: Path, image: str, out: Path) -> str | None:
    """File name of the thumbnail of `image` (a path in the data directory `root`) under `out`, written once; None
    when the image is not a file inside that directory."""
    found = _source(root, image)
    if found is None:
        return None
    path, name = found
    target = out / name
    if not target.exists():
        out.mkdir(parents=True, exist_ok=True)
        with Image.open(path) as im:
            im = im.convert("RGB")
            im.thumbnail(THUMB)
            im.save(target, "JPEG", quality=85)
    return name


@cache  # the pages of a site show the same pictures again and again: check and hash each file once
def _source(root: Path, image: str) -> tuple[Path, str] | None:
    """The image's file, when it lies inside the benchmark, and its thumbnail's name (a hash of its content)."""
    path = (root / image).resolve()
    if not path.is_relative_to(root.resolve()) or not path.is_file():
        return None
    return path, hashlib.sha256(path.read_bytes()).hexdigest()[:20] + ".jpg"


def sample_pictures(benchmark: Benchmark, sample_id: str, out: Path) -> Pictures | None:
    """Thumbnails of the sample's query image and context pictures (None when the benchmark lacks the sample)."""
    sample = benchmark.samples.get(sample_id)
    if sample is None:
        return None
    query = Picture(thumbnail(benchmark.root, sample.query_image, out), "query image")
    if isinstance(sample, CaptionSample):
        context = [
            Picture(thumbnail(benchmark.root, c.image, out), c.name, i in sample.positives)
            for i, c in enumerate(sample.concepts)
        ]
    else:
        context = [
            Picture(thumbnail(benchmark.root, image, out), f"Picture {i}")
            for i, image in enumerate(sample.images_context, start=1)
        ]
    return Pictures(query, context)


def repic_pictures(data: RepicSet, record: RepicRecord, out: Path) -> Pictures:
    """Thumbnails of a RePIC record's query image and of the concepts it was shown (a ground-truth one marked)."""
    concepts = data.database.concept_dict
    shown = [
        Picture(thumbnail(data.root, concepts[key].image, out), concepts[key].name, key in record.gt)
        for key in record.shown
    ]
    return Pictures(Picture(thumbnail(data.root, record.image, out), "query image"), shown)


def record_pictures(found: Benchmark | RepicSet, record: Record, out: Path) -> Pictures | None:
    """A record's pictures from the data its task was made on (None when a benchmark lacks its sample)."""
    if isinstance(record, RepicRecord) and isinstance(found, RepicSet):
        return repic_pictures(found, record, out)
    if isinstance(found, Benchmark):
        return sample_pictures(found, record.sample_id, out)
    raise TypeError(f"no pictures of a {record.kind} record from {type(found).__name__}")
