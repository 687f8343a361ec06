"""Training-free structure-matching baseline: which context concepts appear in the query, by local features
and geometric verification.

Why this method: colour statistics cannot tell a concept from a look-alike that shares its colours, which
is what the paper's distractors are. Structure can: the outline, the pattern's scale, the accessories and
the markings sit at fixed places on the concept. So SIFT keypoints of each reference picture are matched
to the query's (mirror images included, by permuting the query's descriptors), a RANSAC affine transform
(rotation, scale, foreshortening, mirroring) maps the reference onto the query, and the aligned reference
is compared with the query pixel by pixel: normalised cross-correlation per colour channel, which lighting
and colour casts do not change. A concept is present when its aligned picture correlates well enough, and
each place of the query is explained by at most one concept, its best. Nothing is known about how the
images were made or how many concepts are present.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from covip.model_adapters.visual_match import CHROMA_MIN, reference_foreground

MATCH_THRESHOLD = 0.5  # correlation of the aligned reference with the query needed to call a concept present
RATIO = 0.8  # Lowe's ratio test for keypoint matches
RANSAC_PIXELS = 3.0  # reprojection error of an inlier, in query pixels
MIN_MATCHES = 4
SCALE_RANGE = (0.15, 4.0)  # plausible size of a concept in the query relative to its reference picture
MAX_ANISOTROPY = 2.0  # largest ratio of the transform's two scales (a strong foreshortening)
MIN_VISIBLE = 0.5  # share of the aligned reference that must fall inside the query
SAME_PLACE = 0.5  # two concepts whose aligned centres are closer than this share of their radius explain one object
_WORK_SIDE = 384  # larger queries are reduced first, as the colour baseline does
_REFERENCE_SIDE = 192  # reference pictures too: as accurate as at 256 pixels on the demo build, twice as fast
_SIFT = cv2.SIFT_create(contrastThreshold=0.02)  # half the default: flat cartoon surfaces have few corners
_MATCHER = cv2.BFMatcher(cv2.NORM_L2)


@dataclass(frozen=True)
class Placement:
    """Where a reference picture was found in the query: its correlation there, centre and radius (pixels)."""

    score: float
    x: float
    y: float
    radius: float


NOWHERE = Placement(0.0, 0.0, 0.0, 0.0)


def _rgb(image: Image.Image, side: int) -> np.ndarray:
    arr = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    if max(arr.shape[:2]) > side:
        f = side / max(arr.shape[:2])
        arr = cv2.resize(arr, (round(arr.shape[1] * f), round(arr.shape[0] * f)), interpolation=cv2.INTER_AREA)
    return arr


def mirror_descriptors(descriptors: np.ndarray) -> np.ndarray:
    """SIFT descriptors of the mirror image at the same keypoints: OpenCV's 4x4x8 layout with its rows reversed
    and its orientation bins reflected (checked against SIFT run on a flipped image)."""
    cells = descriptors.reshape(-1, 4, 4, 8)[:, ::-1]
    return np.ascontiguousarray(cells[..., (-np.arange(8)) % 8].reshape(-1, 128))


def _correlation(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Mean over colour channels of the normalised cross-correlation of a and b on the mask's pixels."""
    values = []
    for ch in range(3):
        x = a[..., ch][mask].astype(np.float32)
        y = b[..., ch][mask].astype(np.float32)
        x -= x.mean()
        y -= y.mean()
        den = float(np.sqrt((x * x).sum() * (y * y).sum()))
        values.append(float((x * y).sum()) / den if den > 1e-6 else 0.0)
    return float(np.mean(values))


def _plausible(transform: np.ndarray, mirrored: bool) -> bool:
    """A transform a real view could produce: sensible size, limited foreshortening, the expected handedness."""
    singular = np.linalg.svd(transform[:, :2], compute_uv=False)
    det = float(np.linalg.det(transform[:, :2]))
    size = float(np.sqrt(abs(det)))
    return (
        SCALE_RANGE[0] <= size <= SCALE_RANGE[1]
        and singular[0] <= MAX_ANISOTROPY * singular[1]
        and (det < 0) == mirrored
    )


def _transforms(src: np.ndarray, dst: np.ndarray, mirrored: bool, width: int) -> list[np.ndarray]:
    """Plausible reference-to-query transforms from matched points: a RANSAC affine (which also models
    foreshortening) and a RANSAC similarity, which few matches can still pin down; a mirrored view's
    similarity is found on mirrored reference points and composed with the mirroring."""
    found = []
    affine, _ = cv2.estimateAffine2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PIXELS)
    if affine is not None and _plausible(affine, mirrored):
        found.append(affine)
    flip = np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) if mirrored else np.eye(3)
    flipped = src @ flip[:2, :2].T + flip[:2, 2]
    similar, _ = cv2.estimateAffinePartial2D(flipped, dst, method=cv2.RANSAC, ransacReprojThreshold=2 * RANSAC_PIXELS)
    if similar is not None:
        similar = similar @ flip
        if _plausible(similar, mirrored):
            found.append(similar)
    return found


