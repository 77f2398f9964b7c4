"""Event-time windows over gateway batches, closed by a watermark.

Every batch carries its window start ``t`` (event time, the gateway's clock), never the time it
arrived. Batches of the same window from all gateways are grouped; a window closes once the
watermark has passed it, and windows close in time order.

Clock skew: each gateway's clock offset is estimated from its batches' ``t`` against the median
of the other active gateways' latest (corrected) ``t`` at its arrival, as the median of the last
``skew_samples`` differences. When that estimate is consistent (median absolute deviation within
within about two windows, an outlier each side ignored) and exceeds ``skew_tolerance_s``, the gateway's batch times are corrected by it
(rounded to whole windows); ``offset_estimate(gw)`` reports it. A spool replay (event times
racing forward faster than the other gateways') is not consistent and is never "corrected".

Watermark: the median of the active gateways' latest corrected ``t`` (active: heard within the
last ``max(16, 2 x gateways)`` batches) minus ``lateness_s``, never moving backwards, so one
runaway clock can neither close everybody's windows early nor hold them open.

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
from collections import deque
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class Window:
    t: float                      # window start, unix s (event time)
    window_s: float
    parts: list = field(default_factory=list)   # SightingArrays, one per gateway batch
    late: bool = False
    closed: bool = False          # set when the assembler hands it out

    @property
    def n_sightings(self) -> int:
        return sum(len(p) for p in self.parts)


class _Clock:
    """One gateway's clock: recent offset samples, the applied correction, when last heard."""
    __slots__ = ("samples", "estimate", "correction", "latest", "heard", "decided", "held")

    def __init__(self, n: int) -> None:
        self.samples: deque = deque(maxlen=n)
        self.estimate: float | None = None
        self.correction = 0.0
        self.latest = float("-inf")       # newest corrected t
        self.heard = 0                    # arrival index of its last batch
        self.decided = False              # enough samples seen to judge its clock once
        self.held: list | None = None     # batches held until its clock is judged


class Held:
    """Where a batch held back for a clock judgement ended up: ``closed`` once that window is."""
    __slots__ = ("window",)

    def __init__(self) -> None:
        self.window: Window | None = None

    @property
    def closed(self) -> bool:
        return self.window is not None and self.window.closed


def _median(xs) -> float:
    v = sorted(xs)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


