"""Query-image thumbnails for the site's per-sample pages, copied from the benchmark the run used.

Sample logs name a sample, not an image file, so the image comes from the benchmark directory:
the location the run recorded in its `covip` block (or `--data DIR`), used only when its
manifest hash equals the one the run recorded, so that a page never shows another benchmark's
image. The image path must stay inside that directory. Thumbnails are JPEG, named by content
hash, so one image shared by several models and controls is stored once.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from PIL import Image

from covip.tasks.data.canonical import MANIFEST, load_caption_dataset, load_diagnostic_dataset, sha256_file

THUMB = (320, 320)


class ImageStore:
    """Finds a sample's query image in its benchmark and writes a thumbnail into the site."""

    def __init__(self, out: Path, data_dir: Path | None = None) -> None:
        self.out = out
        self.data_dir = data_dir
        self._index: dict[tuple[str, str, str], dict[str, Path] | str] = {}

    def _samples(self, location: str, family: str, split: str, manifest: str | None) -> dict[str, Path] | str:
        """sample_id → image path, or why the images are not available."""
        key = (location, family, split)
        if key not in self._index:
            root = self.data_dir or Path(location)
            if not (root / MANIFEST).is_file():
                self._index[key] = f"benchmark not found at {root}"
            elif manifest and sha256_file(root / MANIFEST) != manifest:
                self._index[key] = f"benchmark at {root} is not the one this run used (manifest differs)"
            else:
                try:
                    if family == "caption":
                        samples = load_caption_dataset(root, split, open_images=False).samples
                    else:
                        samples = load_diagnostic_dataset(root, family, split, open_images=False)[0]
                    self._index[key] = {s.sample_id: root / s.query_image for s in samples}
                except (OSError, ValueError) as exc:
                    self._index[key] = f"benchmark at {root} could not be read: {exc}"
        return self._index[key]

    def unavailable(self, location: str, family: str, split: str, manifest: str | None) -> str:
        found = self._samples(location, family, split, manifest)
        return found if isinstance(found, str) else ""

    def thumbnail(self, location: str, family: str, split: str, manifest: str | None, sample_id: str) -> str | None:
        """File name of the thumbnail under `out`, or None when the image cannot be found."""
        found = self._samples(location, family, split, manifest)
        if isinstance(found, str) or sample_id not in found:
            return None
        path = found[sample_id]
        root = (self.data_dir or Path(location)).resolve()
        if not path.resolve().is_relative_to(root) or not path.is_file():
            return None
        name = hashlib.sha256(path.read_bytes()).hexdigest()[:20] + ".jpg"
        target = self.out / name
        if not target.exists():
            self.out.mkdir(parents=True, exist_ok=True)
            with Image.open(path) as im:
                im = im.convert("RGB")
                im.thumbnail(THUMB)
                im.save(target, "JPEG", quality=85)
        return name
