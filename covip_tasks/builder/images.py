"""Rendering concepts: the canonical sprite of an identity, its views, and cluttered query scenes.

A view changes pose, scale, lighting and occlusion but never an identity feature, so a careful looker
can always tell a concept from its look-alikes. How far a query view departs from the reference view
is set by `Nuisances` (the easy setting keeps every scene colour near-grey, so clutter can never
reproduce a concept's identity; harder settings add colour casts, coloured clutter and foreshortening).
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
from PIL import Image

from covip.tasks.builder.identities import Colour, Identity

_CANVAS = 256  # canonical sprite canvas (px); views are resampled from it
_RADIUS = 66.0  # canonical body radius (px)
_OUTLINE = 3.0  # canonical outline width (px)


@dataclass(frozen=True)
class Nuisances:
    """How far a rendered view departs from the concept's canonical look, and how busy the query scene is.

    None of them changes an identity feature. The defaults are the easy setting: with them every function
    here draws exactly what it drew before difficulty levels existed, random draw for random draw.
    """

    rotation: float = 70.0  # largest rotation either way (degrees)
    tilt: float = 0.0  # largest foreshortening: the view is squashed by up to this share along a random axis
    gain: tuple[float, float] = (0.9, 1.08)  # brightness range of an object's lighting
    tint: float = 0.015  # per-channel colour cast of one object's lighting (standard deviation of the gain)
    scene_cast: float = 0.0  # per-channel colour cast of the whole query scene (white balance)
    occlusion: float = 0.35  # probability that an object is partly covered
    max_occlusion: float = 0.25  # largest share of an object that a cover may hide
    coloured_clutter: float = 0.0  # share of the query clutter's shapes drawn in colour rather than grey
    size: tuple[float, float] = (0.72, 1.0)  # a query object's diameter, relative to the largest that fits
    gap: float = 0.03  # least space between objects' bounding circles (share of the shorter side; < 0: overlap)


EASY = Nuisances()


# --------------------------------------------------------------------------------------- canonical sprite

_CENTRE = (_CANVAS / 2, _CANVAS / 2 + 8)  # a little low: hats and antennas need more room than feet
_LUT = 2048  # angular samples of a body outline


def _polygon_radius(theta: np.ndarray, radii: np.ndarray, phase: float) -> np.ndarray:
    """Polar radius of a star-shaped polygon whose vertices sit at equal angles with the given radii."""
    m = len(radii)
    step = 2 * math.pi / m
    t = np.mod(theta - phase, 2 * math.pi)
    idx = np.minimum((t / step).astype(np.int64), m - 1)
    a0 = idx * step
    px, py = radii[idx] * np.cos(a0), radii[idx] * np.sin(a0)
    nxt = (idx + 1) % m
    dx, dy = radii[nxt] * np.cos(a0 + step) - px, radii[nxt] * np.sin(a0 + step) - py
    den = np.cos(t) * dy - np.sin(t) * dx
    return (px * dy - py * dx) / np.where(np.abs(den) < 1e-9, 1e-9, den)


def _body_radius(identity: Identity, theta: np.ndarray) -> np.ndarray:
    """Normalised polar radius R(theta) of the body outline (y axis points down)."""
    s, p = identity.shape, identity.shape_params
    if s == "circle":
        return np.ones_like(theta)
    if s == "ellipse":
        a, b = p
        return a * b / np.sqrt((b * np.cos(theta)) ** 2 + (a * np.sin(theta)) ** 2)
    if s == "rounded_square":
        e = p[0]
        return 0.92 * (np.abs(np.cos(theta)) ** e + np.abs(np.sin(theta)) ** e) ** (-1.0 / e)
    if s == "triangle":
        return np.minimum(_polygon_radius(theta, np.full(3, 1.3), -math.pi / 2), 1.12)
    if s == "hexagon":
        return _polygon_radius(theta, np.full(6, 1.05), 0.0)
    if s == "diamond":
        return np.minimum(_polygon_radius(theta, np.array([1.2, 0.95, 1.2, 0.95]), -math.pi / 2), 1.1)
    if s == "star":
        radii = np.tile(np.array([1.22, 1.22 * p[1]]), int(p[0]))
        return _polygon_radius(theta, radii, -math.pi / 2)
    if s == "blob":
        r = np.ones_like(theta)
        for i in range(3):
            r = r + p[2 * i] * np.cos((i + 2) * theta + p[2 * i + 1])
        return r
    if s == "egg":
        return 1.05 - 0.9 * p[0] * np.sin(theta)
    raise ValueError(f"unknown shape {s!r}")


@lru_cache(maxsize=1)
def _grid() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Normalised body coordinates u, v, radius rho and outline-table index of every canvas pixel."""
    ys, xs = np.mgrid[0:_CANVAS, 0:_CANVAS].astype(np.float32)
    u, v = (xs - _CENTRE[0]) / _RADIUS, (ys - _CENTRE[1]) / _RADIUS
    rho = np.sqrt(u * u + v * v)
    idx = np.round(np.mod(np.arctan2(v, u), 2 * math.pi) * (_LUT / (2 * math.pi))).astype(np.int32) % _LUT
    for arr in (u, v, rho, idx):
        arr.setflags(write=False)
    return u, v, rho, idx


