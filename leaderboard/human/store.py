"""The study's SQLite file: what the study is, and every rating, each committed as it is given.

One file per study. It holds the study's definition and fingerprint (`study.py`): opened again with another study
(other runs, items or seed), it refuses, so ratings never get mixed across studies. A rating is one row per rater and
item: the system shown on each side and the side chosen for each criterion (left, right or tie), with the time. It is
committed before the rater sees the next item, so killing the server loses nothing that was answered; the file is
in WAL mode, so the report can read it while raters work. Rating an item again (the browser's back button) replaces
the earlier answer.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from covip.leaderboard.human.study import CHOICES, CRITERIA

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS study (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ratings (
    rater TEXT NOT NULL,
    item TEXT NOT NULL,
    left_system TEXT NOT NULL,
    right_system TEXT NOT NULL,
    {", ".join(f"{c.key} TEXT NOT NULL CHECK ({c.key} IN {CHOICES})" for c in CRITERIA)},
    rated_at TEXT NOT NULL,
    PRIMARY KEY (rater, item)
);
"""


class StudyMismatch(ValueError):
    """The database belongs to another study."""


@dataclass(frozen=True)
class Rating:
    rater: str
    item: str
    left: str  # the system shown on the left
    right: str
    choices: dict[str, str]  # criterion key -> left, tie or right
    rated_at: str = ""

    def winner(self, criterion: str) -> str | None:
        """The system the rater preferred on the criterion (None: a tie)."""
        choice = self.choices[criterion]
        return None if choice == "tie" else self.left if choice == "left" else self.right


class Store:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection for one unit of work (one per request: the server is threaded), committed on success."""
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            with conn:
                yield conn
        finally:
            conn.close()

    def open_study(self, definition: dict[str, Any], fingerprint: str) -> None:
        """Create the file for this study, or check that the file already holds this study."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)
            stored = dict(conn.execute("SELECT key, value FROM study").fetchall())
            if not stored:
                conn.executemany(
                    "INSERT INTO study VALUES (?, ?)",
                    [("fingerprint", fingerprint), ("definition", json.dumps(definition, sort_keys=True))],
                )
            elif stored.get("fingerprint") != fingerprint:
                raise StudyMismatch(
                    f"{self.path} holds another study ({_difference(stored, definition)}): "
                    "start a new study with another --db, or serve the same runs, --items and --seed"
                )

    def definition(self) -> dict[str, Any]:
        with self.connect() as conn:
            row = conn.execute("SELECT value FROM study WHERE key = 'definition'").fetchone()
        if row is None:
            raise StudyMismatch(f"{self.path} holds no study (made by `covip-human serve`?)")
        return json.loads(row[0])

    def save(self, rating: Rating) -> None:
        """Store one rating now (committed when this returns)."""
        keys = [c.key for c in CRITERIA]
        with self.connect() as conn:
            conn.execute(
                f"INSERT OR REPLACE INTO ratings (rater, item, left_system, right_system, {', '.join(keys)}, rated_at) "
                f"VALUES (?, ?, ?, ?, {', '.join('?' for _ in keys)}, ?)",
                (
                    rating.rater,
                    rating.item,
                    rating.left,
                    rating.right,
                    *(rating.choices[k] for k in keys),
                    datetime.now(timezone.utc).isoformat(timespec="seconds"),
                ),
            )

    def ratings(self, rater: str | None = None) -> list[Rating]:
        keys = [c.key for c in CRITERIA]
        query = f"SELECT rater, item, left_system, right_system, {', '.join(keys)}, rated_at FROM ratings"
        with self.connect() as conn:
            rows = conn.execute(
                query + (" WHERE rater = ?" if rater else "") + " ORDER BY rated_at, rowid", (rater,) if rater else ()
            ).fetchall()
        return [Rating(r[0], r[1], r[2], r[3], dict(zip(keys, r[4:-1], strict=True)), r[-1]) for r in rows]


def _difference(stored: dict[str, str], definition: dict[str, Any]) -> str:
    """What differs between the stored study and this one, in words."""
    old = json.loads(stored.get("definition", "{}"))
    if [s["label"] for s in old.get("systems", [])] != [s["label"] for s in definition["systems"]]:
        return "other systems"
    if old.get("seed") != definition["seed"]:
        return f"seed {old.get('seed')}, not {definition['seed']}"
    if len(old.get("items", [])) != len(definition["items"]):
        return f"{len(old.get('items', []))} items, not {len(definition['items'])}"
    return "other items or captions"
