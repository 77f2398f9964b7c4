"""Connectors (escalators, lifts): where a floor change may happen, and which one a device used.

:class:`Connectors` holds the landing polygons and the floors each links; the floor HMM asks
it where a change is allowed.  :func:`landing_loglik` scores the radio evidence of each window
for "the device is at this landing" from every gateway (heard and unheard).  It tells a lift
ride from escalator rides (the lifts are tens of metres from the escalators, and a ride is the
few sparse windows a track is least sure of); between two escalators 16 m apart across an
atrium, static shadowing favours one landing window after window, and on firmware_sim's
sample mall it names them worse than the smoothed track does.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np
from scipy.special import logsumexp

from .errors import InvalidParameterError
from .zones import _as_polygon, distance_to_polygon

__all__ = ["Connectors", "landing_loglik"]

_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)


class Connectors:
    """Escalators and lifts: where a floor change may happen.

    Parameters
    ----------
    polygons : sequence of (M,2) arrays
        Footprint of each connector (its landing, or the lift car), metres.
    connects : sequence of sequences of int
        Floor indices each connector links (>= 2).
    ids : sequence of str, optional
    kinds : sequence of str, optional
        ``"escalator"`` / ``"lift"``.
    floor : (C,) int, optional
        Floor each polygon lies on (-1: all of them, a lift shaft); used to name the connector
        of a change from the positions on that floor.  Several polygons may share an id (an
        escalator's two landings).
    near_m : float
        A device within this distance of a connector may change floor through it (fixes are
        metres off; the landing is where the ride starts).

    Examples
    --------
    >>> c = Connectors([np.array([[0, 0], [2, 0], [2, 2], [0, 2]], float)], [(0, 1)], near_m=3)
    >>> c.allowed(np.array([[1.0, 1.0], [9.0, 9.0]]), 2)[:, 0, 1]
    array([ True, False])
    """

    def __init__(self, polygons: Sequence, connects: Sequence, ids=None, kinds=None, floor=None,
                 near_m: float = 6.0):
        self.polygons = [_as_polygon(p, f"polygons[{i}]") for i, p in enumerate(polygons)]
        if len(connects) != len(self.polygons):
            raise InvalidParameterError("connects", "one floor list per connector")
        self.connects = [tuple(int(f) for f in c) for c in connects]
        if any(len(set(c)) < 2 for c in self.connects):
            raise InvalidParameterError("connects", "each connector links at least 2 floors")
        self.ids = list(ids) if ids is not None else [f"c{i}" for i in range(len(self.polygons))]
        self.kinds = list(kinds) if kinds is not None else ["escalator"] * len(self.polygons)
        if not near_m >= 0:
            raise InvalidParameterError("near_m", f"must be >= 0, got {near_m}")
        self.near_m = float(near_m)
        self.floor = np.full(len(self.polygons), -1) if floor is None else np.asarray(floor, int).reshape(-1)
        if self.floor.shape != (len(self.polygons),):
            raise InvalidParameterError("floor", f"one floor index per connector ({len(self.polygons)})")

    def links(self, n_floors: int) -> np.ndarray:
        """(C,F,F) bool: the changes f -> g connector c makes in one ride.

        A lift goes from any of its floors to any other; an escalator (any kind but "lift")
        one floor at a time, between neighbours in its sorted ``connects`` - a chain of
        escalators that serves B1..L3 still takes three rides, each with its own dwell.
        """
        links = np.zeros((len(self.polygons), n_floors, n_floors), bool)
        for c, fl in enumerate(self.connects):
            fl = sorted(f for f in set(fl) if 0 <= f < n_floors)
            pairs = (
                [(f, g) for f in fl for g in fl if f != g]
                if self.kinds[c] == "lift"
                else [*pairwise(fl)] + [(b, a) for a, b in pairwise(fl)]
            )
            for f, g in pairs:
                links[c, f, g] = True
        return links

    def distances(self, xy) -> np.ndarray:
        """(N,C) distance of each point (N,2) to each connector; NaN points give inf."""
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        d = np.stack([distance_to_polygon(xy, p) for p in self.polygons], axis=1) if self.polygons else np.zeros((len(xy), 0))
        return np.where(np.isfinite(d), d, np.inf)

    def allowed(self, xy, n_floors: int) -> np.ndarray:
        """(N,F,F) bool: a change f -> g is allowed for a device at ``xy``.

        ``xy`` is (N,2), or (N,F,2) with one position per floor hypothesis (``xy[:, f]`` is
        used for changes out of floor f).
        """
        xy = np.asarray(xy, dtype=float)
        per_floor = xy.ndim == 3
        n = xy.shape[0]
        out = np.zeros((n, n_floors, n_floors), bool)
        links = self.links(n_floors)
        if per_floor:
            for f in range(n_floors):
                near = self.distances(xy[:, f]) <= self.near_m  # (N,C)
                out[:, f, :] = np.einsum("nc,cg->ng", near.astype(np.int8), links[:, f, :].astype(np.int8)) > 0
        else:
            near = self.distances(xy) <= self.near_m
            out = np.einsum("nc,cfg->nfg", near.astype(np.int8), links.astype(np.int8)) > 0
        return out


    def centroids(self) -> np.ndarray:
        """(C,2) vertex mean of each polygon (a landing's centre for rectangles)."""
        return np.array([p.mean(axis=0) for p in self.polygons]).reshape(-1, 2)


def landing_loglik(model, rssi_dbm, connectors: Connectors) -> np.ndarray:
    """Log-likelihood (N,C) of each window of ``rssi_dbm`` (N,K) with the device at each
    connector polygon's centre, on that polygon's floor.

    The same measurement model as :meth:`locate.floors.FloorModel.loglik_at` (heard gateways
    Gaussian in dB, unheard ones censored, the power offset marginalised), evaluated at one
    point per polygon, so the cost is (N,K) per polygon.  A polygon on every floor (``floor``
    -1, a lift shaft) takes the best of its floors.  Rows where nothing was heard are 0 (no
    evidence).

    Parameters
    ----------
    model : locate.floors.FloorModel
    rssi_dbm : (N,K) float
        NaN = not heard.
    connectors : Connectors

    Returns
    -------
    (N,C) float

    Examples
    --------
    >>> from locate import PathLoss
    >>> from locate.floors import FloorModel
    >>> gw = np.array([[0, 0, 3.0], [30, 0, 3.0]])
    >>> fm = FloorModel(gw, [0, 0], [0.0], PathLoss(-59, 2.5, 5.0), grid_step=2.0)
    >>> sq = lambda x: np.array([[x - 1, -1], [x + 1, -1], [x + 1, 1], [x - 1, 1]], float)
    >>> con = Connectors([sq(2.0), sq(28.0)], [(0, 1), (0, 1)], floor=[0, 0])
    >>> ll = landing_loglik(fm, np.array([[-65.0, -90.0], [np.nan, np.nan]]), con)
    >>> bool(ll[0, 0] > ll[0, 1] + 10), ll[1].tolist()
    (True, [0.0, 0.0])
    """
    r = np.asarray(rssi_dbm, dtype=float)
    k = model.anchor_floor.size
    if r.ndim != 2 or r.shape[1] != k:
        raise InvalidParameterError("rssi_dbm", f"must be (N,{k}), got shape {r.shape}")
    heard = np.isfinite(r)
    ok = heard.any(axis=1)
    out = np.zeros((len(r), len(connectors.polygons)))
    if not np.any(ok) or not connectors.polygons:
        return out
    rr, hh = np.where(heard[ok], r[ok], 0.0), heard[ok]
    lh_const = -np.log(model.sigma) - _LOG_SQRT_2PI + np.log1p(-model.p_miss)
    cen = connectors.centroids()
    for c in range(len(connectors.polygons)):
        fc = int(connectors.floor[c])
        floors = [fc] if fc >= 0 else sorted(set(connectors.connects[c]))
        per_floor = []
        for f in floors:
            M = model.mean_rssi(cen[c:c + 1], f)[0]  # (K,)
            cens = model._censored(M[None, :])
            parts = []
            for oi, o in enumerate(model.offsets):
                z = (rr - M - o) / model.sigma
                lh = np.where(hh, -0.5 * z**2 + lh_const, cens[oi])
                parts.append(lh.sum(axis=1) + model.log_w_offset[oi])
            per_floor.append(logsumexp(np.stack(parts), axis=0))
        out[ok, c] = np.max(per_floor, axis=0)
    return out
