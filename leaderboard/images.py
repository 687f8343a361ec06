"""Query-image thumbnails for the site's per-sample pages, copied from the benchmark the run used.

Sample logs name a sample, not an image file, so the image comes from the run's benchmark as `benchmark.py` finds
it (only a benchmark with the run's fingerprint, so a page never shows another benchmark's image). The image path
must stay inside that directory. Thumbnails are JPEG, named by content hash, so one image shared by several models
and controls is stored once.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from PIL import Image

from covip.leaderboard.benchmark import Benchmark

THUMB = (320, 320)


def thumbnail(benchmark: Benchmark, sample_id: str, out: Path) -> str | None:
    """File name of the sample's query-image thumbnail under `out` (written once), or None when it is not there."""
    sample = benchmark.samples.get(sample_id)
    if sample is None:
        return None
    path = benchmark.root / sample.query_image
    if not path.resolve().is_relative_to(benchmark.root.resolve()) or not path.is_file():
        return None
    name = hashlib.sha256(path.read_bytes()).hexdigest()[:20] + ".jpg"
    target = out / name
    if not target.exists():
        out.mkdir(parents=True, exist_ok=True)
        with Image.open(path) as im:
            im = im.convert("RGB")
            im.thumbnail(THUMB)
            im.save(target, "JPEG", quality=85)
    return name
