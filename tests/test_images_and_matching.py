"""Procedural concept images and the classical matching baselines (colour histograms, structure).

Why: the builder must be byte-reproducible from a seed, and both matchers must find the concepts of an easy
query well (so the benchmark is feasible from the pixels) while reporting nothing on a blank query.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from covip.model_adapters import structure_match
from covip.model_adapters.visual_match import match_concepts, match_scores
from covip.tasks.builder.identities import Identity, draw_identities
from covip.tasks.builder.images import blank_image, render_query, render_view


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _sample(rng: np.random.Generator, k: int) -> tuple[list[Image.Image], Image.Image, list[int]]:
    """A bucket-k sample: 3k context views, a query showing k of them, and the positives' indices."""
    identities = draw_identities(rng, 3 * k)
    views = [render_view(identity, rng) for identity in identities]
    query = render_query(identities[:k], rng)
    order = rng.permutation(3 * k)  # context slot -> identity
    context = [views[i] for i in order]
    positives = sorted(int(slot) for slot in np.nonzero(order < k)[0])
    return context, query, positives


def _render_all(seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    identities = draw_identities(rng, 6)
    images = [render_view(identity, rng) for identity in identities] + [render_query(identities[:2], rng)]
    return [_png(img) for img in images]


def test_same_seed_gives_identical_png_bytes() -> None:
    assert _render_all(123) == _render_all(123)


def test_different_seed_gives_different_images() -> None:
    a, b = _render_all(123), _render_all(124)
    assert all(x != y for x, y in zip(a, b, strict=True))


def test_sizes_and_modes() -> None:
    rng = np.random.default_rng(0)
    identity = draw_identities(rng, 1)[0]
    view = render_view(identity, rng)
    assert view.mode == "RGB" and view.size == (256, 256)
    assert render_view(identity, rng, size=128).size == (128, 128)
    query = render_query([identity], rng)
    assert query.mode == "RGB" and query.size == (512, 384)
    assert render_query([identity], rng, size=(320, 240)).size == (320, 240)
    assert render_query([], rng).size == (512, 384)
    blank = blank_image()
    assert blank.mode == "RGB" and blank.size == (512, 384)
    assert np.asarray(blank).min() == np.asarray(blank).max()
    assert blank_image((64, 48)).size == (64, 48)


def test_identities_are_distinct() -> None:
    rng = np.random.default_rng(5)
    identities = draw_identities(rng, 12)
    assert len(identities) == 12 and all(isinstance(i, Identity) for i in identities)
    assert len(set(identities)) == 12
    assert len({i.palette[0] for i in identities}) == 12
    assert all(2 <= len(i.palette) <= 3 for i in identities)
    assert draw_identities(rng, 0) == []
    with pytest.raises(ValueError):
        draw_identities(rng, 13)


def test_views_of_one_identity_differ() -> None:
    rng = np.random.default_rng(9)
    for identity in draw_identities(rng, 4):
        a = np.asarray(render_view(identity, rng), dtype=np.int16)
        b = np.asarray(render_view(identity, rng), dtype=np.int16)
        assert np.abs(a - b).mean() > 5.0


def test_blank_query_matches_nothing() -> None:
    rng = np.random.default_rng(11)
    for k in (1, 2, 3, 4):
        context, _, _ = _sample(rng, k)
        assert match_concepts(context, blank_image()) == []
        assert match_scores(context, blank_image()) == [0.0] * len(context)


def test_empty_context_matches_nothing() -> None:
    rng = np.random.default_rng(12)
    _, query, _ = _sample(rng, 2)
    assert match_concepts([], query) == []
    assert match_scores([], query) == []


def test_retrieval_f1_per_bucket() -> None:
    """Micro-averaged F1 of match_concepts over 20 samples per bucket (the benchmark's feasibility floor)."""
    rng = np.random.default_rng(2024)
    total = np.zeros(3)
    for k in (1, 2, 3, 4):
        counts = np.zeros(3)  # tp, fp, fn
        for _ in range(20):
            context, query, positives = _sample(rng, k)
            predicted = match_concepts(context, query)
            assert predicted == sorted(set(predicted)) and all(0 <= i < len(context) for i in predicted)
            tp = len(set(predicted) & set(positives))
            counts += (tp, len(predicted) - tp, len(positives) - tp)
        f1 = 2 * counts[0] / (2 * counts[0] + counts[1] + counts[2])
        assert f1 >= 0.85, f"bucket {k}: F1 {f1:.3f} (tp, fp, fn = {counts})"
        total += counts
    assert 2 * total[0] / (2 * total[0] + total[1] + total[2]) >= 0.9


def test_structure_matching_finds_the_concepts_of_easy_samples() -> None:
    """Where concepts are distinct the structure matcher finds most of them (fewer than the colour one: flat
    surfaces give few keypoints) and never reports an absent one."""
    rng = np.random.default_rng(2025)
    counts = np.zeros(3)  # tp, fp, fn
    for k in (1, 2, 3, 4):
        for _ in range(5):
            context, query, positives = _sample(rng, k)
            predicted = structure_match.match_concepts(context, query)
            assert predicted == sorted(set(predicted)) and all(0 <= i < len(context) for i in predicted)
            tp = len(set(predicted) & set(positives))
            counts += (tp, len(predicted) - tp, len(positives) - tp)
    tp, fp, fn = counts
    assert tp / (tp + fn) >= 0.6 and tp / (tp + fp) >= 0.95, counts


def test_structure_matching_on_blank_or_empty_input() -> None:
    rng = np.random.default_rng(13)
    context, query, _ = _sample(rng, 2)
    assert structure_match.match_concepts(context, blank_image()) == []
    assert structure_match.match_scores(context, blank_image()) == [0.0] * len(context)
    assert structure_match.match_concepts([], query) == [] and structure_match.match_scores([], query) == []


def test_mirrored_descriptors_equal_sift_on_the_mirror_image() -> None:
    """The structure matcher finds mirrored views by permuting descriptors instead of running SIFT twice."""
    rng = np.random.default_rng(3)
    grey = cv2.cvtColor(np.asarray(render_query(draw_identities(rng, 3), rng)), cv2.COLOR_RGB2GRAY)
    sift = cv2.SIFT_create()
    keys, desc = sift.detectAndCompute(grey, None)
    flipped_keys, flipped_desc = sift.detectAndCompute(np.ascontiguousarray(grey[:, ::-1]), None)
    width = grey.shape[1]
    mirrored = structure_match.mirror_descriptors(desc)
    errors = []
    for i, key in enumerate(keys):  # the same keypoint seen in the mirror image: x mirrored, angle 180 - angle
        for j, other in enumerate(flipped_keys):
            same_place = abs(width - 0.5 - other.pt[0] - key.pt[0]) < 0.3 and abs(other.pt[1] - key.pt[1]) < 0.3
            if same_place and abs((key.angle + other.angle) % 360 - 180) < 2:
                errors.append(np.abs(mirrored[i] - flipped_desc[j]).mean())
    assert len(errors) > 50 and np.median(errors) < 2.0  # of 0..255: equal up to resampling
