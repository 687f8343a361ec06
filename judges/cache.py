"""A persistent cache of judge answers: re-running an evaluation costs no calls, a killed run resumes.

SQLite in WAL mode (readers never block the writer; a crash never corrupts committed rows).
A row is one judge answer, keyed by everything that determines it: backend, model, where it
runs (server URL, or the checkpoint's resolved path), decoding parameters, preset, prompt hash
and the full prompt text. Each answer is committed as soon as it arrives, so a run killed
halfway keeps every answer it paid for. Only answers are stored: a failed call is never
cached, so it is retried next time. The model adapters keep their paid API answers in a cache of
their own with the same class (`covip.model_adapters.api`).

The same file records the provider batch jobs still running for it (`openai_batch.py`): a batch
id is stored the moment the batch is created and forgotten once its answers are stored, so a
process killed while waiting resumes polling the same batch instead of paying for a second one.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

ENV_CACHE = "COVIP_JUDGE_CACHE"
ENV_HOME = "COVIP_HOME"
_DISABLED = ("", "off", "none", "false", "0")


def covip_home() -> Path:
    """`$COVIP_HOME`, else ~/.cache/covip: where caches live by default."""
    return Path(os.environ.get(ENV_HOME) or Path.home() / ".cache" / "covip").expanduser()


def default_cache_path() -> Path:
    """`$COVIP_JUDGE_CACHE`, else `$COVIP_HOME/judge_cache.sqlite` (COVIP_HOME defaults to ~/.cache/covip)."""
    explicit = os.environ.get(ENV_CACHE)
    if explicit is not None:
        return Path(explicit).expanduser()
    return covip_home() / "judge_cache.sqlite"


def cache_disabled(value: Any) -> bool:
    """True for an option or env value that turns caching off (`off`, `none`, `false`, empty)."""
    return value is False or (isinstance(value, str) and value.strip().lower() in _DISABLED)


def cache_key(identity: dict[str, Any], prompt: str) -> str:
    """sha256 of the judge identity (backend, model, endpoint, decoding, preset, prompt hash) and the prompt."""
    blob = json.dumps({"judge": identity, "prompt": prompt}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class JudgeCache:
    """Key -> answer text, one SQLite file shared safely by concurrent runs."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, judge TEXT NOT NULL, answer TEXT NOT NULL, "
            "created REAL NOT NULL)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS batches (batch_id TEXT PRIMARY KEY, endpoint TEXT NOT NULL, "
            "keys TEXT NOT NULL, created REAL NOT NULL)"
        )

    def get_many(self, keys: list[str]) -> dict[str, str]:
        """The cached answers among `keys`."""
        found: dict[str, str] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                found.update(self._db.execute(f"SELECT key, answer FROM answers WHERE key IN ({marks})", chunk))
        return found

    def put(self, key: str, judge: str, answer: str) -> None:
        """Store one answer, committed at once (autocommit), so a kill right after keeps it."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO answers (key, judge, answer, created) VALUES (?, ?, ?, ?)",
                (key, judge, answer, time.time()),
            )

    def add_batch(self, batch_id: str, endpoint: str, keys: list[str]) -> None:
        """Record a batch job just created on `endpoint` for the answers of `keys` (committed at once)."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO batches (batch_id, endpoint, keys, created) VALUES (?, ?, ?, ?)",
                (batch_id, endpoint, json.dumps(keys), time.time()),
            )

    def pending_batches(self, endpoint: str) -> dict[str, list[str]]:
        """Batch id -> answer keys of the jobs created on `endpoint` whose answers are not stored yet."""
        with self._lock:
            rows = self._db.execute(
                "SELECT batch_id, keys FROM batches WHERE endpoint = ? ORDER BY created", (endpoint,)
            ).fetchall()
        return {batch_id: json.loads(keys) for batch_id, keys in rows}

    def forget_batch(self, batch_id: str) -> None:
        """The batch's answers are stored (or it can never deliver them): stop tracking it."""
        with self._lock:
            self._db.execute("DELETE FROM batches WHERE batch_id = ?", (batch_id,))

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
