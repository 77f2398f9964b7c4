"""Zones: vectorized point-in-polygon assignment and a batched hysteresis state machine.

A fix is assigned to at most one zone of its floor.  Where zones overlap (a store's door polygon
drawn over the corridor's edge) the zone of the higher-precedence kind wins: stores first, then
escalators and lifts, entrances, service, corridors, anything else; ties go to the smaller
polygon, the more specific one.

Examples
--------
>>> import numpy as np
>>> from locate.zones import ZoneIndex
>>> corridor = np.array([[0, 0], [20, 0], [20, 4], [0, 4]], float)
>>> store = np.array([[0, 3], [5, 3], [5, 9], [0, 9]], float)
>>> zi = ZoneIndex([corridor, store], floors=[0, 0], kinds=["corridor", "store"])
>>> zi.assign(np.array([[1.0, 1.0], [1.0, 3.5], [1.0, 3.5], [30.0, 1.0]]), np.array([0, 0, 1, 0]))
array([ 0,  1, -1, -1])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import InvalidParameterError

__all__ = [
    "KIND_PRECEDENCE",
    "ZoneHysteresis",
    "ZoneIndex",
    "ZoneStep",
    "distance_to_polygon",
    "points_in_polygon",
]

# Lower value wins an overlap.  Stores first: a shopper standing in a door is counted for the
# store, the corridor is what is left over.
KIND_PRECEDENCE = {
    "store": 0,
    "escalator": 1,
    "lift": 1,
    "entrance": 2,
    "service": 3,
    "corridor": 4,
    "atrium": 5,
    "outside": 6,
}
_OTHER_KIND = 7
# Points per block in the edge loop: bounds the (block, edges) temporaries to a few MB.
_BLOCK = 65536


def _as_polygon(poly, name: str = "polygon") -> np.ndarray:
    p = np.asarray(poly, dtype=float)
    if p.ndim != 2 or p.shape[1] != 2 or p.shape[0] < 3:
        raise InvalidParameterError(name, f"expected an (M,2) array with M >= 3, got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise InvalidParameterError(name, "vertices must be finite")
    if np.allclose(p[0], p[-1]) and p.shape[0] > 3:
        p = p[:-1]  # tolerate an explicitly closed ring
    return p


def points_in_polygon(xy, polygon) -> np.ndarray:
    """Even-odd ray casting, vectorized over points and edges.

    Parameters
    ----------
    xy : (N,2) array_like
        Points, metres.  Rows with NaN are outside.
    polygon : (M,2) array_like
        Vertices of one simple ring (closing vertex optional).

    Returns
    -------
    (N,) bool
        True inside.  Points exactly on an edge may fall either way.

    Examples
    --------
    >>> sq = [[0, 0], [2, 0], [2, 2], [0, 2]]
    >>> points_in_polygon([[1, 1], [3, 1], [float("nan"), 0]], sq)
    array([ True, False, False])
    """
    pts = np.asarray(xy, dtype=float).reshape(-1, 2)
    poly = _as_polygon(polygon)
    out = np.zeros(len(pts), dtype=bool)
    x0, y0 = poly[:, 0], poly[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    dy = y1 - y0
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(dy != 0, (x1 - x0) / dy, 0.0)
    for s in range(0, len(pts), _BLOCK):
        px = pts[s : s + _BLOCK, 0:1]
        py = pts[s : s + _BLOCK, 1:2]
        # Edge straddles the horizontal line through the point (half-open, so shared
        # vertices are counted once) and the crossing lies to the right of the point.
        straddle = (y0 > py) != (y1 > py)
        xcross = x0 + (py - y0) * slope
        out[s : s + _BLOCK] = np.logical_xor.reduce(straddle & (px < xcross), axis=1)
    return out


def distance_to_polygon(xy, polygon) -> np.ndarray:
    """Distance (metres) from each point to a polygon: 0 inside, else to the nearest edge.

    Examples
    --------
    >>> sq = [[0, 0], [2, 0], [2, 2], [0, 2]]
    >>> distance_to_polygon([[1, 1], [5, 2]], sq)
    array([0., 3.])
    """
    pts = np.asarray(xy, dtype=float).reshape(-1, 2)
    poly = _as_polygon(polygon)
    a = poly[None, :, :]
    b = np.roll(poly, -1, axis=0)[None, :, :]
    p = pts[:, None, :]
    ab = b - a
    t = np.clip(np.sum((p - a) * ab, axis=2) / np.maximum(np.sum(ab * ab, axis=2), 1e-12), 0, 1)
    d = np.sqrt(np.min(np.sum((a + t[..., None] * ab - p) ** 2, axis=2), axis=1))
    d[points_in_polygon(pts, poly)] = 0.0
    return d


def _area(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


class ZoneIndex:
    """Zones of a site as polygons per floor, with vectorized assignment of fixes.

    Parameters
    ----------
    polygons : sequence of (M,2) arrays
        One ring per zone, metres, site frame.
    floors : (Z,) int array_like
        Floor index of each zone (the caller's floor numbering, e.g. 0..F-1).
    ids : sequence of str, optional
        Zone ids (default ``"z0", "z1", ...``).
    kinds : sequence of str, optional
        Zone kinds (``store``, ``corridor``, ...), used for precedence; default ``store``.

    Attributes
    ----------
    order : (Z,) int
        Zone indices in precedence order (first wins an overlap).
    """

    def __init__(self, polygons: Sequence, floors, ids=None, kinds=None):
        self.polygons = [_as_polygon(p, f"polygons[{i}]") for i, p in enumerate(polygons)]
        z = len(self.polygons)
        self.floors = np.asarray(floors, dtype=int).reshape(-1)
        if self.floors.shape != (z,):
            raise InvalidParameterError("floors", f"expected {z} values, got {self.floors.shape[0]}")
        self.ids = list(ids) if ids is not None else [f"z{i}" for i in range(z)]
        if len(self.ids) != z:
            raise InvalidParameterError("ids", f"expected {z} values, got {len(self.ids)}")
        self.kinds = list(kinds) if kinds is not None else ["store"] * z
        if len(self.kinds) != z:
            raise InvalidParameterError("kinds", f"expected {z} values, got {len(self.kinds)}")
        self.bbox = np.array([[*p.min(axis=0), *p.max(axis=0)] for p in self.polygons]).reshape(
            z, 4
        )
        self.area = np.array([_area(p) for p in self.polygons])
        rank = np.array([KIND_PRECEDENCE.get(k, _OTHER_KIND) for k in self.kinds])
        self.order = np.lexsort((self.area, rank)) if z else np.zeros(0, int)

    def __len__(self) -> int:
        return len(self.polygons)

    def assign(self, xy, floor) -> np.ndarray:
        """Zone index of each fix, -1 where none (or xy is NaN).

        Parameters
        ----------
        xy : (N,2) array_like
            Fixes, metres.
        floor : (N,) int array_like or int
            Floor index of each fix (a negative value matches no zone).

        Returns
        -------
        (N,) int
        """
        pts = np.asarray(xy, dtype=float).reshape(-1, 2)
        n = len(pts)
        fl = np.broadcast_to(np.asarray(floor, dtype=int), (n,))
        out = np.full(n, -1, dtype=int)
        finite = np.isfinite(pts).all(axis=1)
        for zi in self.order:
            x0, y0, x1, y1 = self.bbox[zi]
            # Bounding-box prefilter: only unassigned points of this floor inside the box
            # reach the edge loop, which keeps the cost near O(N) for many small zones.
            cand = np.flatnonzero(
                (out < 0)
                & finite
                & (fl == self.floors[zi])
                & (pts[:, 0] >= x0)
                & (pts[:, 0] <= x1)
                & (pts[:, 1] >= y0)
                & (pts[:, 1] <= y1)
            )
            if cand.size:
                inside = points_in_polygon(pts[cand], self.polygons[zi])
                out[cand[inside]] = zi
        return out


@dataclass(frozen=True)
class ZoneStep:
    """What one :meth:`ZoneHysteresis.update` changed, per device (all arrays (N,)).

    ``exited`` devices closed a visit of ``exit_zone`` that began at ``exit_enter_t`` and was
    last observed inside at ``exit_t``; ``entered`` devices opened a visit of ``zone`` (state
    after the step) with start ``enter_t`` (first observation of the run that qualified).
    A device can exit and enter in the same step (moving straight from one store to the next).
    """

    entered: np.ndarray
    exited: np.ndarray
    zone: np.ndarray
    enter_t: np.ndarray
    exit_zone: np.ndarray
    exit_enter_t: np.ndarray
    exit_t: np.ndarray


class ZoneHysteresis:
    """Batched enter/exit state machine so a device at a shop door does not flip.

    A device enters zone ``z`` after it has been observed in ``z`` over a span of at least
    ``t_enter`` seconds, tolerating interruptions shorter than ``t_gap``; it leaves its current
    zone once it has not been observed inside for ``t_exit`` seconds.  Visit times are the
    observed ones (first and last observation inside), not the moments of decision, so dwell
    is not biased by the hysteresis delays.

    Parameters
    ----------
    n : int
        Number of devices (slots).
    t_enter, t_exit : float
        Seconds.
    t_gap : float, optional
        Longest interruption of a candidate run (default ``t_exit``).

    Examples
    --------
    >>> h = ZoneHysteresis(1, t_enter=3, t_exit=3)
    >>> for t, z in enumerate([2, 2, -1, 2, 2, 2, -1, -1, -1, -1]):
    ...     s = h.update(float(t), np.array([z]))
    ...     if s.entered[0]: print("enter", s.zone[0], s.enter_t[0], "at", t)
    ...     if s.exited[0]: print("exit", s.exit_zone[0], s.exit_t[0], "at", t)
    enter 2 0.0 at 3
    exit 2 5.0 at 8
    """

    def __init__(self, n: int, t_enter: float = 30.0, t_exit: float = 30.0, t_gap=None):
        if n < 0:
            raise InvalidParameterError("n", f"must be >= 0, got {n}")
        if not (t_enter >= 0 and t_exit > 0):
            raise InvalidParameterError("t_enter", f"need t_enter >= 0 and t_exit > 0, got {t_enter}, {t_exit}")
        self.t_enter = float(t_enter)
        self.t_exit = float(t_exit)
        self.t_gap = float(t_exit if t_gap is None else t_gap)
        self.zone = np.full(n, -1, dtype=int)  # committed zone
        self.enter_t = np.full(n, np.nan)  # first observation of the committed visit
        self.last_in = np.full(n, np.nan)  # last observation inside the committed zone
        self.cand = np.full(n, -1, dtype=int)  # candidate zone run
        self.cand_first = np.full(n, np.nan)
        self.cand_last = np.full(n, np.nan)

    def reset(self, mask) -> None:
        """Forget devices (address changed, track expired) without emitting exits."""
        m = np.asarray(mask, dtype=bool)
        self.zone[m] = -1
        self.cand[m] = -1
        for a in (self.enter_t, self.last_in, self.cand_first, self.cand_last):
            a[m] = np.nan

    def update(self, t: float, zone, valid=None) -> ZoneStep:
        """Feed one observation per device at time ``t``.

        Parameters
        ----------
        t : float
            Unix seconds, non-decreasing between calls.
        zone : (N,) int
            Observed zone index, -1 for none.
        valid : (N,) bool, optional
            False where the device has no observation this step (it neither confirms nor
            contradicts anything; exits still time out).
        """
        z = np.asarray(zone, dtype=int)
        n = self.zone.shape[0]
        if z.shape != (n,):
            raise InvalidParameterError("zone", f"expected shape ({n},), got {z.shape}")
        v = np.ones(n, bool) if valid is None else np.asarray(valid, dtype=bool)
        t = float(t)

        # Confirmations of the committed zone.
        inside = v & (self.zone >= 0) & (z == self.zone)
        self.last_in[inside] = t

        # Candidate run: the zone (other than the committed one) being observed.  A run
        # survives interruptions up to t_gap; a different zone observed meanwhile is ignored
        # until the run goes stale, so brief excursions do not restart it.
        obs = v & (z >= 0) & (z != self.zone)
        same = obs & (z == self.cand)
        self.cand_last[same] = t
        stale = (self.cand >= 0) & (t - self.cand_last > self.t_gap)
        self.cand[stale] = -1
        new = obs & (self.cand < 0)
        self.cand[new] = z[new]
        self.cand_first[new] = t
        self.cand_last[new] = t

        # Exit after t_exit without confirmation.
        exited = (self.zone >= 0) & (t - self.last_in >= self.t_exit)
        exit_zone = np.where(exited, self.zone, -1)
        exit_enter_t = np.where(exited, self.enter_t, np.nan)
        exit_t = np.where(exited, self.last_in, np.nan)
        self.zone[exited] = -1

        # Enter once the run is long enough and no visit is open.  A device walking straight
        # from one store into the next leaves the first by timeout, then enters the second
        # with the start of its run.
        ready = (self.cand >= 0) & (self.cand_last - self.cand_first >= self.t_enter)
        entered = ready & (self.zone < 0)
        self.zone[entered] = self.cand[entered]
        self.enter_t[entered] = self.cand_first[entered]
        self.last_in[entered] = self.cand_last[entered]
        self.cand[entered] = -1
        self.cand_first[entered] = np.nan
        self.cand_last[entered] = np.nan
        return ZoneStep(
            entered=entered,
            exited=exited,
            zone=self.zone.copy(),
            enter_t=np.where(entered, self.enter_t, np.nan),
            exit_zone=exit_zone,
            exit_enter_t=exit_enter_t,
            exit_t=exit_t,
        )

    def close(self) -> ZoneStep:
        """Close every open visit at its last observation (end of data, device gone)."""
        n = self.zone.shape[0]
        exited = self.zone >= 0
        step = ZoneStep(
            entered=np.zeros(n, bool),
            exited=exited,
            zone=np.full(n, -1),
            enter_t=np.full(n, np.nan),
            exit_zone=np.where(exited, self.zone, -1),
            exit_enter_t=np.where(exited, self.enter_t, np.nan),
            exit_t=np.where(exited, self.last_in, np.nan),
        )
        self.reset(np.ones(n, bool))
        return step
