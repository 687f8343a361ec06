"""The builder's difficulty knob: one number that sets how alike the distractors are and how much a
query view departs from the reference views.

Level 0 (`easy`) is the original builder: mutually distinct concepts, mild query nuisances, the same
bytes as before the knob existed. Any level above 0 gives each positive concept two look-alike
distractors, picked by the builder's similarity measure (`similarity.py`) among candidate variants of
it, and renders the query with stronger nuisances and look-alike decoy objects; both grow with the
level, up to `hard` (1). `paper` is the level at which the offline baselines spread as on the paper's
data (measured by `benchmarks/baseline_spread.py`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from covip.tasks.builder.images import EASY, Nuisances

PRESETS = {"easy": 0.0, "paper": 0.5, "hard": 1.0}
LOOKALIKE_POOL = 4  # candidate variants per positive, among which the 2 most similar become its distractors
MARKED_SHARE = 0.5  # share of positives that carry a marking, so that a marking never gives a distractor away
# A reference view shows the whole concept, so that every identity feature is on record.
REFERENCE = Nuisances(occlusion=0.0)


@dataclass(frozen=True)
class Difficulty:
    """A difficulty level in [0, 1] and the preset name it came from (None for a plain number)."""

    level: float
    preset: str | None = None

    @classmethod
    def parse(cls, value: str | float) -> Difficulty:
        """`easy`, `paper`, `hard`, or a number in [0, 1]."""
        if isinstance(value, str) and value in PRESETS:
            return cls(PRESETS[value], value)
        try:
            level = float(value)
        except ValueError:
            raise ValueError(
                f"difficulty must be one of {', '.join(PRESETS)} or a number in [0, 1], got {value!r}"
            ) from None
        if not 0.0 <= level <= 1.0:
            raise ValueError(f"a difficulty number must be in [0, 1], got {level}")
        return cls(level)

    @property
    def label(self) -> str:
        return f"{self.preset} ({self.level:g})" if self.preset else f"{self.level:g}"

    def record(self) -> dict:
        """What the manifest records."""
        return {"preset": self.preset, "level": self.level}

    @property
    def lookalikes(self) -> bool:
        """Whether distractors are look-alikes of their positive (any level above easy)."""
        return self.level > 0

    @property
    def changes(self) -> int:
        """How many identity features a look-alike differs in from its concept: 3 at low levels, 2 around
        paper, 1 from 0.75 up (a single feature, such as an accessory, may then be all that tells them apart)."""
        return 1 + math.floor(2.0 * (1.0 - self.level) + 0.5)

    @property
    def siblings(self) -> float:
        """Chance that a sample's next positive is a look-alike of an earlier one (two cats, a pair of mugs):
        the more positives a sample has, the more of its concepts look alike, as in real photo collections."""
        return min(1.0, 1.5 * self.level)

    def decoys(self, rng: np.random.Generator, bucket: int) -> int:
        """How many look-alike objects that are no concept of the context the query shows."""
        return int(rng.binomial(1 + bucket // 2, self.level / 2)) if self.lookalikes else 0

    @property
    def query(self) -> Nuisances:
        """The query's nuisances: rotation, foreshortening, lighting, colour casts, occlusion, clutter, size and
        crowding (objects may overlap)."""
        if not self.lookalikes:
            return EASY
        x = self.level
        return Nuisances(
            rotation=70.0 + 110.0 * x,
            tilt=0.35 * x,
            gain=(0.9 - 0.2 * x, 1.08 + 0.1 * x),
            tint=0.015 + 0.05 * x,
            scene_cast=0.1 * x,
            occlusion=0.35 + 0.3 * x,
            max_occlusion=0.25 + 0.1 * x,
            coloured_clutter=0.5 * x,
            size=(0.72 - 0.2 * x, 1.0),
            gap=0.03 - 0.16 * x,
        )

    @property
    def reference(self) -> Nuisances:
        """The context views' nuisances: the easy ones, without occlusion once distractors are look-alikes."""
        return REFERENCE if self.lookalikes else EASY
