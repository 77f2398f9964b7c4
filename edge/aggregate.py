"""Per-device, per-window aggregation: Observations in, gateway.wire SightingsBatch out.

Time is an input: windows are aligned to multiples of ``window_s`` of the observations' own
timestamps and closed by :meth:`Aggregator.flush` (``now``), never by reading a clock here. An
observation for a window already flushed is late: counted and dropped (the batch for that window
has its seq already and is on its way).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from edge.observation import Observation
from edge.privacy import OptOutList, Pseudonymizer
from gateway.wire import MAX_PAYLOAD_BYTES, MAX_SIGHTINGS, Sighting, SightingsBatch

log = logging.getLogger(__name__)

RSSI_MIN, RSSI_MAX = -120.0, 0.0  # the wire contract's range (gateway.wire.sightings)


@dataclass(slots=True)
class _Device:
    kind: str
    rssi: list[float] = field(default_factory=list)
    tx: int | None = None
    beacon: str | None = None
    member: str | None = None
    rnd: bool = False
    fp: str | None = None
    seqs: set[int] | None = None


@dataclass
class AggregatorStats:
    observations: int = 0
    late_dropped: int = 0
    opted_out: int = 0
    out_of_range: int = 0
    duplicates: int = 0
    batches: int = 0


class Aggregator:
    """Builds one SightingsBatch per window (more if a window exceeds MAX_SIGHTINGS).

    next_seq: returns the next per-gateway sequence number (persistent: edge.spool.Spool.next_seq).
    beacons: registered beacon ids ("uuid:major:minor"); other beacon frames carry no beacon id.
    """

    def __init__(
        self,
        site: str,
        gw: str,
        pseudonymizer: Pseudonymizer,
        next_seq: Callable[[], int],
        window_s: float = 1.0,
        beacons: Iterable[str] = (),
        opt_out: OptOutList | None = None,
    ) -> None:
        if not 0 < window_s <= 60:
            raise ValueError("window_s must be in (0, 60]")
        self.site, self.gw = site, gw
        self.window_s = float(window_s)
        self._pseudo = pseudonymizer
        self._next_seq = next_seq
        self._beacons = frozenset(b.lower() for b in beacons)
        self._opt_out = opt_out
        self._windows: dict[int, dict[tuple[str, bytes], _Device]] = {}
        self._closed_before = -(2**62)  # windows with index < this are flushed
        self.stats = AggregatorStats()

    def add(self, obs: Observation) -> None:
        self.stats.observations += 1
        idx = math.floor(obs.t / self.window_s)
        if idx < self._closed_before:
            self.stats.late_dropped += 1
            return
        if not RSSI_MIN <= obs.rssi <= RSSI_MAX:
            self.stats.out_of_range += 1
            return
        if self._opt_out is not None and self._opt_out.blocked(obs.addr):
            self.stats.opted_out += 1
            return
        win = self._windows.get(idx)
        if win is None:
            win = self._windows[idx] = {}
        key = (obs.kind, obs.addr)
        dev = win.get(key)
        if dev is None:
            dev = win[key] = _Device(obs.kind)
        if obs.seq is not None:
            # One probe burst is heard on several channels while hopping: same sequence number.
            if dev.seqs is None:
                dev.seqs = set()
            elif obs.seq in dev.seqs:
                self.stats.duplicates += 1
                return
            dev.seqs.add(obs.seq)
        dev.rssi.append(obs.rssi)
        if obs.random_addr:
            dev.rnd = True
        if obs.tx_power is not None:
            dev.tx = obs.tx_power
        if obs.beacon is not None and obs.beacon.lower() in self._beacons:
            dev.beacon = obs.beacon.lower()
        if obs.member_token is not None:
            dev.member = obs.member_token
        if obs.fingerprint is not None:
            dev.fp = obs.fingerprint

    @property
    def open_windows(self) -> int:
        return len(self._windows)

    def flush(self, now: float) -> list[SightingsBatch]:
        """Close every window that ended at or before ``now``; their batches, oldest first."""
        if not math.isfinite(now):
            raise ValueError("now must be finite")
        limit = math.floor(now / self.window_s)  # windows with index < limit have ended
        out: list[SightingsBatch] = []
        for idx in sorted(i for i in self._windows if i < limit):
            out.extend(self._close(idx))
        self._closed_before = max(self._closed_before, limit)
        return out

    def flush_all(self) -> list[SightingsBatch]:
        """Close every open window (at shutdown), oldest first."""
        out: list[SightingsBatch] = []
        for idx in sorted(self._windows):
            out.extend(self._close(idx))
            self._closed_before = max(self._closed_before, idx + 1)
        return out

    def _close(self, idx: int) -> list[SightingsBatch]:
        win = self._windows.pop(idx)
        t0 = idx * self.window_s
        sightings = []
        pseudo = self._pseudo.pseudonym
        for (kind, addr), dev in win.items():
            r = sorted(dev.rssi)
            m = len(r) // 2
            median = r[m] if len(r) % 2 else (r[m - 1] + r[m]) / 2
            sightings.append(Sighting(
                id=pseudo(addr, t0), k=kind, rssi=round(median, 1), n=len(r), tx=dev.tx,
                rnd=dev.rnd, fp=dev.fp, beacon=dev.beacon, member=dev.member,
                sq=_last_seq(dev.seqs),
            ))
        sightings.sort(key=lambda s: (s.k, s.id))
        batches = []
        for chunk in _chunks(sightings):
            batches.append(SightingsBatch(self.site, self.gw, self._next_seq(), round(t0, 3),
                                          self.window_s, chunk))
        self.stats.batches += len(batches)
        return batches


def _last_seq(seqs: set[int] | None) -> int | None:
    """The newest of a window's 802.11 sequence numbers: 12-bit, so the largest signed
    difference from any one of them (a burst spans a few numbers, never half the circle)."""
    if not seqs:
        return None
    s0 = next(iter(seqs))
    return (s0 + max((s - s0 + 2048) % 4096 - 2048 for s in seqs)) % 4096


# Upper bound of one encoded sighting without its optional strings: the longest id/k/rssi/n/tx/rnd
# values with their keys take < 100 bytes; the keys of fp/beacon/member add 30, sq 12.
_SIGHTING_BYTES = 142
_BATCH_BUDGET = MAX_PAYLOAD_BYTES - 512  # header fields


def _chunks(sightings: list[Sighting]) -> list[tuple[Sighting, ...]]:
    """Split so that no batch exceeds MAX_SIGHTINGS nor MAX_PAYLOAD_BYTES once encoded."""
    out: list[tuple[Sighting, ...]] = []
    cur: list[Sighting] = []
    size = 0
    for s in sightings:
        est = _SIGHTING_BYTES + len(s.fp or "") + len(s.beacon or "") + len(s.member or "")
        if cur and (len(cur) >= MAX_SIGHTINGS or size + est > _BATCH_BUDGET):
            out.append(tuple(cur))
            cur, size = [], 0
        cur.append(s)
        size += est
    if cur:
        out.append(tuple(cur))
    return out
