"""The retrieval setting's default retriever: which database concepts the model is shown for a query image.

RePIC (docs/protocol.md §7.2) detects objects in the query with YOLO-World, embeds each crop and each database
image with CLIP, takes each crop's top-K nearest database images (L2 between normalised embeddings) and keeps the
K nearest distinct concepts over all crops, nearest first. Neither model's weights are available here, so this
retriever keeps RePIC's procedure and replaces its two models with documented, model-free stand-ins:
- crops: the whole image and the cells of a 2x2 and a 3x3 grid (14 windows), instead of detections;
- embedding: a colour signature, the L2-normalised square-rooted hue x brightness histogram of the window's
  colourful pixels (grey backgrounds, shadows and outlines carry no identity), instead of CLIP.
A window with too few colourful pixels is skipped, as RePIC has no crop where nothing is detected; a query where
every window is skipped shows no concept. This suits the drawn fixture; on real photos CLIP does far better, so
retrieval-setting numbers from this retriever measure the model with a weaker retriever than RePIC's.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from PIL import Image

NAME = "colour-windows"
GRIDS = (1, 2, 3)
HUE_BINS, VALUE_BINS = 24, 3
SATURATION_MIN, VALUE_MIN = 80, 40  # 0..255: below either, a pixel is grey or dark and carries no colour
MIN_COLOURFUL = 0.02  # share of a window's pixels that must be colourful for it to count as a crop
WORK_SIDE = 192  # colour statistics need no more pixels
SETTINGS = {"grids": list(GRIDS), "hue_bins": HUE_BINS, "value_bins": VALUE_BINS, "min_colourful": MIN_COLOURFUL}


def colour_signature(image: Image.Image) -> np.ndarray | None:
    """The image's colour signature (unit vector), or None when it has too few colourful pixels."""
    small = image.convert("RGB")
    small.thumbnail((WORK_SIDE, WORK_SIDE))
    hsv = np.asarray(small.convert("HSV")).reshape(-1, 3).astype(np.int64)
    colourful = (hsv[:, 1] >= SATURATION_MIN) & (hsv[:, 2] >= VALUE_MIN)
    if colourful.sum() < MIN_COLOURFUL * len(hsv):
        return None
    hue, value = hsv[colourful, 0] * HUE_BINS // 256, hsv[colourful, 2] * VALUE_BINS // 256
    counts = np.bincount(hue * VALUE_BINS + value, minlength=HUE_BINS * VALUE_BINS)
    vector = np.sqrt(counts.astype(np.float64))
    return vector / np.linalg.norm(vector)


def windows(image: Image.Image) -> list[Image.Image]:
    """The crops: the cells of each n x n grid."""
    width, height = image.size
    return [
        image.crop((width * col // n, height * row // n, width * (col + 1) // n, height * (row + 1) // n))
        for n in GRIDS
        for row in range(n)
        for col in range(n)
    ]


def retrieve(query: Image.Image, signatures: Mapping[str, np.ndarray | None], k: int) -> list[str]:
    """The `k` concepts nearest to any crop of the query, nearest first (ties: database order)."""
    keys = [key for key, sig in signatures.items() if sig is not None]
    if not keys or k < 1:
        return []
    matrix = np.stack([signatures[key] for key in keys])
    found: list[tuple[float, int]] = []
    for crop in windows(query):
        signature = colour_signature(crop)
        if signature is None:
            continue
        distances = np.linalg.norm(matrix - signature, axis=1)
        found += [(float(distances[i]), int(i)) for i in np.argsort(distances, kind="stable")[:k]]
    chosen: list[str] = []
    for _, i in sorted(found):
        if keys[i] not in chosen:
            chosen.append(keys[i])
        if len(chosen) == k:
            break
    return chosen
