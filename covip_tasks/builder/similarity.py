"""The builder's image similarity, and how it picks look-alike distractors with it.

The paper puts in each sample's context, beside every positive concept, the concepts of its database
that are most visually similar to it (CLIP-L/14 image embeddings), so that Acc- measures recognition
rather than colour matching. The builder does the same without a model: `describe` embeds a concept
picture as a colour, outline and texture signature of its foreground (invariant to rotation, mirroring,
scale and small lighting changes), and `pick_lookalikes` ranks candidate pictures by their cosine
similarity to the positive's picture. A pipeline that builds from real photos passes its own `embed`
(for example CLIP image features) to `pick_lookalikes`; nothing else depends on `describe`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from covip.tasks.data.schema import CaptionSample

Embed = Callable[[Image.Image], np.ndarray]

# Share of each block in the cosine similarity: colour dominates a glance at a picture, as it does CLIP's.
WEIGHTS = {"colour": 0.5, "outline": 0.25, "texture": 0.25}
_HUE_BINS, _VALUE_BINS, _GREY_BINS = 24, 3, 4
_CHROMA_MIN = 40  # max-min channel spread (0..255) above which a pixel has a hue
_BACKGROUND_DIFF = 30  # how far (0..255, any channel) a pixel must be from the background to be foreground
_HARMONICS = 12  # Fourier magnitudes of the outline's radius function
_GRADIENT_BINS = 8
_WORK_SIDE = 128  # pictures are reduced to this size first: enough for colours, outline and pattern scale


def _spread(arr: np.ndarray) -> np.ndarray:
    """Max minus min over the colour channels of every pixel (0 for a grey)."""
    r, g, b = cv2.split(arr)
    return cv2.subtract(cv2.max(cv2.max(r, g), b), cv2.min(cv2.min(r, g), b))


def foreground(arr: np.ndarray) -> np.ndarray:
    """Mask of the concept in a picture on a plain background: pixels unlike the border's median colour, less
    shadows (greys a little darker than the background), keeping the largest connected part."""
    border = np.concatenate(
        [arr[:2].reshape(-1, 3), arr[-2:].reshape(-1, 3), arr[:, :2].reshape(-1, 3), arr[:, -2:].reshape(-1, 3)]
    )
    bg = np.round(np.median(border, axis=0)).astype(np.uint8)
    diff = cv2.split(cv2.absdiff(arr, (*bg.tolist(), 0)))
    differs = cv2.max(cv2.max(diff[0], diff[1]), diff[2]) >= _BACKGROUND_DIFF
    value = cv2.max(cv2.max(*cv2.split(arr)[:2]), arr[..., 2])
    shadow = (_spread(arr) <= int(bg.max()) - int(bg.min()) + 14) & (value >= 0.68 * int(bg.max()))
    mask = (differs & ~shadow).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 1:
        return np.zeros(mask.shape, bool)
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


def _colour_block(arr: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Hue x brightness histogram of the coloured pixels, plus a brightness histogram of the grey ones."""
    hsv = cv2.cvtColor(arr, cv2.COLOR_RGB2HSV_FULL)[mask]
    chromatic = _spread(arr)[mask] >= _CHROMA_MIN
    hue = hsv[:, 0].astype(np.int64) * _HUE_BINS // 256
    value = hsv[:, 2].astype(np.int64)
    coloured = np.bincount(
        (hue * _VALUE_BINS + value * _VALUE_BINS // 256)[chromatic], minlength=_HUE_BINS * _VALUE_BINS
    )
    grey = np.bincount((value * _GREY_BINS // 256)[~chromatic], minlength=_GREY_BINS)
    return np.sqrt(np.concatenate([coloured, grey]) / max(1, mask.sum()))


def _outline_block(mask: np.ndarray) -> np.ndarray:
    """Fourier magnitudes of the outline's radius as a function of angle, relative to its mean radius:
    invariant to rotation, mirroring and scale."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    pts = max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.float64)
    centred = pts - pts.mean(axis=0)
    angle = np.arctan2(centred[:, 1], centred[:, 0])
    radius = np.hypot(centred[:, 0], centred[:, 1])
    bins = np.linspace(-np.pi, np.pi, 65)
    idx = np.clip(np.digitize(angle, bins) - 1, 0, 63)
    profile = np.zeros(64)
    np.maximum.at(profile, idx, radius)
    filled = np.interp(np.arange(64), np.nonzero(profile)[0], profile[profile > 0], period=64)
    spectrum = np.abs(np.fft.rfft(filled))
    return spectrum[1 : 1 + _HARMONICS] / max(spectrum[0], 1e-9)


def _texture_block(arr: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Histogram of gradient strengths inside the concept, relative to its size: pattern scale and density."""
    grey = cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY).astype(np.float32)
    inner = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    if not inner.any():
        return np.zeros(_GRADIENT_BINS)
    magnitude = cv2.magnitude(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))[inner]
    edges = np.log1p(magnitude) * (_GRADIENT_BINS / np.log1p(1450.0))
    hist = np.bincount(np.clip(edges.astype(np.int64), 0, _GRADIENT_BINS - 1), minlength=_GRADIENT_BINS)
    return np.sqrt(hist / inner.sum())


def describe(image: Image.Image, mask: np.ndarray | None = None) -> np.ndarray:
    """The builder's embedding of a concept picture: unit-length, so that a dot product is a cosine similarity.

    `mask` marks the concept's pixels; by default they are found against the picture's plain background.
    """
    arr = np.asarray(image.convert("RGB"))
    if mask is not None:
        x, y, w, h = cv2.boundingRect(mask.astype(np.uint8))
        arr, mask = arr[y : y + h, x : x + w], mask[y : y + h, x : x + w]
    f = _WORK_SIDE / max(arr.shape[:2])
    if f < 1:
        size = (max(1, round(arr.shape[1] * f)), max(1, round(arr.shape[0] * f)))
        arr = cv2.resize(arr, size, interpolation=cv2.INTER_AREA)
        mask = None if mask is None else cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    mask = foreground(arr) if mask is None else mask
    if mask.sum() < 16:
        raise ValueError("no concept found in the picture: describe() needs a concept on a plain background")
    blocks = {"colour": _colour_block(arr, mask), "outline": _outline_block(mask), "texture": _texture_block(arr, mask)}
    parts = [np.sqrt(WEIGHTS[k]) * b / max(float(np.linalg.norm(b)), 1e-12) for k, b in blocks.items()]
    return np.concatenate(parts)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two embeddings."""
    return float(np.dot(a, b) / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))


def pick_lookalikes(
    positive: Image.Image, candidates: Sequence[Image.Image], k: int, embed: Embed = describe
) -> list[int]:
    """Indices of the k candidate pictures most similar to the positive's picture, most similar first
    (ties go to the earlier candidate). `embed` maps a picture to a vector; swap in an image encoder
    (CLIP-L/14 as in the paper) to pick distractors among real photos."""
    if not 0 <= k <= len(candidates):
        raise ValueError(f"cannot pick {k} look-alikes from {len(candidates)} candidates")
    anchor = embed(positive)
    scores = [similarity(anchor, embed(c)) for c in candidates]
    return sorted(range(len(candidates)), key=lambda i: (-scores[i], i))[:k]


@dataclass(frozen=True)
class LookalikeRow:
    """How alike a bucket's distractors are to its positives, by an embedding's cosine similarity."""

    bucket: int
    negatives: int
    to_positive: float  # mean over negative concepts of the similarity to the most similar positive of the sample
    to_random: float  # the same against the positives of another sample of the bucket (the chance level)


def lookalike_report(
    samples: Sequence[CaptionSample], picture: Callable[[str], Image.Image], embed: Embed = describe, seed: int = 0
) -> list[LookalikeRow]:
    """Per bucket, the mean similarity of each negative concept to the most similar positive of its own sample,
    against that of the positives of another sample of the same bucket (seeded pick; as many positives, so the
    two maxima are comparable). Which positive a distractor was drawn for is not stored, so the nearest one
    stands for it; on any dataset, real photos included. `picture` opens an image by its path."""
    cache: dict[str, np.ndarray] = {}

    def vector(path: str) -> np.ndarray:
        if path not in cache:
            cache[path] = embed(picture(path))
        return cache[path]

    rng = np.random.default_rng(seed)
    rows = []
    for bucket in sorted({s.bucket for s in samples}):
        group = [s for s in samples if s.bucket == bucket]
        own, other = [], []
        for i, sample in enumerate(group):
            stranger = group[(i + 1 + int(rng.integers(len(group) - 1))) % len(group)] if len(group) > 1 else None
            for n, concept in enumerate(sample.concepts):
                if n in sample.positives:
                    continue
                v = vector(concept.image)
                own.append(max(similarity(v, vector(sample.concepts[p].image)) for p in sample.positives))
                if stranger is not None:
                    other.append(max(similarity(v, vector(stranger.concepts[p].image)) for p in stranger.positives))
        rows.append(LookalikeRow(bucket, len(own), float(np.mean(own)), float(np.mean(other)) if other else math.nan))
    return rows
