"""The shell every page of the site shares, and the Jinja2 templates of its newer pages.

Self-contained on purpose: a page opens from disk or any static host and fetches nothing outside the site (a
Content-Security-Policy meta tag forbids it); the stylesheet and the small script are the site's own files. Text
from a submission is escaped: by `e()` in the pages written in Python, by Jinja2's autoescape in the templates
(`templates/`), which render a page's body for `page()` to wrap.
"""

from __future__ import annotations

import math
from functools import cache
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'"
MINUS = "−"
ASSETS = ("leaderboard.js", "leaderboard.css")


def e(value: Any) -> str:
    """Escape anything for HTML text or a quoted attribute."""
    return escape(str(value), quote=True)


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def fmt(value: Any, digits: int = 1) -> str:
    return f"{value:.{digits}f}" if finite(value) else "–"


def sort_value(value: Any) -> str:
    """What a sortable table sorts a numeric cell on (its `data-v`): empty for a missing value."""
    return f"{value:.6g}" if finite(value) else ""


def signed(value: Any, digits: int = 1) -> str:
    """A difference with its sign (a true minus sign); '–' when undefined."""
    if not finite(value):
        return "–"
    text = f"{abs(value):.{digits}f}"
    if float(text) == 0:
        return text
    return ("+" if value > 0 else MINUS) + text


def interval(ci: Any, digits: int = 1, sign: bool = False) -> str:
    """'[low, high]', or '' when there is no interval."""
    if not ci or not all(finite(v) for v in ci):
        return ""
    show = signed if sign else fmt
    return f"[{show(ci[0], digits)}, {show(ci[1], digits)}]"


def pvalue(p: Any) -> str:
    """'p = 0.034', 'p < 0.001', 'p = 1'."""
    if not finite(p):
        return "p –"
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}".rstrip("0").rstrip(".") if p < 1 else "p = 1"


def short_path(path: str) -> str:
    """The last two parts of a path (the whole path goes in the element's title and the JSON)."""
    parts = Path(path).parts
    return str(Path(*parts[-2:])) if len(parts) > 2 else path


def page(title: str, body: str, depth: int) -> str:
    """A whole page: `body` (already escaped HTML) in the shell, with asset links `depth` folders up."""
    up = "../" * depth
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{e(title)}</title>\n"
        f'<link rel="stylesheet" href="{up}assets/leaderboard.css">\n'
        f'<script src="{up}assets/leaderboard.js" defer></script>\n'
        f"</head><body>\n{body}\n</body></html>\n"
    )


@cache
def templates() -> Environment:
    env = Environment(
        loader=PackageLoader("covip.leaderboard", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        fmt=fmt, signed=signed, interval=interval, pvalue=pvalue, short_path=short_path, sort_value=sort_value
    )
    return env


def render(template: str, **context: Any) -> str:
    """A template rendered with autoescape (for `page()` to wrap, or to include in a page written in Python)."""
    return templates().get_template(template).render(**context)


def write_assets(folder: Path) -> None:
    """The site's stylesheet and script, into `folder`/assets."""
    (folder / "assets").mkdir(parents=True, exist_ok=True)
    static = resources.files("covip.leaderboard").joinpath("static")
    for name in ASSETS:
        (folder / "assets" / name).write_text(static.joinpath(name).read_text("utf-8"), encoding="utf-8")


def json_safe(value: Any) -> Any:
    """NaN and infinity become null: JSON has neither."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
