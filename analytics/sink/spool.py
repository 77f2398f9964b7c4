"""A durable FIFO of line-protocol batches in SQLite (WAL), for database outages.

A batch is the unit: it is appended whole, read oldest first and deleted only after the
server accepted it, so a crash between the two replays the batch (writes of the same series
and timestamp overwrite in InfluxDB, so a replay is idempotent). Batches the server refused
outright (4xx) move to a ``rejected`` table for an operator, never silently dropped.
"""
from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    precision TEXT NOT NULL,
    n_lines INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS rejected (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    precision TEXT NOT NULL,
    status INTEGER,
    reason TEXT NOT NULL,
    body BLOB NOT NULL
);
"""


class Spool:
    """SQLite-backed spool. ``path=":memory:"`` gives a non-durable one for tests of logic."""

    def __init__(self, path: str | Path, max_bytes: int = 2 * 1024**3) -> None:
        self.path = str(path)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a batch acknowledged as spooled survives power loss, which is the whole point.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def append(self, body: bytes, precision: str, n_lines: int, now: float) -> int:
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO batches (created, precision, n_lines, body) VALUES (?, ?, ?, ?)",
                (now, precision, n_lines, body))
            return int(cur.lastrowid)

    def peek(self, limit: int = 1) -> list[tuple[int, str, int, bytes]]:
        """Oldest batches: (id, precision, n_lines, body)."""
        with self._lock:
            return list(self._db.execute(
                "SELECT id, precision, n_lines, body FROM batches ORDER BY id LIMIT ?", (limit,)))

    def delete(self, batch_id: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM batches WHERE id = ?", (batch_id,))

    def reject(self, batch_id: int | None, body: bytes, precision: str, status: int | None,
               reason: str, now: float) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT INTO rejected (created, precision, status, reason, body) VALUES (?,?,?,?,?)",
                (now, precision, status, reason, body))
            if batch_id is not None:
                self._db.execute("DELETE FROM batches WHERE id = ?", (batch_id,))
            self._db.execute("COMMIT")

    def depth(self) -> tuple[int, int]:
        """(batches, lines) waiting."""
        with self._lock:
            n, lines = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(n_lines), 0) FROM batches").fetchone()
            return int(n), int(lines)

    def rejected_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM rejected").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
