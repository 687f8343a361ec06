"""Training-free retrieval baseline: which context concepts appear in the query, by colour matching.

Why this method: it is a classical, model-free reference point for the benchmark. A concept's identity
is carried by its colourful pixels (body colour, pattern, accessories), while backgrounds, shadows,
outlines of eyes and scene clutter are near-grey. So each image is reduced to its chromatic pixels; the
query's chromatic pixels are grouped into spatially connected objects; every object and every context
image is described by a soft hue x brightness histogram (invariant to pose and scale, tolerant of small
lighting changes and of partial occlusion); an object votes for the context concept its histogram
overlaps most, and a vote counts when the overlap clears a fixed threshold. Nothing is known about how
the images were made or how many concepts are present.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

CHROMA_MIN = 50  # max-min channel spread (0..255) above which a pixel is "colourful"
HUE_BINS = 32
VALUE_BINS = 4
MATCH_THRESHOLD = 0.55  # histogram intersection needed for an object to count as a concept's instance
MIN_OBJECT_FRACTION = 0.002  # objects smaller than this share of the query are noise
HUE_SMOOTH = 1.0  # Gaussian blur of histograms along hue (bins): tolerates lighting casts of ~10 degrees
GROUP_RADIUS = 0.005  # dilation (share of h+w) that joins the pieces of one object across thin grey lines
_WORK_SIDE = 384  # larger images are reduced first: colour statistics do not need more pixels


def _rgb(image: Image.Image) -> np.ndarray:
    img = image if image.mode == "RGB" else image.convert("RGB")
    arr = np.asarray(img)
    side = max(arr.shape[:2])
    if side > _WORK_SIDE:
        f = _WORK_SIDE / side
        arr = cv2.resize(
            arr, (max(1, round(arr.shape[1] * f)), max(1, round(arr.shape[0] * f))), interpolation=cv2.INTER_AREA
        )
    return arr


def _chromatic(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mask of colourful pixels, and hue/value (0..255) of every pixel."""
    hsv = cv2.cvtColor(arr, cv2.COLOR_RGB2HSV_FULL)
    r, g, b = cv2.split(arr)
    chroma = cv2.subtract(cv2.max(cv2.max(r, g), b), cv2.min(cv2.min(r, g), b))
    return chroma >= CHROMA_MIN, hsv[..., 0], hsv[..., 2]


def _histogram(hue: np.ndarray, value: np.ndarray) -> np.ndarray | None:
    """Soft (linearly interpolated) hue x value histogram, L1-normalised; None without pixels."""
    if hue.size == 0:
        return None
    h = hue.astype(np.float32) * (HUE_BINS / 256.0) - 0.5
    h0 = np.floor(h)
    wh = h - h0
    h0 = h0.astype(np.int64) % HUE_BINS
    h1 = (h0 + 1) % HUE_BINS
    v = np.clip(value.astype(np.float32) * (VALUE_BINS / 256.0) - 0.5, 0, VALUE_BINS - 1)
    v0 = np.minimum(np.floor(v).astype(np.int64), VALUE_BINS - 2)
    wv = v - v0
    hist = np.zeros(HUE_BINS * VALUE_BINS, np.float64)
    for hb, hw in ((h0, 1.0 - wh), (h1, wh)):
        for vb, vw in ((v0, 1.0 - wv), (v0 + 1, wv)):
            hist += np.bincount(hb * VALUE_BINS + vb, weights=hw * vw, minlength=hist.size)
    total = hist.sum()
    if total <= 0:
        return None
    return _smooth(hist.reshape(HUE_BINS, VALUE_BINS)).ravel() / total


def _smooth(hist: np.ndarray) -> np.ndarray:
    """Circular Gaussian blur along the hue axis (mass-preserving)."""
    if HUE_SMOOTH <= 0:
        return hist
    offsets = np.arange(-3, 4)
    kernel = np.exp(-0.5 * (offsets / HUE_SMOOTH) ** 2)
    kernel /= kernel.sum()
    return sum(k * np.roll(hist, int(o), axis=0) for o, k in zip(offsets, kernel, strict=True))


def reference_foreground(arr: np.ndarray) -> np.ndarray:
    """Mask of what stands out of a reference picture's plain background: pixels unlike the border's colour."""
    border = np.concatenate(
        [arr[:2].reshape(-1, 3), arr[-2:].reshape(-1, 3), arr[:, :2].reshape(-1, 3), arr[:, -2:].reshape(-1, 3)]
    )
    bg = np.round(np.median(border, axis=0)).astype(np.uint8)
    diff = cv2.split(cv2.absdiff(arr, np.full_like(arr, bg)))
    return cv2.max(cv2.max(diff[0], diff[1]), diff[2]) >= 30


def _context_descriptor(image: Image.Image) -> np.ndarray | None:
    """Histogram of the concept's colourful foreground (pixels unlike the border's background colour)."""
    arr = _rgb(image)
    mask, hue, value = _chromatic(arr)
    mask &= reference_foreground(arr)
    return _histogram(hue[mask], value[mask])


def _query_objects(image: Image.Image) -> list[np.ndarray]:
    """Histograms of the query's colourful objects (connected groups of chromatic pixels)."""
    arr = _rgb(image)
    mask, hue, value = _chromatic(arr)
    if not mask.any():
        return []
    h, w = mask.shape
    grow = max(1, round(GROUP_RADIUS * (h + w)))  # bridge thin grey lines (outlines, stripes) inside one object
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    grouped = cv2.dilate(mask.astype(np.uint8), kernel)
    count, labels = cv2.connectedComponents(grouped, connectivity=8)
    labels = np.where(mask, labels, 0)
    sizes = np.bincount(labels.ravel(), minlength=count)
    min_px = MIN_OBJECT_FRACTION * h * w
    objects = []
    for lab in np.nonzero(sizes >= min_px)[0]:
        if lab == 0:
            continue
        sel = labels == lab
        hist = _histogram(hue[sel], value[sel])
        if hist is not None:
            objects.append(hist)
    return objects


def _similarities(context_images: list[Image.Image], query: Image.Image) -> np.ndarray:
    """Histogram intersection of every context concept (rows) with every query object (columns)."""
    objects = _query_objects(query)
    sims = np.zeros((len(context_images), len(objects)))
    if not objects:
        return sims
    obj = np.stack(objects)
    for i, image in enumerate(context_images):
        desc = _context_descriptor(image)
        if desc is not None:
            sims[i] = np.minimum(obj, desc[None, :]).sum(axis=1)
    return sims


def match_scores(context_images: list[Image.Image], query: Image.Image) -> list[float]:
    """A score per context image: how strongly it appears in the query."""
    if not context_images:
        return []
    sims = _similarities(context_images, query)
    if sims.shape[1] == 0:
        return [0.0] * len(context_images)
    return [float(s) for s in sims.max(axis=1)]


def match_concepts(context_images: list[Image.Image], query: Image.Image) -> list[int]:
    """Indices of the context images judged present in the query (may be empty), from a fixed threshold or a
    principled rule — it does NOT know how many are present.

    Each query object is explained by at most one concept (its best match), so a concept that merely
    shares a colour with a present one is not reported too.
    """
    if not context_images:
        return []
    sims = _similarities(context_images, query)
    present: set[int] = set()
    for j in range(sims.shape[1]):
        best = int(np.argmax(sims[:, j]))
        if sims[best, j] >= MATCH_THRESHOLD:
            present.add(best)
    return sorted(present)