class WindowAssembler:
    def __init__(self, window_s: float = 1.0, lateness_s: float = 3.0, max_open: int = 100_000,
                 *, skew_tolerance_s: float = 2.0, skew_samples: int = 9, min_peers: int = 3) -> None:
        if window_s <= 0 or lateness_s < 0:
            raise ValueError("window_s must be > 0 and lateness_s >= 0")
        self.window_s = window_s
        self.lateness_s = lateness_s
        self.max_open = max_open
        self.skew_tolerance_s = skew_tolerance_s
        self.skew_samples = skew_samples
        self.min_peers = min_peers
        self._open: dict[int, Window] = {}
        self._late: dict[int, Window] = {}
        self._clocks: dict[str, _Clock] = {}
        self._arrivals = 0
        self._wm_t = float("-inf")        # the (monotonic) robust newest event time
        self.max_t = float("-inf")        # newest corrected t of any gateway (informational)
        self.max_late_t = float("-inf")
        self.closed_key = None        # highest key closed on the live path
        self.late_batches = 0
        self.last_window: Window | None = None   # the window the last added batch went to

    def _key(self, t: float) -> int:
        return int(round(t / self.window_s))

    # -- clock skew ------------------------------------------------------------------------
    def _active(self, exclude: str | None = None) -> list[_Clock]:
        horizon = self._arrivals - max(16, 2 * len(self._clocks))
        return [c for g, c in self._clocks.items()
                if g != exclude and c.heard > horizon and c.latest > float("-inf")]

    def _observe(self, gw: str, t: float) -> tuple[_Clock, float | None]:
        """Record one batch time of ``gw``: (its clock, the offset sample or None)."""
        d = None
        c = self._clocks.get(gw)
        if c is None:
            c = self._clocks[gw] = _Clock(self.skew_samples)
        self._arrivals += 1
        c.heard = self._arrivals
        peers = self._active(exclude=gw)
        if len(peers) >= self.min_peers:
            d = t - _median(p.latest for p in peers)
            c.samples.append(d)
            if len(c.samples) == c.samples.maxlen:
                c.decided = True
                v = sorted(c.samples)
                est = _median(v)
                trim = max(1, len(v) // 8)
                # Consistent (one outlier each side ignored): a clock offset moves with its peers.
                # A spool replay races ahead of them (its differences climb) and is left alone.
                if v[-1 - trim] - v[trim] <= 2 * self.window_s + 0.5:
                    c.estimate = est
                    if abs(est) > self.skew_tolerance_s:
                        corr = round(est / self.window_s) * self.window_s
                        if corr != c.correction:
                            log.warning("gateway %s clock off by %+.1f s; correcting its batch times",
                                        gw, est)
                            c.correction = corr
                            c.latest = float("-inf")
                    elif c.correction:
                        log.warning("gateway %s clock back in step (%+.1f s)", gw, est)
                        c.correction = 0.0
                        c.latest = float("-inf")
        return c, d

    def corrected_t(self, gw: str, t: float) -> float:
        c = self._clocks.get(gw)
        return t - c.correction if c is not None else t

    def offset_estimate(self, gw: str) -> float | None:
        """The estimated clock offset of ``gw`` (s, + = ahead), None before there is one."""
        c = self._clocks.get(gw)
        return None if c is None else c.estimate

    def correction(self, gw: str) -> float:
        c = self._clocks.get(gw)
        return 0.0 if c is None else c.correction

    def _advance(self) -> None:
        act = self._active()
        if act:
            self._wm_t = max(self._wm_t, _median(c.latest for c in act))

    # -- windows ---------------------------------------------------------------------------
    def add(self, part) -> bool:
        """Add one decoded batch (anything with .t, .window_s, .gw). Returns True if it is late.

        A gateway whose first batches are far off its peers' time is held back (``last_window``
        is then a ``Held``) until ``skew_samples`` batches tell a clock offset (corrected) from a
        spool replay (passed on as it is); then its held batches are added in arrival order."""
        c, d = self._observe(str(getattr(part, "gw", "")), part.t)
        if c.held is None and not c.decided and d is not None \
                and abs(d) > max(self.skew_tolerance_s, self.lateness_s):
            c.held = []
        if c.held is not None:
            h = Held()
            c.held.append((part, h))
            self.last_window = h
            if c.decided:
                return self._release(c)
            return False
        return self._route(part, c)

    def _release(self, c: _Clock) -> bool:
        held, c.held = c.held or [], None
        late = False
        for part, h in held:
            late = self._route(part, c) or late
            h.window = self.last_window
        if held:
            self.last_window = held[-1][1]
        return late

    def _route(self, part, c: _Clock) -> bool:
        t = part.t - c.correction
        c.latest = max(c.latest, t)
        key = self._key(t)
        if self.closed_key is not None and key <= self.closed_key:
            w = self._late.get(key)
            if w is None:
                w = self._late[key] = Window(key * self.window_s, part.window_s, late=True)
            w.parts.append(part)
            self.late_batches += 1
            self.max_late_t = max(self.max_late_t, t)
            self.last_window = w
            return True
        w = self._open.get(key)
        if w is None:
            w = self._open[key] = Window(key * self.window_s, part.window_s)
        w.parts.append(part)
        self.max_t = max(self.max_t, t)
        self._advance()
        self.last_window = w
        return False

    def open_window(self, gw: str, t: float):
        """What a duplicate of a batch of ``gw`` at ``t`` must wait for: its still open window,
        the ``Held`` of a held-back original, or None (its window is closed)."""
        c = self._clocks.get(gw)
        if c is not None and c.held:
            return c.held[-1][1]
        key = self._key(self.corrected_t(gw, t))
        return self._open.get(key) or self._late.get(key)

    @property
    def has_open(self) -> bool:
        return bool(self._open or self._late or any(c.held for c in self._clocks.values()))

    @property
    def watermark(self) -> float:
        return self._wm_t - self.lateness_s

    def close_ready(self) -> list[Window]:
        """Windows the watermark has passed, live ones then late ones, each in time order."""
        # A held-back gateway that fell silent before it could be judged: pass its batches on.
        horizon = self._arrivals - max(16, 2 * len(self._clocks))
        for c in self._clocks.values():
            if c.held and c.heard <= horizon:
                self._release(c)
        out = self._close(self._open, self.watermark, live=True)
        out += self._close(self._late, self.max_late_t - self.lateness_s, live=False)
        # Never hold more than max_open windows (a gateway with a clock far in the future).
        while len(self._open) > self.max_open:
            out += self._close(self._open, min(self._open) * self.window_s, live=True)
        return out

    def close_all(self) -> list[Window]:
        for c in self._clocks.values():
            if c.held:
                self._release(c)
        return (self._close(self._open, float("inf"), live=True)
                + self._close(self._late, float("inf"), live=False))

    def _close(self, table: dict[int, Window], until_t: float, live: bool) -> list[Window]:
        keys = sorted(k for k in table if k * self.window_s <= until_t)
        out = [table.pop(k) for k in keys]
        for w in out:
            w.closed = True
        for w in out:
            # Order-independent assembly: the matrix rows (devices in first-seen order) and the
            # last-wins fp/member fields must not depend on the order batches arrived in.
            w.parts.sort(key=lambda p: (str(getattr(p, "gw", "")), getattr(p, "seq", 0)))
        if live and keys:
            self.closed_key = max(keys[-1], self.closed_key if self.closed_key is not None else keys[-1])
        return out
