"""Inline SVG charts for the static site: no plotting library, no script, nothing fetched.

Two charts: recognition F1 against Acc+ per sample with each model's fitted line where the data support one
(the paper's Figure 5), and a score against the number of positive concepts (buckets 1–4). Every label that
comes from a submission is escaped here, since SVG inlined in HTML is parsed as markup.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape

PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#7f7f7f")
WIDTH, HEIGHT = 640, 360
LEFT, RIGHT, TOP, BOTTOM = 56, 200, 16, 48


@dataclass
class Series:
    """One model on a chart: its label, colour, points and, for the scatter, its fitted line."""

    label: str
    color: str
    points: list[tuple[float, float]] = field(default_factory=list)
    line: tuple[float, float] | None = None  # (slope, intercept)
    errors: list[tuple[float, float, float]] = field(default_factory=list)  # (x, low, high)
    dashed: bool = False


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _frame(title: str, x_label: str, y_label: str, xs: list[tuple[float, str]], ys: list[tuple[float, str]], sx, sy):
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>',
        f'<rect x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" height="{HEIGHT - TOP - BOTTOM}" '
        'fill="#ffffff" stroke="#888888"/>',
    ]
    for value, text in xs:
        x = sx(value)
        parts.append(f'<line x1="{x:.1f}" y1="{HEIGHT - BOTTOM}" x2="{x:.1f}" y2="{TOP}" stroke="#eeeeee"/>')
        parts.append(f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" font-size="12">{text}</text>')
    for value, text in ys:
        y = sy(value)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#eeeeee"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="12">{text}</text>')
    mid_x = (LEFT + WIDTH - RIGHT) / 2
    parts.append(
        f'<text x="{mid_x:.1f}" y="{HEIGHT - 10}" text-anchor="middle" font-size="13">{escape(x_label)}</text>'
    )
    mid_y = (TOP + HEIGHT - BOTTOM) / 2
    parts.append(
        f'<text x="14" y="{mid_y:.1f}" text-anchor="middle" font-size="13" '
        f'transform="rotate(-90 14 {mid_y:.1f})">{escape(y_label)}</text>'
    )
    return parts


def _legend(series: list[Series]) -> list[str]:
    parts = []
    for i, s in enumerate(series):
        y = TOP + 14 + 18 * i
        x = WIDTH - RIGHT + 12
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        parts.append(
            f'<line x1="{x}" y1="{y - 4}" x2="{x + 18}" y2="{y - 4}" stroke="{s.color}" stroke-width="2"{dash}/>'
        )
        label = s.label if len(s.label) <= 26 else s.label[:25] + "…"
        parts.append(
            f'<text x="{x + 24}" y="{y}" font-size="12"><title>{escape(s.label)}</title>{escape(label)}</text>'
        )
    return parts


def _scales(x0: float, x1: float, y0: float, y1: float):
    def sx(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * (WIDTH - LEFT - RIGHT)

    def sy(y: float) -> float:
        return HEIGHT - BOTTOM - (y - y0) / (y1 - y0) * (HEIGHT - TOP - BOTTOM)

    return sx, sy


def scatter(series: list[Series], title: str) -> str:
    """Per-sample (recognition F1, Acc+) points, and each series' OLS line (when it has one) over its own F1 range."""
    sx, sy = _scales(0.0, 1.0, 0.0, 1.0)
    ticks = [(t / 4, f"{t / 4:.2f}") for t in range(5)]
    parts = _frame(title, "recognition F1 (per sample)", "Acc+ (per sample)", ticks, ticks, sx, sy)
    for s in series:
        for x, y in s.points:
            parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{s.color}" fill-opacity="0.35"/>')
        if s.line and s.points:
            lo, hi = min(p[0] for p in s.points), max(p[0] for p in s.points)
            m, b = s.line
            parts.append(
                f'<line class="fit" x1="{sx(lo):.1f}" y1="{sy(m * lo + b):.1f}" x2="{sx(hi):.1f}" '
                f'y2="{sy(m * hi + b):.1f}" '
                f'stroke="{s.color}" stroke-width="2.5"><title>{escape(s.label)}: slope {m:.2f}</title></line>'
            )
    parts += _legend(series)
    parts.append("</svg>")
    return "".join(parts)


def by_concepts(series: list[Series], title: str, y_label: str) -> str:
    """A score (0–100) per number of positive concepts, one line per model, with 95% interval whiskers."""
    sx, sy = _scales(0.5, 4.5, 0.0, 100.0)
    xs = [(b, str(b)) for b in range(1, 5)]
    ys = [(v, str(v)) for v in range(0, 101, 20)]
    parts = _frame(title, "positive concepts in the query image", y_label, xs, ys, sx, sy)
    for s in series:
        pts = [(x, y) for x, y in s.points if math.isfinite(y)]
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        if len(pts) > 1:
            coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
            parts.append(f'<polyline points="{coords}" fill="none" stroke="{s.color}" stroke-width="2"{dash}/>')
        for x, lo, hi in s.errors:
            if math.isfinite(lo) and math.isfinite(hi):
                parts.append(
                    f'<line x1="{sx(x):.1f}" y1="{sy(lo):.1f}" x2="{sx(x):.1f}" y2="{sy(hi):.1f}" stroke="{s.color}"/>'
                )
        for x, y in pts:
            parts.append(
                f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3.5" fill="{s.color}">'
                f"<title>{escape(s.label)}: {x}c {y:.1f}</title></circle>"
            )
    parts += _legend(series)
    parts.append("</svg>")
    return "".join(parts)
