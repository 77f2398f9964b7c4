"""Our own durable, batching writer to InfluxDB (see STYLE.md: we own the durability boundary).

States (an explicit reconnect state machine, capped exponential backoff):

- ``UP``: full batches are sent at once; a transient failure is retried a few times with
  capped backoff, then the batch goes to the spool and the sink goes ``DOWN``.
- ``DOWN``: batches go straight to the spool until ``retry_at``; then one attempt drains the
  spool oldest first; success brings the sink ``UP``, failure doubles the delay (capped).

A refused batch (4xx other than 429: bad data) is moved to the spool's ``rejected`` table
and logged at ERROR; it is never retried forever nor silently dropped.

``flush()`` returns only when everything written so far is either accepted by the server or
committed to the spool (SQLite, synchronous=FULL).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from analytics.errors import SinkError
from analytics.sink.lineprotocol import Point, encode_point
from analytics.sink.spool import Spool
from analytics.sink.transports import Transport

log = logging.getLogger(__name__)

UP = "up"
DOWN = "down"


@dataclass(frozen=True)
class FlushResult:
    sent_lines: int      # accepted by the server during this flush
    spooled_lines: int   # lines still waiting in the spool after this flush
    rejected_batches: int


class InfluxSink:
    def __init__(self, transport: Transport, spool: Spool | str | Path = ":memory:", *,
                 precision: str = "s", batch_lines: int = 5000, max_attempts: int = 3,
                 backoff_s: float = 0.25, backoff_cap_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if batch_lines < 1:
            raise ValueError("batch_lines must be >= 1")
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.transport = transport
        self.spool = spool if isinstance(spool, Spool) else Spool(spool)
        self.precision = precision
        self.batch_lines = batch_lines
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.backoff_cap_s = backoff_cap_s
        self._clock, self._wall, self._sleep = clock, wall, sleep
        self._buf: list[str] = []
        self._lock = threading.RLock()
        self.state = UP
        self._delay = backoff_s
        self._retry_at = 0.0
        self._failures_in_cycle = 0
        self.sent_lines = 0
        self.rejected_batches = 0
        # Anything left from a previous run is sent before new data once the server answers.
        if self.spool.depth()[0]:
            log.info("spool %s holds %d batches from before; will replay", self.spool.path,
                     self.spool.depth()[0])

    # -- writing ---------------------------------------------------------------------------
    def write(self, points: Iterable[Point]) -> None:
        self.write_lines(encode_point(p, self.precision) for p in points)

    def write_lines(self, lines: Iterable[str]) -> None:
        with self._lock:
            for line in lines:
                self._buf.append(line)
                if len(self._buf) >= self.batch_lines:
                    self._ship(self._take())

    def pending(self) -> int:
        with self._lock:
            return len(self._buf)

    def _take(self) -> list[str]:
        batch, self._buf = self._buf, []
        return batch

    def _ship(self, lines: list[str]) -> None:
        if not lines:
            return
        body = ("\n".join(lines) + "\n").encode("utf-8")
        if self.state == DOWN or self.spool.depth()[0]:
            # Keep order with the backlog and do not hammer a server we know is down.
            self.spool.append(body, self.precision, len(lines), self._wall())
            self._maybe_drain()
            return
        self._send_with_retries(body, len(lines))

    def _send_with_retries(self, body: bytes, n_lines: int) -> None:
        delay = self.backoff_s
        for attempt in range(1, self.max_attempts + 1):
            try:
                self.transport.send(body, self.precision)
            except SinkError as exc:
                if not exc.transient:
                    self._reject(None, body, exc)
                    return
                self._note_failure(exc)
                if attempt < self.max_attempts:
                    self._sleep(delay)
                    delay = min(delay * 2, self.backoff_cap_s)
                    continue
                self.spool.append(body, self.precision, n_lines, self._wall())
                self._go_down()
                return
            self._went_up()
            self.sent_lines += n_lines
            return

    def _reject(self, batch_id: int | None, body: bytes, exc: SinkError) -> None:
        log.error("InfluxDB refused a batch (%s); kept in %s table 'rejected'", exc, self.spool.path)
        self.spool.reject(batch_id, body, self.precision, exc.status, exc.why, self._wall())
        self.rejected_batches += 1

    # -- state machine ---------------------------------------------------------------------
    def _note_failure(self, exc: SinkError) -> None:
        self._failures_in_cycle += 1
        if self._failures_in_cycle == 1:
            log.warning("InfluxDB write failed via %s: %s; retrying with backoff, spooling meanwhile",
                        self.transport.name, exc)
        else:
            log.debug("InfluxDB write failed again (%d): %s", self._failures_in_cycle, exc)

    def _go_down(self) -> None:
        if self.state == UP:
            self._delay = self.backoff_s
        else:
            self._delay = min(self._delay * 2, self.backoff_cap_s)
        self.state = DOWN
        self._retry_at = self._clock() + self._delay

    def _went_up(self) -> None:
        if self.state == DOWN or self._failures_in_cycle:
            log.warning("InfluxDB writes succeed again after %d failures", self._failures_in_cycle)
        self.state = UP
        self._failures_in_cycle = 0
        self._delay = self.backoff_s

    def _maybe_drain(self) -> None:
        if self.state == DOWN and self._clock() < self._retry_at:
            return
        self.drain()

    def drain(self, max_batches: int | None = None) -> int:
        """Send spooled batches oldest first until the spool is empty or a send fails.

        Returns the number of lines accepted. Does not sleep: on failure the sink goes (or
        stays) ``DOWN`` and the next attempt waits for ``retry_at``.
        """
        sent = 0
        done = 0
        with self._lock:
            while max_batches is None or done < max_batches:
                rows = self.spool.peek(1)
                if not rows:
                    break
                batch_id, precision, n_lines, body = rows[0]
                try:
                    self.transport.send(body, precision)
                except SinkError as exc:
                    if not exc.transient:
                        self._reject(batch_id, body, exc)
                        continue
                    self._note_failure(exc)
                    self._go_down()
                    break
                self.spool.delete(batch_id)
                self._went_up()
                sent += n_lines
                done += 1
            self.sent_lines += sent
        return sent

    # -- durability boundary ---------------------------------------------------------------
    def flush(self) -> FlushResult:
        """Send or spool everything buffered; then try to drain the spool once.

        On return every line written before the call is accepted by the server or committed to
        the spool. Raises nothing for outages (that is what the spool is for).
        """
        with self._lock:
            before = self.sent_lines
            self._ship(self._take())
            if self.spool.depth()[0]:
                self._maybe_drain()
            return FlushResult(self.sent_lines - before, self.spool.depth()[1],
                               self.rejected_batches)

    def close(self) -> FlushResult:
        res = self.flush()
        self.transport.close()
        self.spool.close()
        return res
