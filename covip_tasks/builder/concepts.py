"""The concepts of a sample with look-alike distractors, and the query scene that shows its positives.

Above the easy level a sample's concepts are built as the paper builds them: positive concepts, and for
each of them the candidates most similar to it (here: variants of it, ranked by the builder's similarity
measure over their pictures) as its distractors. The query shows the positives, each in a new view, with
the level's nuisances and some look-alike objects that are no concept of the context.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from covip.tasks.builder import identities, images, similarity
from covip.tasks.builder.difficulty import LOOKALIKE_POOL, MARKED_SHARE, Difficulty
from covip.tasks.builder.identities import Identity


def _positives(rng: np.random.Generator, count: int, difficulty: Difficulty) -> list[Identity]:
    """Positive concepts; one after the first is sometimes a look-alike of an earlier one (`siblings`)."""
    out: list[Identity] = []
    for _ in range(count):
        if out and rng.random() < difficulty.siblings:
            positive = identities.lookalike(rng, out[int(rng.integers(len(out)))], difficulty.changes)
        else:
            positive = identities.draw_identities(rng, 1)[0]
        out.append(identities.with_marking(rng, positive) if rng.random() < MARKED_SHARE else positive)
    return out


def lookalike_concepts(
    rng: np.random.Generator, positives: int, distractors: int, difficulty: Difficulty
) -> tuple[list[Identity], list[Image.Image]]:
    """Identities and reference views of a sample's concepts: the positives first, then each positive's
    `distractors` in turn, picked among LOOKALIKE_POOL variants of it as those whose views are most similar
    to its own view (`similarity.pick_lookalikes`)."""
    if not difficulty.lookalikes:
        raise ValueError("the easy level draws mutually distinct concepts, not look-alikes")
    looks = _positives(rng, positives, difficulty)
    views = [images.render_view(p, rng, nuisances=difficulty.reference) for p in looks]
    for positive, view in zip(looks[:positives], views[:positives], strict=True):
        candidates = [identities.lookalike(rng, positive, difficulty.changes) for _ in range(LOOKALIKE_POOL)]
        candidate_views = [images.render_view(c, rng, nuisances=difficulty.reference) for c in candidates]
        for i in similarity.pick_lookalikes(view, candidate_views, distractors):
            looks.append(candidates[i])
            views.append(candidate_views[i])
    return looks, views


def render_query(rng: np.random.Generator, positives: list[Identity], difficulty: Difficulty) -> Image.Image:
    """The query: new views of the positives under the level's nuisances, plus its decoys (look-alikes of
    positives that are no concept of the context). At the easy level: the original query, draw for draw."""
    decoys = tuple(
        identities.lookalike(rng, positives[int(rng.integers(len(positives)))], difficulty.changes)
        for _ in range(difficulty.decoys(rng, len(positives)))
    )
    return images.render_query(positives, rng, nuisances=difficulty.query, decoys=decoys)