def _soft(sd: np.ndarray) -> np.ndarray:
    """Coverage from a signed distance in pixels (positive inside): one-pixel anti-aliased edge."""
    return np.clip(sd + 0.5, 0.0, 1.0)


def _periodic_band(t: np.ndarray, period: float, duty: float) -> np.ndarray:
    """Signed distance (px) to bands [0, duty) of a periodic coordinate t given in normalised units."""
    s = np.mod(t / period, 1.0)
    inside = np.minimum(s, duty - s)
    outside = -np.minimum(s - duty, 1.0 - s)
    return np.where(s < duty, inside, outside) * (period * _RADIUS)


def _pattern_mask(identity: Identity, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Coverage of the pattern colour at body coordinates (u, v): the pattern turns with the body."""
    pat, p = identity.pattern, identity.pattern_params
    if pat == "plain":
        return np.zeros_like(u)
    if pat in ("stripes", "zigzag", "rings"):
        period, angle, duty = p
        if pat == "rings":
            t = np.sqrt(u * u + (v + 0.05) ** 2) + period * 0.5
        else:
            t = u * math.cos(angle) + v * math.sin(angle)
            if pat == "zigzag":
                w = -u * math.sin(angle) + v * math.cos(angle)
                t = t + 0.6 * period * np.abs(np.mod(w / (0.8 * period), 1.0) - 0.5)
        return _soft(_periodic_band(t, period, duty))
    if pat == "dots":
        period, angle, rel = p
        a = u * math.cos(angle) + v * math.sin(angle)
        b = -u * math.sin(angle) + v * math.cos(angle)
        a = a + 0.5 * period * np.mod(np.floor(b / period), 2)
        da = (np.mod(a / period, 1.0) - 0.5) * period
        db = (np.mod(b / period, 1.0) - 0.5) * period
        return _soft((rel * period - np.sqrt(da * da + db * db)) * _RADIUS)
    if pat == "checker":
        period, angle = p
        a = u * math.cos(angle) + v * math.sin(angle)
        b = -u * math.sin(angle) + v * math.cos(angle)
        fa, fb = np.mod(a / period, 1.0), np.mod(b / period, 1.0)
        parity = (np.floor(a / period) + np.floor(b / period)) % 2
        edge = np.minimum(np.minimum(fa, 1 - fa), np.minimum(fb, 1 - fb)) * (period * _RADIUS)
        return np.where(parity > 0, _soft(edge), _soft(-edge))
    if pat == "belly":
        ax, ay, off = p
        d = np.sqrt((u / ax) ** 2 + ((v - off) / ay) ** 2)
        return _soft((1.0 - d) * (min(ax, ay) * _RADIUS))
    if pat == "spots":
        m = np.zeros_like(u)
        for i in range(0, len(p), 3):
            cx, cy, r = p[i : i + 3]
            m = np.maximum(m, _soft((r - np.sqrt((u - cx) ** 2 + (v - cy) ** 2)) * _RADIUS))
        return m
    raise ValueError(f"unknown pattern {pat!r}")


def _darker(c: Colour, f: float) -> Colour:
    return (round(c[0] * f), round(c[1] * f), round(c[2] * f))


def _fx(x: float) -> int:
    """A coordinate in cv2's 4-bit fixed point, for sub-pixel anti-aliased drawing."""
    return round(x * 16)


def _pt(p: tuple[float, float]) -> tuple[int, int]:
    return (_fx(p[0]), _fx(p[1]))


def _poly(pts: list[tuple[float, float]]) -> list[np.ndarray]:
    return [np.array([_pt(p) for p in pts], np.int32)]


Point = tuple[float, float]


class _Painter:
    """Premultiplied RGBA layer stack of the canonical sprite; a layer only touches its bounding box."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.rgb = np.zeros((n, n, 3), np.float32)
        self.alpha = np.zeros((n, n), np.float32)

    def paint(self, box: tuple[slice, slice], mask: np.ndarray, colour: Colour, under: bool = False) -> None:
        rgb, alpha = self.rgb[box], self.alpha[box]
        col = np.asarray(colour, np.float32) / 255.0
        if under:  # behind what is already there
            k = (1.0 - alpha) * mask
            rgb += k[..., None] * col
            alpha += k
        else:
            m = mask[..., None]
            rgb *= 1.0 - m
            rgb += m * col
            alpha += (1.0 - alpha) * mask

    def _layer(self, draw: Callable[[np.ndarray], object], colour: Colour, under: bool) -> None:
        m = np.zeros((self.n, self.n), np.uint8)
        draw(m)
        x, y, w, h = cv2.boundingRect(m)
        if w and h:
            box = (slice(y, y + h), slice(x, x + w))
            self.paint(box, m[box].astype(np.float32) / 255.0, colour, under)

    def polygon(self, pts: list[Point], colour: Colour, under: bool = False) -> None:
        self._layer(lambda m: cv2.fillPoly(m, _poly(pts), 255, cv2.LINE_AA, 4), colour, under)

    def outline(self, pts: list[Point], colour: Colour, width: int, closed: bool = True, under: bool = False) -> None:
        self._layer(lambda m: cv2.polylines(m, _poly(pts), closed, 255, width, cv2.LINE_AA, 4), colour, under)

    def circle(self, c: Point, radius: float, colour: Colour, under: bool = False) -> None:
        self._layer(lambda m: cv2.circle(m, _pt(c), _fx(radius), 255, -1, cv2.LINE_AA, 4), colour, under)

    def ellipse(
        self, c: Point, axes: Point, span: tuple[float, float], colour: Colour, width: int = -1, under: bool = False
    ) -> None:
        self._layer(
            lambda m: cv2.ellipse(m, _pt(c), _pt(axes), 0, span[0], span[1], 255, width, cv2.LINE_AA, 4), colour, under
        )

    def line(self, a: Point, b: Point, colour: Colour, width: int, under: bool = False) -> None:
        self._layer(lambda m: cv2.line(m, _pt(a), _pt(b), 255, width, cv2.LINE_AA, 4), colour, under)


def _draw_accessory(paint: _Painter, identity: Identity, name: str, anchor: Callable[[float, float], Point]) -> None:
    """Draw one accessory, placed relative to the body outline so it fits every body shape."""
    cx, cy = _CENTRE
    r = _RADIUS
    primary, second, acc = identity.palette[0], identity.palette[1], identity.accessory_colour
    dark = _darker(primary, 0.42)
    up = -math.pi / 2

    def px(k: float) -> int:
        return max(1, round(k * r))

    if name == "hat":
        x, y = anchor(up, 0.12)
        pts = [(x - 0.45 * r, y + 0.05 * r), (x + 0.45 * r, y + 0.05 * r), (x + 0.12 * r, y - 0.8 * r)]
        paint.polygon(pts, acc)
        paint.outline(pts, dark, px(0.04))
        paint.circle(pts[2], 0.11 * r, second if second != acc else (245, 245, 240))
    elif name == "antenna":
        for side in (-1, 1):
            x0, y0 = anchor(up + side * 0.35, 0.1)
            tip = (x0 + side * 0.3 * r, y0 - 0.6 * r)
            paint.line((x0, y0), tip, dark, px(0.06), under=True)
            paint.circle(tip, 0.14 * r, acc)
    elif name == "ears":
        for side in (-1, 1):
            a, b = anchor(up + side * 0.75, 0.2), anchor(up + side * 0.2, 0.2)
            tip = (a[0] + side * 0.05 * r, min(a[1], b[1]) - 0.6 * r)
            paint.polygon([a, b, tip], dark, under=True)
            mid = ((a[0] + b[0] + tip[0]) / 3, (a[1] + b[1] + tip[1]) / 3)
            inner = [(mid[0] + 0.6 * (q[0] - mid[0]), mid[1] + 0.6 * (q[1] - mid[1])) for q in (a, b, tip)]
            paint.polygon(inner, acc)
    elif name == "bow":
        x, y = anchor(up, 0.05)
        for side in (-1, 1):
            pts = [(x, y), (x + side * 0.42 * r, y - 0.22 * r), (x + side * 0.42 * r, y + 0.22 * r)]
            paint.polygon(pts, acc)
            paint.outline(pts, dark, px(0.04))
        paint.circle((x, y), 0.1 * r, dark)
    elif name == "eyes":
        for side in (-1, 1):
            ex, ey = cx + side * 0.3 * r, cy - 0.05 * r
            paint.circle((ex, ey), 0.17 * r, (250, 250, 250))
            paint.circle((ex + 0.05 * r, ey + 0.03 * r), 0.08 * r, (20, 20, 24))
    elif name == "handle":
        x, y = anchor(0.0, 0.15)
        paint.ellipse((x, y), (0.42 * r, 0.5 * r), (-90, 90), acc, width=px(0.16), under=True)
    elif name == "tail":
        x, y = anchor(math.pi * 0.92, 0.1)
        pts = [(x - t * 0.6 * r, y - 0.35 * r * math.sin(t * 2.6)) for t in np.linspace(0, 1, 12)]
        paint.outline(pts, acc, px(0.13), closed=False, under=True)
    elif name == "collar":
        u, v, _, _ = _grid()
        y0, y1 = int(cy + 0.38 * r), int(cy + 0.58 * r) + 1
        box = (slice(y0, y1), slice(0, paint.n))
        band = _soft(np.minimum(v[box] - 0.4, 0.56 - v[box]) * r) * (paint.alpha[box] > 0.99)
        paint.paint(box, band, acc)
        tag = (235, 200, 60)
        paint.circle((cx, cy + 0.62 * r), 0.11 * r, tag if acc != tag else dark)
    elif name == "feet":
        for side in (-1, 1):
            fx, fy = anchor(math.pi / 2 - side * 0.5, 0.1)
            paint.ellipse(
                (fx, fy + 0.08 * r), (0.25 * r, 0.14 * r), (0, 360), acc if acc != primary else dark, under=True
            )
    else:
        raise ValueError(f"unknown accessory {name!r}")


def _marking_outline(name: str) -> np.ndarray:
    """The outline of a marking as polygon vertices in unit coordinates (radius about 1)."""
    t = np.linspace(0, 2 * math.pi, 40, endpoint=False)
    if name == "star":
        a = np.linspace(0, 2 * math.pi, 10, endpoint=False) - math.pi / 2
        rad = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        return np.stack([rad * np.cos(a), rad * np.sin(a)], axis=1)
    if name == "cross":
        w = 0.34
        return np.array(
            [(-w, -1), (w, -1), (w, -w), (1, -w), (1, w), (w, w), (w, 1), (-w, 1), (-w, w), (-1, w)]
            + [(-1, -w), (-w, -w)]
        )
    if name == "heart":
        x = 16 * np.sin(t) ** 3
        y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
        return np.stack([x, y + 2.5], axis=1) / 16.0
    if name == "diamond":
        return np.array([(0, -1), (0.62, 0), (0, 1), (-0.62, 0)], np.float64)
    if name == "ring":
        return np.stack([np.cos(t), np.sin(t)], axis=1)
    raise ValueError(f"unknown marking {name!r}")


def _paint_marking(paint: _Painter, identity: Identity) -> None:
    """A small emblem on the body, in the accessory colour with a dark outline (a ring is an outline only)."""
    u, v, size, angle = identity.marking_params
    cx, cy = _CENTRE
    a = math.radians(angle)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    pts = _marking_outline(identity.marking) @ rot.T * (size * _RADIUS) + (cx + u * _RADIUS, cy + v * _RADIUS)
    poly = [(float(x), float(y)) for x, y in pts]
    dark = _darker(identity.palette[0], 0.42)
    if identity.marking == "ring":
        paint.outline(poly, dark, max(1, round(0.16 * size * _RADIUS)))
        paint.outline(poly, identity.accessory_colour, max(1, round(0.08 * size * _RADIUS)))
        return
    paint.polygon(poly, identity.accessory_colour)
    paint.outline(poly, dark, 2)


@lru_cache(maxsize=64)
def _sprite(identity: Identity) -> tuple[np.ndarray, float]:
    """The canonical premultiplied RGBA sprite of an identity, cropped, and its bounding-circle radius."""
    n, r = _CANVAS, _RADIUS
    cx, cy = _CENTRE
    u, v, rho, idx = _grid()
    lut = _body_radius(identity, np.linspace(0, 2 * math.pi, _LUT, endpoint=False)).astype(np.float32)
    sd = (lut[idx] - rho) * r
    x, y, w, h = cv2.boundingRect((sd > -1).astype(np.uint8))
    box = (slice(y, y + h), slice(x, x + w))
    sd, ub, vb = sd[box], u[box], v[box]
    primary, second = identity.palette[0], identity.palette[1]

    def anchor(phi: float, inset: float = 0.0) -> Point:
        rad = float(_body_radius(identity, np.array([phi]))[0]) - inset
        return cx + rad * r * math.cos(phi), cy + rad * r * math.sin(phi)

    paint = _Painter(n)
    # Body: dark outline, fill with pattern, gentle top-left lighting.
    paint.paint(box, _soft(sd), _darker(primary, 0.42))
    pm = _pattern_mask(identity, ub, vb)[..., None]
    fill = (1 - pm) * (np.asarray(primary, np.float32) / 255.0) + pm * (np.asarray(second, np.float32) / 255.0)
    shade = 1.0 - 0.063 * (ub + vb) - 0.08 * np.minimum(rho[box], 1.3) ** 4
    fill = np.clip(fill * np.clip(shade, 0.75, 1.12)[..., None], 0, 1)
    m = _soft(sd - _OUTLINE)[..., None]
    rgb = paint.rgb[box]
    rgb *= 1 - m
    rgb += m * fill
    if identity.marking:
        _paint_marking(paint, identity)
    for name in identity.accessories:
        _draw_accessory(paint, identity, name, anchor)

    solid = (paint.alpha > 0.01).astype(np.uint8)
    x, y, w, h = cv2.boundingRect(solid)
    x0, y0, x1, y1 = max(0, x - 2), max(0, y - 2), min(n, x + w + 2), min(n, y + h + 2)
    crop = np.concatenate([paint.rgb[y0:y1, x0:x1], paint.alpha[y0:y1, x0:x1, None]], axis=2)
    crop.setflags(write=False)
    contours, _ = cv2.findContours(solid, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hull = np.concatenate([c.reshape(-1, 2) for c in contours]).astype(np.float32)
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2], np.float32)
    radius = float(np.sqrt(((hull + 0.5 - centre) ** 2).sum(axis=1)).max()) + 1.0
    return crop, radius


# ------------------------------------------------------------------------------------------ compositing


@dataclass
class _Placed:
    """Where a composited object lies: its coverage inside a box of the image, for occlusion checks."""

    alpha: np.ndarray  # visible coverage inside box (shrinks as occluders are drawn)
    box: tuple[slice, slice]
    cx: float
    cy: float
    radius: float
    area: float  # coverage area before any occlusion


def _composite(
    dst: np.ndarray,
    identity: Identity,
    rng: np.random.Generator,
    cx: float,
    cy: float,
    diameter: float,
    nuisances: Nuisances,
) -> _Placed:
    """Draw a randomly posed, scaled and lit view of an identity onto float image dst (in place)."""
    sprite, rad = _sprite(identity)
    flip = rng.random() < 0.5
    angle = float(rng.uniform(-nuisances.rotation, nuisances.rotation))
    scale = diameter / (2 * rad)
    h, w = sprite.shape[:2]
    if scale < 0.8:  # area-average first so a strong reduction does not alias
        sprite = cv2.resize(sprite, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        scale *= w / sprite.shape[1]
        h, w = sprite.shape[:2]
    big_h, big_w = dst.shape[:2]
    half = int(math.ceil(diameter / 2)) + 2
    x0, y0 = int(math.floor(cx)) - half, int(math.floor(cy)) - half
    mat = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    if flip:  # mirror x about the sprite's centre before rotating
        mat[:, 2] += mat[:, 0] * w
        mat[:, 0] *= -1
    mat[0, 2] += cx - x0 - w / 2
    mat[1, 2] += cy - y0 - h / 2
    if nuisances.tilt > 0:  # a turned pose, seen foreshortened: squash along a random axis about the centre
        squash, axis = rng.uniform(1.0 - nuisances.tilt, 1.0), rng.uniform(0, math.pi)
        turn = np.array([[math.cos(axis), -math.sin(axis)], [math.sin(axis), math.cos(axis)]])
        squeeze = turn @ np.diag([squash, 1.0]) @ turn.T
        centre = np.array([cx - x0, cy - y0])
        mat = np.concatenate([squeeze @ mat[:, :2], (squeeze @ (mat[:, 2] - centre) + centre)[:, None]], axis=1)
    roi = cv2.warpAffine(sprite, mat, (2 * half, 2 * half), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    # Lighting: overall brightness and a per-channel cast.
    gain = float(rng.uniform(*nuisances.gain)) * (1.0 + rng.normal(0, nuisances.tint, 3)).astype(np.float32)
    ax0, ay0, ax1, ay1 = max(0, x0), max(0, y0), min(big_w, x0 + 2 * half), min(big_h, y0 + 2 * half)
    r, g, b, alpha = cv2.split(roi[ay0 - y0 : ay1 - y0, ax0 - x0 : ax1 - x0])
    box = (slice(ay0, ay1), slice(ax0, ax1))
    _blend(dst[box], alpha, cv2.merge([r * gain[0], g * gain[1], b * gain[2]]))
    return _Placed(alpha, box, cx, cy, diameter / 2, float(alpha.sum()))


def _blend(target: np.ndarray, alpha: np.ndarray, premultiplied: np.ndarray) -> None:
    """target = target * (1 - alpha) + premultiplied, in place (cv2 is much faster than numpy broadcasting)."""
    cv2.multiply(target, cv2.merge([1.0 - alpha] * 3), dst=target)
    cv2.add(target, premultiplied, dst=target)


def _neutral(rng: np.random.Generator, lo: float, hi: float, tint: float = 6.0) -> np.ndarray:
    """A near-grey colour (0..1): chroma stays far below that of any concept colour."""
    g = rng.uniform(lo, hi)
    return np.clip(g + rng.uniform(-tint, tint, 3), 0, 255).astype(np.float32) / 255.0


def _occlude(dst: np.ndarray, obj: _Placed, rng: np.random.Generator, others: list[_Placed], max_share: float) -> None:
    """Cover part (<= max_share in all) of an object with a plain grey bar or blob, hiding no other object more."""
    colour = _neutral(rng, 60, 200)
    bar = rng.random() < 0.6
    ang = rng.uniform(0, math.pi)
    off = rng.uniform(0.25, 0.75) * obj.radius
    oa = rng.uniform(0, 2 * math.pi)
    ox, oy = obj.cx + off * math.cos(oa), obj.cy + off * math.sin(oa)
    size = rng.uniform(0.3, 0.55) * obj.radius
    group = [obj, *others]
    for _ in range(8):
        m = np.zeros(dst.shape[:2], np.uint8)
        if bar:
            d = (math.cos(ang) * 1.6 * obj.radius, math.sin(ang) * 1.6 * obj.radius)
            a, b = (ox - d[0], oy - d[1]), (ox + d[0], oy + d[1])
            cv2.line(m, _pt(a), _pt(b), 255, max(2, round(size)), cv2.LINE_AA, 4)
        else:
            axes = (_fx(size * 1.3), _fx(size))
            cv2.ellipse(m, _pt((ox, oy)), axes, math.degrees(ang), 0, 360, 255, -1, cv2.LINE_AA, 4)
        mask = m.astype(np.float32) / 255.0
        if all(float((o.alpha * (1.0 - mask[o.box])).sum()) >= (1.0 - max_share) * o.area for o in group):
            x, y, w, h = cv2.boundingRect(m)
            box = (slice(y, y + h), slice(x, x + w))
            m = mask[box]
            _blend(dst[box], m, cv2.merge([m * colour[0], m * colour[1], m * colour[2]]))
            for o in group:
                o.alpha *= 1.0 - mask[o.box]
            return
        size *= 0.75


def _hide(obj: _Placed, cover: np.ndarray, box: tuple[slice, slice]) -> None:
    """Reduce an object's visible coverage where `cover` (coverage inside `box`) lies over it."""
    ys = slice(max(obj.box[0].start, box[0].start), min(obj.box[0].stop, box[0].stop))
    xs = slice(max(obj.box[1].start, box[1].start), min(obj.box[1].stop, box[1].stop))
    if ys.start < ys.stop and xs.start < xs.stop:
        mine = obj.alpha[
            ys.start - obj.box[0].start : ys.stop - obj.box[0].start,
            xs.start - obj.box[1].start : xs.stop - obj.box[1].start,
        ]
        mine *= (
            1.0
            - cover[ys.start - box[0].start : ys.stop - box[0].start, xs.start - box[1].start : xs.stop - box[1].start]
        )


def _to_image(arr: np.ndarray) -> Image.Image:
    """Float image (0..1) to 8-bit RGB, rounded so the PNG bytes depend only on the seed."""
    return Image.fromarray(np.clip(arr * 255.0 + 0.5, 0, 255).astype(np.uint8), "RGB")


def render_view(
    identity: Identity, rng: np.random.Generator, size: int = 256, nuisances: Nuisances = EASY
) -> Image.Image:
    """One RGB view of the concept on a simple background: random pose (rotation), scale, colour jitter
    (small), optional partial occlusion (a plain bar/blob)."""
    ys = np.linspace(-1, 1, size, dtype=np.float32)[:, None, None]
    img = np.empty((size, size, 3), np.float32)
    img[:] = _neutral(rng, 175, 235, tint=8.0)
    img *= 1.0 + float(rng.uniform(-0.06, 0.06)) * ys
    diameter = float(rng.uniform(0.6, 0.92)) * size
    cx = size / 2 + rng.uniform(-0.5, 0.5) * (size - diameter) / 2
    cy = size / 2 + rng.uniform(-0.5, 0.5) * (size - diameter) / 2
    # Soft floor shadow, so the object sits in the scene rather than floats on it.
    sy, sx = cy + 0.42 * diameter, np.arange(size, dtype=np.float32)
    gx = np.exp(-(((sx - cx) / (0.3 * diameter)) ** 4))
    gy = np.exp(-(((np.arange(size, dtype=np.float32) - sy) / (0.07 * diameter)) ** 2))
    img *= 1.0 - 0.25 * (gy[:, None] * gx[None, :])[..., None]
    obj = _composite(img, identity, rng, cx, cy, diameter, nuisances)
    if rng.random() < nuisances.occlusion:
        _occlude(img, obj, rng, [], nuisances.max_occlusion)
    return _to_image(img)


def _clutter_colour(rng: np.random.Generator) -> tuple[float, ...]:
    """A coloured clutter shape's colour (0..255): any hue, as saturated as a concept's colours can be."""
    r, g, b = colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.35, 0.85), rng.uniform(0.45, 0.92))
    return (r * 255, g * 255, b * 255)