class _Query:
    """The query's pixels and keypoints, computed once for all reference pictures."""

    def __init__(self, image: Image.Image) -> None:
        self.rgb = _rgb(image, _WORK_SIDE)
        keypoints, descriptors = _SIFT.detectAndCompute(cv2.cvtColor(self.rgb, cv2.COLOR_RGB2GRAY), None)
        self.points = np.float32([k.pt for k in keypoints])
        self.views = [] if descriptors is None else [(descriptors, False), (mirror_descriptors(descriptors), True)]

    def locate(self, image: Image.Image) -> Placement:
        """Where the reference picture's concept best appears in the query (NOWHERE if it cannot be aligned)."""
        if not self.views:
            return NOWHERE
        ref = _rgb(image, _REFERENCE_SIDE)
        mask = reference_foreground(ref)
        r, g, b = cv2.split(ref)
        coloured = mask & (cv2.subtract(cv2.max(cv2.max(r, g), b), cv2.min(cv2.min(r, g), b)) >= CHROMA_MIN)
        keypoints, descriptors = _SIFT.detectAndCompute(
            cv2.cvtColor(ref, cv2.COLOR_RGB2GRAY), mask.astype(np.uint8) * 255
        )
        if descriptors is None or len(keypoints) < MIN_MATCHES:
            return NOWHERE
        ref_points = np.float32([k.pt for k in keypoints])
        best = NOWHERE
        for query_descriptors, mirrored in self.views:
            pairs = _MATCHER.knnMatch(descriptors, query_descriptors, k=2)
            good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < RATIO * p[1].distance]
            if len(good) < MIN_MATCHES:
                continue
            src = ref_points[[m.queryIdx for m in good]]
            dst = self.points[[m.trainIdx for m in good]]
            for transform in _transforms(src, dst, mirrored, ref.shape[1]):
                placement = self._verify(ref, coloured, transform)
                if placement.score > best.score:
                    best = placement
        return best

    def _verify(self, ref: np.ndarray, mask: np.ndarray, transform: np.ndarray) -> Placement:
        """Correlation of the reference, aligned by the transform, with the query where the concept lands."""
        h, w = self.rgb.shape[:2]
        aligned = cv2.warpAffine(ref, transform, (w, h), flags=cv2.INTER_LINEAR)
        landed = cv2.warpAffine(mask.astype(np.uint8), transform, (w, h), flags=cv2.INTER_NEAREST).astype(bool)
        area = float(mask.sum()) * abs(float(np.linalg.det(transform[:, :2])))
        if area <= 0 or landed.sum() < MIN_VISIBLE * area:
            return NOWHERE
        ys, xs = np.nonzero(landed)
        radius = float(np.sqrt(area / np.pi))
        return Placement(max(0.0, _correlation(aligned, self.rgb, landed)), float(xs.mean()), float(ys.mean()), radius)


_RECENT: OrderedDict[bytes, list[Placement]] = OrderedDict()
_RECENT_SIZE = 1024  # a run asks about the same pictures again (a task's direct and CAG variants): answer from here


def _digest(images: list[Image.Image]) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for image in images:
        h.update(f"{image.mode}{image.size}".encode())
        h.update(image.tobytes())
    return h.digest()


def locate_all(context_images: list[Image.Image], query: Image.Image) -> list[Placement]:
    """Where each context picture's concept best appears in the query (remembered for the last few questions:
    the answer depends on the pixels only)."""
    if not context_images:
        return []
    key = _digest([query, *context_images])
    if key in _RECENT:
        _RECENT.move_to_end(key)
        return list(_RECENT[key])
    found = _Query(query)
    placements = [found.locate(image) for image in context_images]
    _RECENT[key] = placements
    while len(_RECENT) > _RECENT_SIZE:
        _RECENT.popitem(last=False)
    return list(placements)


def match_scores(context_images: list[Image.Image], query: Image.Image) -> list[float]:
    """A score per context image: how well its aligned picture correlates with the query (0 when not found)."""
    return [p.score for p in locate_all(context_images, query)]


def match_concepts(context_images: list[Image.Image], query: Image.Image) -> list[int]:
    """Indices of the context images judged present in the query (may be empty): those whose aligned picture
    correlates above a fixed threshold, each place of the query going to its best-correlated concept only."""
    placements = locate_all(context_images, query)
    ranked = sorted(
        (i for i, p in enumerate(placements) if p.score >= MATCH_THRESHOLD), key=lambda i: -placements[i].score
    )
    chosen: list[int] = []
    for i in ranked:
        p = placements[i]
        if all(np.hypot(p.x - placements[j].x, p.y - placements[j].y) > SAME_PLACE * p.radius for j in chosen):
            chosen.append(i)
    return sorted(chosen)
