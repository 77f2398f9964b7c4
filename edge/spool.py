"""The durability boundary: every batch stays on disk until the broker acknowledged it.

SQLite in WAL mode with synchronous=FULL: a committed batch survives SIGKILL and power loss.
Rows are deleted only on PUBACK (``ack``). The spool is bounded in bytes; when full, the oldest
batches are dropped and counted (``dropped``, reported in the status heartbeat), because recent
data is worth more to a live dashboard and the gateway must keep running.

The per-gateway ``seq`` lives here too. ``next_seq`` hands out numbers from memory and ``put``
persists the counter in the same transaction as the batch, so a number is only ever reused if
the process died before anything carrying it was stored (and therefore before it was sent).
Thread-safe: the agent puts, the publisher thread reads and acks.
"""
from __future__ import annotations

import logging
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 64 * 1024 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY,   -- per-gateway sequence number, also the send order
    topic TEXT NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class Spooled:
    seq: int
    topic: str
    payload: bytes


class Spool:
    def __init__(self, path: str | Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes < 1024:
            raise ValueError("max_bytes must be >= 1024")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        row = self._db.execute(
            "SELECT COALESCE(MAX(seq) + 1, 0), COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) "
            "FROM batches").fetchone()
        stored_next = self._meta("next_seq")
        self._next_seq = max(row[0], stored_next)
        self._depth, self._bytes = row[1], row[2]
        self._newest = row[0] - 1
        self.dropped = self._meta("dropped")
        log.info("spool %s: %d batches waiting, next seq %d", self.path, self._depth,
                 self._next_seq)

    def _meta(self, key: str) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def next_seq(self) -> int:
        with self._lock:
            seq = self._next_seq
            self._next_seq += 1
            return seq

    @property
    def newest_seq(self) -> int:
        """Highest seq ever stored (-1: none): lets a reader skip a query when nothing is new."""
        return self._newest

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def put(self, seq: int, topic: str, payload: bytes) -> int:
        """Store one batch durably; returns how many old batches were dropped to make room."""
        return self.put_many([(seq, topic, payload)])

    def put_many(self, items: list[tuple[int, str, bytes]]) -> int:
        """Store batches durably in one transaction (one fsync); returns how many old batches
        were dropped to make room."""
        if not items:
            return 0
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                depth, size = self._depth, self._bytes
                for seq, topic, payload in items:
                    db.execute("INSERT INTO batches (seq, topic, payload) VALUES (?, ?, ?)",
                               (seq, topic, payload))
                    depth, size = depth + 1, size + len(payload)
                db.execute("INSERT INTO meta VALUES ('next_seq', ?) ON CONFLICT(key) DO UPDATE "
                           "SET value = MAX(value, excluded.value)",
                           (max(i[0] for i in items) + 1,))
                dropped = 0
                while size > self.max_bytes and depth > 1:
                    old = db.execute("SELECT seq, LENGTH(payload) FROM batches ORDER BY seq "
                                     "LIMIT 1").fetchone()
                    db.execute("DELETE FROM batches WHERE seq = ?", (old[0],))
                    depth, size, dropped = depth - 1, size - old[1], dropped + 1
                if dropped:
                    db.execute("INSERT INTO meta VALUES ('dropped', ?) ON CONFLICT(key) DO "
                               "UPDATE SET value = value + excluded.value", (dropped,))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self._depth, self._bytes = depth, size
            self._newest = max(self._newest, max(i[0] for i in items))
            if dropped:
                self.dropped += dropped
                log.warning("spool full (%d bytes): dropped %d oldest batches", self.max_bytes,
                            dropped)
            return dropped

    def pending(self, after_seq: int = -1, limit: int = 100) -> list[Spooled]:
        """Unacknowledged batches with seq > after_seq, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, topic, payload FROM batches WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit)).fetchall()
        return [Spooled(r[0], r[1], bytes(r[2])) for r in rows]

    def ack(self, seq: int) -> None:
        """The broker acknowledged batch ``seq``: forget it."""
        self.ack_many((seq,))

    def ack_many(self, seqs) -> None:
        """Forget several acknowledged batches in one transaction (one fsync, not one each)."""
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                for seq in seqs:
                    row = db.execute("DELETE FROM batches WHERE seq = ? RETURNING "
                                     "LENGTH(payload)", (seq,)).fetchone()
                    if row is not None:
                        self._depth -= 1
                        self._bytes -= row[0]
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._db.close()