def _clutter(rng: np.random.Generator, w: int, h: int, coloured: float) -> np.ndarray:
    """A busy scene: shaded backdrop, texture, shapes, hatched patches and lines, near-grey except for a share
    `coloured` of the shapes."""
    base = rng.uniform(80, 185)
    low = cv2.resize(rng.normal(0, 22, (6, 8)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    grey = low + np.float32(base)
    tint = rng.uniform(-5, 5, 3).astype(np.float32)
    canvas = cv2.merge([np.clip(grey + t, 0, 255).astype(np.uint8) for t in tint])
    aa, sh = cv2.LINE_AA, 4
    for _ in range(int(rng.integers(18, 34))):
        col = tuple(float(c) for c in _neutral(rng, 25, 235, tint=7.0) * 255)
        if coloured > 0 and rng.random() < coloured:
            col = _clutter_colour(rng)
        kind = rng.random()
        x, y = rng.uniform(-20, w + 20), rng.uniform(-20, h + 20)
        s = rng.uniform(12, 90)
        if kind < 0.25:
            box = cv2.boxPoints(((x, y), (s * rng.uniform(0.5, 2.0), s * rng.uniform(0.3, 1.2)), rng.uniform(0, 180)))
            cv2.fillPoly(canvas, [np.round(box * 16).astype(np.int32)], col, aa, sh)
        elif kind < 0.45:
            cv2.ellipse(
                canvas,
                (_fx(x), _fx(y)),
                (_fx(s * 0.6), _fx(s * rng.uniform(0.3, 0.7))),
                rng.uniform(0, 180),
                0,
                360,
                col,
                -1,
                aa,
                sh,
            )
        elif kind < 0.6:
            k = int(rng.integers(3, 8))
            angs = np.sort(rng.uniform(0, 2 * math.pi, k))
            rads = s * rng.uniform(0.4, 0.8, k)
            pts = [(x + rr * math.cos(t), y + rr * math.sin(t)) for rr, t in zip(rads, angs, strict=True)]
            cv2.fillPoly(canvas, _poly(pts), col, aa, sh)
        elif kind < 0.85:
            x2, y2 = x + rng.uniform(-200, 200), y + rng.uniform(-150, 150)
            cv2.line(canvas, (_fx(x), _fx(y)), (_fx(x2), _fx(y2)), col, int(rng.integers(1, 6)), aa, sh)
        else:  # hatched patch (grey stripes): texture without colour
            pw, ph = int(s * 1.2) + 4, int(s) + 4
            x0, y0 = int(x) - pw // 2, int(y) - ph // 2
            xa, ya, xb, yb = max(0, x0), max(0, y0), min(w, x0 + pw), min(h, y0 + ph)
            if xb > xa and yb > ya:
                yy, xx = np.mgrid[ya:yb, xa:xb]
                ang, per = rng.uniform(0, math.pi), rng.uniform(5, 14)
                band = (np.mod((xx * math.cos(ang) + yy * math.sin(ang)) / per, 1.0) < 0.5)[..., None]
                col2 = _neutral(rng, 25, 235, tint=5.0) * 255
                patch = canvas[ya:yb, xa:xb].astype(np.float32)
                canvas[ya:yb, xa:xb] = np.where(band, np.asarray(col, np.float32), col2 * 0.5 + patch * 0.5).astype(
                    np.uint8
                )
    out = canvas.astype(np.float32)
    noise = rng.standard_normal((h, w), dtype=np.float32) * np.float32(3.0)
    cv2.add(out, cv2.merge([noise] * 3), dst=out)
    out *= np.float32(1 / 255)
    return np.clip(out, 0, 1, out=out)


@dataclass(frozen=True)
class Scene:
    """A rendered query and, per concept shown (decoys excluded), the mask of its visible pixels."""

    image: Image.Image
    visible: list[np.ndarray]


def render_scene(
    identities: list[Identity],
    rng: np.random.Generator,
    size: tuple[int, int] = (512, 384),
    nuisances: Nuisances = EASY,
    decoys: tuple[Identity, ...] = (),
) -> Scene:
    """The query scene: a cluttered background (grey, or partly coloured under harder nuisances, but never
    concept-like shapes) with a NEW view (different pose/scale/lighting, maybe occlusion) of each given
    identity, and of each decoy (a look-alike object that is no concept of the context), composited at
    non-overlapping positions; then the scene's own colour cast."""
    w, h = size
    img = _clutter(rng, w, h, nuisances.coloured_clutter)
    shown = [*identities, *decoys]
    k = len(shown)
    short = min(w, h)
    hi = {1: 0.62, 2: 0.5, 3: 0.44, 4: 0.4}.get(k, 0.36) * short
    diams = [float(rng.uniform(*nuisances.size)) * hi for _ in shown]
    gap = nuisances.gap * short
    centres: list[tuple[float, float]] = []
    for _attempt in range(60):
        centres = []
        for d in diams:
            rr = d / 2
            for _ in range(200):
                c = (float(rng.uniform(rr, w - rr)), float(rng.uniform(rr, h - rr)))
                if all(
                    math.hypot(c[0] - o[0], c[1] - o[1]) >= rr + od / 2 + gap
                    for o, od in zip(centres, diams, strict=False)
                ):
                    centres.append(c)
                    break
            else:
                break
        if len(centres) == k:
            break
        diams = [d * 0.93 for d in diams]
    placed: list[_Placed] = []
    for identity, (cx, cy), d in zip(shown, centres, diams, strict=True):
        obj = _composite(img, identity, rng, cx, cy, d, nuisances)
        if nuisances.gap < 0:  # objects may overlap: the new one hides part of those drawn before
            for other in placed:
                _hide(other, obj.alpha, obj.box)
        placed.append(obj)
    for i, obj in enumerate(placed):
        if rng.random() < nuisances.occlusion:
            _occlude(img, obj, rng, placed[:i] + placed[i + 1 :], nuisances.max_occlusion)
    if nuisances.scene_cast > 0:
        img *= (1.0 + rng.normal(0, nuisances.scene_cast, 3)).astype(np.float32)
    visible = []
    for obj in placed[: len(identities)]:
        mask = np.zeros((h, w), bool)
        mask[obj.box] = obj.alpha > 0.5
        visible.append(mask)
    return Scene(_to_image(np.clip(img, 0, 1)), visible)


def render_query(
    identities: list[Identity],
    rng: np.random.Generator,
    size: tuple[int, int] = (512, 384),
    nuisances: Nuisances = EASY,
    decoys: tuple[Identity, ...] = (),
) -> Image.Image:
    """The query image of `render_scene`."""
    return render_scene(identities, rng, size, nuisances, decoys).image


def blank_image(size: tuple[int, int] = (512, 384)) -> Image.Image:
    """A uniform mid-grey RGB image, used by the 'blind' control in place of the query."""
    return Image.new("RGB", size, (128, 128, 128))
