"""What a concept looks like: procedurally drawn visual identities, and look-alikes of them.

Why procedural: the benchmark is built offline with no model and no licensed photos, so every concept
must be drawable from a seed and recognisable across views. A concept is a small "creature/object" made
of a body shape, a 2-3 colour palette, a surface pattern, a few accessories and (in look-alikes) a
marking. `draw_identities` draws concepts that are easy to tell apart; `lookalike` derives a near
neighbour of a concept that differs from it in a few identity features only.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass, replace

import numpy as np

Colour = tuple[int, int, int]

SHAPES = ("circle", "ellipse", "rounded_square", "triangle", "star", "blob", "hexagon", "egg", "diamond")
PATTERNS = ("plain", "stripes", "dots", "checker", "rings", "zigzag", "belly", "spots")
TOP_ACCESSORIES = ("hat", "antenna", "ears", "bow")
SIDE_ACCESSORIES = ("handle", "tail")
BOTTOM_ACCESSORIES = ("collar", "feet")
ACCESSORY_SLOTS = (TOP_ACCESSORIES, ("eyes",), SIDE_ACCESSORIES, BOTTOM_ACCESSORIES)  # drawing order, one per slot
MARKINGS = ("star", "cross", "heart", "diamond", "ring")
# Identity features a look-alike may change; the body colour is never one of them (look-alikes share it).
FEATURES = ("shape", "pattern", "accessory", "marking", "colour")

_HUE_SLOTS = 12  # primary hues come from distinct 30-degree slots, so no two concepts share a main colour
_MAX_OVERLAP = 0.42  # largest allowed expected colour-histogram overlap between two identities of a list

# Rough area share of a pattern's second colour and of each accessory, relative to the body; only used to
# predict how alike two identities' colour distributions are when drawing a list.
_PATTERN_SHARE = {
    "plain": 0.0,
    "stripes": 0.36,
    "dots": 0.22,
    "checker": 0.5,
    "rings": 0.36,
    "zigzag": 0.36,
    "belly": 0.22,
    "spots": 0.2,
}
_ACCESSORY_SHARE = {
    "hat": 0.12,
    "antenna": 0.04,
    "ears": 0.1,
    "bow": 0.07,
    "eyes": 0.0,
    "handle": 0.06,
    "tail": 0.05,
    "collar": 0.1,
    "feet": 0.07,
}


@dataclass(frozen=True)
class Identity:
    """A concept's visual identity, stable across every view of it.

    palette[0] is the body colour (always saturated), palette[1] the pattern colour, palette[2] (if any)
    the accessory colour. shape_params/pattern_params are the continuous parameters of the drawing, kept
    here so an identity is fully reproducible without its generator. A marking is a small emblem on the
    body, drawn in the accessory colour at body coordinates (u, v) with a size and an angle; identities
    drawn for the easy setting have none.
    """

    shape: str
    shape_params: tuple[float, ...]
    palette: tuple[Colour, ...]
    pattern: str
    pattern_params: tuple[float, ...]
    accessories: tuple[str, ...]
    marking: str = ""
    marking_params: tuple[float, ...] = ()

    @property
    def accessory_colour(self) -> Colour:
        return self.palette[2] if len(self.palette) > 2 else self.palette[1]


def _hsv(h: float, s: float, v: float) -> Colour:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return (round(r * 255), round(g * 255), round(b * 255))


def _rgb_hsv(c: Colour) -> tuple[float, float, float]:
    return colorsys.rgb_to_hsv(c[0] / 255, c[1] / 255, c[2] / 255)


def _is_chromatic(c: Colour) -> bool:
    """Whether a colour counts as a hue (not white/black/grey) for telling identities apart."""
    return max(c) - min(c) >= 60


def _draw_shape(rng: np.random.Generator) -> tuple[str, tuple[float, ...]]:
    """A body shape and its continuous parameters (aspect, star points, blob harmonics...)."""
    shape = str(rng.choice(SHAPES))
    if shape == "ellipse":
        a = float(rng.uniform(1.12, 1.28))
        params: tuple[float, ...] = (a, 1.0 / a) if rng.random() < 0.5 else (1.0 / a, a)
    elif shape == "rounded_square":
        params = (float(rng.uniform(3.0, 5.0)),)
    elif shape == "star":
        params = (float(rng.choice([5, 6])), float(rng.uniform(0.55, 0.68)))
    elif shape == "blob":
        params = tuple(float(x) for k in range(3) for x in (rng.uniform(0.05, 0.12), rng.uniform(0, 2 * math.pi)))
    elif shape == "egg":
        params = (float(rng.uniform(0.12, 0.22)),)
    else:
        params = ()
    return shape, params


def _draw_pattern(rng: np.random.Generator) -> tuple[str, tuple[float, ...]]:
    """A surface pattern; its second colour covers at most ~40% of the body so the body colour dominates."""
    pattern = str(rng.choice(PATTERNS))
    angle = float(rng.uniform(0, math.pi))
    if pattern in ("stripes", "zigzag", "rings"):
        params: tuple[float, ...] = (float(rng.uniform(0.32, 0.48)), angle, float(rng.uniform(0.3, 0.4)))
    elif pattern == "dots":
        params = (float(rng.uniform(0.34, 0.46)), angle, float(rng.uniform(0.24, 0.3)))
    elif pattern == "checker":
        params = (float(rng.uniform(0.38, 0.55)), angle)
    elif pattern == "belly":
        params = (float(rng.uniform(0.45, 0.6)), float(rng.uniform(0.38, 0.5)), float(rng.uniform(0.15, 0.35)))
    elif pattern == "spots":
        k = int(rng.integers(5, 9))
        pts = []
        for _ in range(k):
            rad, ang = math.sqrt(rng.uniform(0, 0.7)), rng.uniform(0, 2 * math.pi)
            pts += [rad * math.cos(ang), rad * math.sin(ang), float(rng.uniform(0.11, 0.2))]
        params = tuple(float(x) for x in pts)
    else:
        params = ()
    return pattern, params


def _draw_accessories(rng: np.random.Generator) -> tuple[str, ...]:
    """One to three accessories, at most one per body slot (top, face, side, bottom) so none collide."""
    while True:
        acc = []
        if rng.random() < 0.7:
            acc.append(str(rng.choice(TOP_ACCESSORIES)))
        if rng.random() < 0.55:
            acc.append("eyes")
        if rng.random() < 0.4:
            acc.append(str(rng.choice(SIDE_ACCESSORIES)))
        if rng.random() < 0.45:
            acc.append(str(rng.choice(BOTTOM_ACCESSORIES)))
        if 1 <= len(acc) <= 3:
            return tuple(acc)


def _second_colour(rng: np.random.Generator, primary_hsv: tuple[float, float, float], allow_tint: bool) -> Colour:
    """A pattern/accessory colour that contrasts with the body: another hue, a tint, or white/black."""
    h, s, v = primary_hsv
    u = rng.random()
    if u < 0.55:
        dh = rng.uniform(0.17, 0.83)  # at least ~60 degrees away from the body hue
        return _hsv(h + dh, rng.uniform(0.6, 0.95), rng.uniform(0.6, 0.95))
    if u < 0.75 and allow_tint:
        return _hsv(h, s * 0.45, min(1.0, v + 0.35)) if v < 0.8 else _hsv(h, min(1.0, s + 0.05), v * 0.5)
    if rng.random() < 0.5:
        grey = int(rng.integers(235, 251))
        return (grey, grey, int(rng.integers(225, grey + 1)))
    grey = int(rng.integers(30, 55))
    return (grey, grey, grey)


def _colour_weights(identity: Identity) -> list[tuple[float, float, float]]:
    """Expected (hue, value, share) of the chromatic colours of an identity, shares summing to 1."""
    pat = _PATTERN_SHARE[identity.pattern]
    acc = sum(_ACCESSORY_SHARE[a] for a in identity.accessories)
    shares = [1.0 - pat, pat, 0.0]
    if len(identity.palette) > 2:
        shares[2] = acc
    else:
        shares[1] += acc
    out = []
    for colour, share in zip(identity.palette, shares[: len(identity.palette)], strict=True):
        if share > 0 and _is_chromatic(colour):
            h, _, v = _rgb_hsv(colour)
            out.append((h, v, share))
    total = sum(w for _, _, w in out) or 1.0
    return [(h, v, w / total) for h, v, w in out]


def _hue_distance(a: float, b: float) -> float:
    """Distance between two hues on the colour circle, in degrees."""
    d = abs(a - b) % 1.0
    return min(d, 1.0 - d) * 360.0


def _overlap(a: Identity, b: Identity) -> float:
    """Predicted colour-histogram overlap of two identities (0 = disjoint colours, 1 = same colours)."""
    total = 0.0
    for ha, va, wa in _colour_weights(a):
        for hb, vb, wb in _colour_weights(b):
            k = max(0.0, 1.0 - _hue_distance(ha, hb) / 30.0) * max(0.0, 1.0 - abs(va - vb) / 0.6)
            total += min(wa, wb) * k
    return total


def _draw_identity(rng: np.random.Generator, hue: float) -> Identity:
    """One candidate identity whose body colour has the given hue (its slot in the list)."""
    shape, shape_params = _draw_shape(rng)
    pattern, pattern_params = _draw_pattern(rng)
    accessories = _draw_accessories(rng)
    primary_hsv = (hue, float(rng.uniform(0.62, 0.95)), float(rng.uniform(0.62, 0.95)))
    primary = _hsv(*primary_hsv)
    # Half-and-half patterns would make a second hue as strong as the body colour: give them a tint/grey.
    second = _second_colour(rng, primary_hsv, allow_tint=pattern != "plain")
    while pattern == "checker" and _is_chromatic(second) and _hue_distance(_rgb_hsv(second)[0], hue) > 6.0:
        second = _second_colour(rng, primary_hsv, allow_tint=True)
    palette: tuple[Colour, ...] = (primary, second)
    if rng.random() < 0.6:
        palette = (primary, second, _second_colour(rng, primary_hsv, allow_tint=False))
    return Identity(shape, shape_params, palette, pattern, pattern_params, accessories)


def draw_identities(rng: np.random.Generator, n: int) -> list[Identity]:
    """n identities that are mutually distinguishable (palettes/shapes/patterns sufficiently different within
    the list; n up to 12).

    Each identity gets its own 30-degree hue slot for the body colour, and its other colours are redrawn
    until its predicted colour overlap with every earlier identity is small: a person (or a colour
    histogram) can always tell the concepts of one sample apart.
    """
    if not 0 <= n <= _HUE_SLOTS:
        raise ValueError(f"n must be in 0..{_HUE_SLOTS}, got {n}")
    offset = rng.uniform(0, 1.0 / _HUE_SLOTS)
    slots = rng.permutation(_HUE_SLOTS)[:n]
    out: list[Identity] = []
    for slot in slots:
        hue = float(offset + slot / _HUE_SLOTS + rng.uniform(-0.008, 0.008))
        best, best_overlap = None, math.inf
        for _ in range(60):
            cand = _draw_identity(rng, hue)
            worst = max((_overlap(cand, other) for other in out), default=0.0)
            if worst < best_overlap:
                best, best_overlap = cand, worst
            if worst <= _MAX_OVERLAP:
                break
        assert best is not None
        out.append(best)
    return out


# --------------------------------------------------------------------------------------------- look-alikes


def _draw_marking(rng: np.random.Generator, avoid: str = "") -> tuple[str, tuple[float, ...]]:
    """A marking other than `avoid`, on the forehead or the lower body: places that every body shape covers
    and that no accessory or eye is drawn over."""
    name = str(rng.choice([m for m in MARKINGS if m != avoid]))
    v = rng.uniform(-0.6, -0.44) if rng.random() < 0.5 else rng.uniform(0.1, 0.24)
    return name, (float(rng.uniform(-0.2, 0.2)), float(v), float(rng.uniform(0.24, 0.3)), float(rng.uniform(0, 360)))


def with_marking(rng: np.random.Generator, identity: Identity) -> Identity:
    """The identity with a (new) marking: harder settings give some concepts one, so that a marking alone
    never tells a distractor from a positive."""
    name, params = _draw_marking(rng, identity.marking)
    return replace(identity, marking=name, marking_params=params)


def _change_shape(rng: np.random.Generator, identity: Identity) -> Identity:
    """Another body shape class: an outline difference that survives rotation and foreshortening."""
    while True:
        shape, params = _draw_shape(rng)
        if shape != identity.shape:
            return replace(identity, shape=shape, shape_params=params)


def _change_pattern(rng: np.random.Generator, identity: Identity) -> Identity:
    """The same pattern family at another scale (or, for spots, another layout); a plain body gets belly or
    spots in its own second colour."""
    pattern, p = identity.pattern, identity.pattern_params
    if pattern == "plain":
        pattern = str(rng.choice(["belly", "spots"]))
        while True:
            drawn, p = _draw_pattern(rng)
            if drawn == pattern:
                return replace(identity, pattern=pattern, pattern_params=p)
    if pattern in ("spots", "belly"):
        while True:
            drawn, new = _draw_pattern(rng)
            if drawn == pattern and (pattern == "spots" or abs(new[0] - p[0]) + abs(new[1] - p[1]) > 0.12):
                return replace(identity, pattern_params=new)
    factor = float(rng.uniform(1.45, 1.75))
    scaled = p[0] * factor if p[0] * factor <= 0.8 else p[0] / factor  # keep at least ~2 periods on the body
    return replace(identity, pattern_params=(scaled, *p[1:]))


def _change_accessory(rng: np.random.Generator, identity: Identity) -> Identity:
    """One body slot changes: its accessory is swapped for another of the slot, added, or removed."""
    by_slot = [next((a for a in identity.accessories if a in slot), None) for slot in ACCESSORY_SLOTS]
    while True:
        k = int(rng.integers(len(ACCESSORY_SLOTS)))
        options = [a for a in ACCESSORY_SLOTS[k] if a != by_slot[k]]
        if by_slot[k] is not None and len(identity.accessories) > 1:
            options.append(None)
        if options:
            by_slot[k] = options[int(rng.integers(len(options)))]
            return replace(identity, accessories=tuple(a for a in by_slot if a is not None))


def _change_colour(rng: np.random.Generator, identity: Identity) -> Identity:
    """A new pattern or accessory colour; the body colour, which dominates the picture, stays."""
    primary = identity.palette[0]
    h, s, v = _rgb_hsv(primary)
    palette = list(identity.palette)
    k = int(rng.integers(1, len(palette)))
    while palette[k] == identity.palette[k]:
        palette[k] = _second_colour(rng, (h, s, v), allow_tint=k == 1 and identity.pattern != "plain")
    return replace(identity, palette=tuple(palette))


_CHANGES = {
    "shape": _change_shape,
    "pattern": _change_pattern,
    "accessory": _change_accessory,
    "marking": with_marking,
    "colour": _change_colour,
}


def lookalike(rng: np.random.Generator, identity: Identity, changes: int) -> Identity:
    """A near neighbour of an identity: same body colour, differing in `changes` distinct identity features
    (FEATURES), each changed enough to be seen in any view."""
    if not 1 <= changes <= len(FEATURES):
        raise ValueError(f"changes must be in 1..{len(FEATURES)}, got {changes}")
    out = identity
    for feature in rng.choice(FEATURES, size=changes, replace=False):
        out = _CHANGES[str(feature)](rng, out)
    return out
