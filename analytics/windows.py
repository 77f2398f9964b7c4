"""Event-time windows over gateway batches, closed by a watermark.

Every batch carries its window start ``t`` (event time, the gateway's clock), never the time it
arrived. Batches of the same window from all gateways are grouped; a window closes once the
watermark ``max seen t - lateness_s`` has passed it, and windows close in time order.

Late data: a batch whose window has already closed (a gateway's spool replayed after an
outage) is not dropped. Late batches are grouped into *late windows* by their own event time
and closed by the late stream's own watermark (max late t - lateness_s), so a replayed hour is
processed in its own time order. The pipeline downstream treats a late window as evidence for
its devices at that event time (see ``analytics.devices``): presence, first/last seen and the
sightings counters count it once (dedupe by (gw, seq) happens before this), journeys already
past that time are not rewound.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class Window:
    t: float                      # window start, unix s (event time)
    window_s: float
    parts: list = field(default_factory=list)   # SightingArrays, one per gateway batch
    late: bool = False

    @property
    def n_sightings(self) -> int:
        return sum(len(p) for p in self.parts)


class WindowAssembler:
    def __init__(self, window_s: float = 1.0, lateness_s: float = 3.0, max_open: int = 100_000) -> None:
        if window_s <= 0 or lateness_s < 0:
            raise ValueError("window_s must be > 0 and lateness_s >= 0")
        self.window_s = window_s
        self.lateness_s = lateness_s
        self.max_open = max_open
        self._open: dict[int, Window] = {}
        self._late: dict[int, Window] = {}
        self.max_t = float("-inf")
        self.max_late_t = float("-inf")
        self.closed_key = None        # highest key closed on the live path
        self.late_batches = 0

    def _key(self, t: float) -> int:
        return int(round(t / self.window_s))

    def add(self, part) -> bool:
        """Add one decoded batch (anything with .t, .window_s). Returns True if it is late."""
        key = self._key(part.t)
        if self.closed_key is not None and key <= self.closed_key:
            w = self._late.get(key)
            if w is None:
                w = self._late[key] = Window(key * self.window_s, part.window_s, late=True)
            w.parts.append(part)
            self.late_batches += 1
            self.max_late_t = max(self.max_late_t, part.t)
            return True
        w = self._open.get(key)
        if w is None:
            w = self._open[key] = Window(key * self.window_s, part.window_s)
        w.parts.append(part)
        self.max_t = max(self.max_t, part.t)
        return False

    @property
    def watermark(self) -> float:
        return self.max_t - self.lateness_s

    def close_ready(self) -> list[Window]:
        """Windows the watermark has passed, live ones then late ones, each in time order."""
        out = self._close(self._open, self.watermark, live=True)
        out += self._close(self._late, self.max_late_t - self.lateness_s, live=False)
        # Never hold more than max_open windows (a gateway with a clock far in the future).
        while len(self._open) > self.max_open:
            out += self._close(self._open, min(self._open) * self.window_s, live=True)
        return out

    def close_all(self) -> list[Window]:
        return (self._close(self._open, float("inf"), live=True)
                + self._close(self._late, float("inf"), live=False))

    def _close(self, table: dict[int, Window], until_t: float, live: bool) -> list[Window]:
        keys = sorted(k for k in table if k * self.window_s <= until_t)
        out = [table.pop(k) for k in keys]
        for w in out:
            # Order-independent assembly: the matrix rows (devices in first-seen order) and the
            # last-wins fp/member fields must not depend on the order batches arrived in.
            w.parts.sort(key=lambda p: (str(getattr(p, "gw", "")), getattr(p, "seq", 0)))
        if live and keys:
            self.closed_key = max(keys[-1], self.closed_key if self.closed_key is not None else keys[-1])
        return out
