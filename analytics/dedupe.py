"""Idempotent ingest: drop redelivered and replayed batches by (gateway, seq).

Per gateway we keep the set of seen sequence numbers as sorted, disjoint, inclusive ranges
``[lo, hi]``. In-order delivery keeps one range per gateway (the high-water mark is its ``hi``);
reordering and spool replays open gaps that close when the missing batches arrive. A spool
replayed an hour late (3,600 one-second batches) is thus handled exactly, unlike a fixed-size
recent-seq window.

Bounded: at most ``max_ranges`` ranges per gateway. When a gateway exceeds it, the oldest gap is
closed (its batches are treated as seen): we prefer dropping a batch that never arrives after
``max_ranges`` newer gaps to unbounded memory; the count is exposed as ``forced_closed``.

A gateway whose seq falls far below everything seen while its window time moves forward has
restarted without its persisted counter (``restart_gap``): its ranges are reset and a
``restarts`` counter is raised, rather than dropping all its data as duplicates.
"""
from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class _Gw:
    los: list[int] = field(default_factory=list)
    his: list[int] = field(default_factory=list)
    t_at_hi: float = float("-inf")


class SeqDedupe:
    def __init__(self, max_ranges: int = 4096, restart_gap: int = 1_000_000) -> None:
        if max_ranges < 1:
            raise ValueError("max_ranges must be >= 1")
        self.max_ranges = max_ranges
        self.restart_gap = restart_gap
        self._gws: dict[str, _Gw] = {}
        self.duplicates = 0
        self.forced_closed = 0
        self.restarts = 0

    def high_water(self, gw: str) -> int | None:
        g = self._gws.get(gw)
        return g.his[-1] if g and g.his else None

    def ranges(self, gw: str) -> list[tuple[int, int]]:
        g = self._gws.get(gw)
        return list(zip(g.los, g.his)) if g else []

    def seen(self, gw: str, seq: int) -> bool:
        g = self._gws.get(gw)
        if not g or not g.los:
            return False
        i = bisect.bisect_right(g.los, seq) - 1
        return i >= 0 and seq <= g.his[i]

    def accept(self, gw: str, seq: int, t: float | None = None) -> bool:
        """True the first time (gw, seq) is offered; False for a duplicate."""
        g = self._gws.setdefault(gw, _Gw())
        if g.his and t is not None and seq + self.restart_gap < g.los[0] and t > g.t_at_hi:
            log.warning("gateway %s restarted its seq (%d after %d); resetting dedupe state",
                        gw, seq, g.his[-1])
            g.los.clear()
            g.his.clear()
            self.restarts += 1
        los, his = g.los, g.his
        i = bisect.bisect_right(los, seq) - 1
        if i >= 0 and seq <= his[i]:
            self.duplicates += 1
            return False
        joins_left = i >= 0 and his[i] == seq - 1
        joins_right = i + 1 < len(los) and los[i + 1] == seq + 1
        if joins_left and joins_right:
            his[i] = his[i + 1]
            del los[i + 1], his[i + 1]
        elif joins_left:
            his[i] = seq
        elif joins_right:
            los[i + 1] = seq
        else:
            los.insert(i + 1, seq)
            his.insert(i + 1, seq)
            if len(los) > self.max_ranges:
                # Close the oldest gap: merge the first two ranges.
                self.forced_closed += los[1] - his[0] - 1
                his[0] = his[1]
                del los[1], his[1]
        if seq == his[-1] and t is not None:
            g.t_at_hi = t
        return True
