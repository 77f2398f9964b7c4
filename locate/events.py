"""Journey events from per-window state arrays: floor changes and zone visits.

Both take arrays over a regular time grid (T steps, N devices) and return structured arrays,
one row per event, sorted by device then time.

Examples
--------
>>> import numpy as np
>>> from locate.events import visits
>>> z = np.array([[-1], [3], [3], [3], [3], [-1], [-1], [-1], [-1]])
>>> v = visits(np.arange(9.0), z, t_enter=2, t_exit=3)
>>> v[["device", "zone", "enter", "exit", "dwell"]].tolist()
[(0, 3, 1.0, 4.0, 3.0)]
"""

from __future__ import annotations

import numpy as np

from .errors import InvalidParameterError
from .zones import ZoneHysteresis

__all__ = ["FLOOR_CHANGE_DTYPE", "VISIT_DTYPE", "floor_changes", "visits"]

FLOOR_CHANGE_DTYPE = np.dtype(
    [("device", np.int64), ("t", np.float64), ("from_floor", np.int64), ("to_floor", np.int64),
     ("via", np.int64), ("via_dist", np.float64)]
)
VISIT_DTYPE = np.dtype(
    [("device", np.int64), ("zone", np.int64), ("enter", np.float64), ("exit", np.float64),
     ("dwell", np.float64)]
)


def floor_changes(t, floor, xy=None, connectors=None, window_s: float = 15.0) -> np.ndarray:
    """Floor changes in a per-window floor sequence (e.g. :meth:`FloorHMM.viterbi`).

    Parameters
    ----------
    t : (T,) float
        Window times, seconds.
    floor : (T,N) int
        Floor index per window, -1 where unknown (unknown windows are bridged).
    xy : (T,N,2) or (T,N,F,2) float, optional
        Positions (one per floor hypothesis in the second form) used to name the connector.
    connectors : locate.floors.Connectors, optional
    window_s : float
        Positions within this many seconds of the change are searched for the connector.

    Returns
    -------
    structured array of FLOOR_CHANGE_DTYPE
        ``t`` is the first window on the new floor; ``via`` the index of a polygon of the
        connector the device stayed closest to on both sides of the change (see ``_via``), -1
        if none is given or links the floors; ``via_dist`` the median distance to it.

    Examples
    --------
    >>> fl = np.array([[0, 0], [0, 1], [1, 1]])
    >>> floor_changes(np.array([0.0, 1.0, 2.0]), fl)[["device", "t", "from_floor", "to_floor"]].tolist()
    [(0, 2.0, 0, 1), (1, 1.0, 0, 1)]
    """
    t = np.asarray(t, dtype=float)
    fl = np.asarray(floor, dtype=int)
    if fl.ndim != 2 or fl.shape[0] != t.shape[0]:
        raise InvalidParameterError("floor", f"must be (T,N) with T = len(t), got {fl.shape}")
    T, N = fl.shape
    rows = []
    for n in range(N):
        known = np.flatnonzero(fl[:, n] >= 0)
        if known.size < 2:
            continue
        seq = fl[known, n]
        for j in np.flatnonzero(seq[1:] != seq[:-1]) + 1:
            k = known[j]
            f0, f1 = int(seq[j - 1]), int(seq[j])
            via, dist = -1, np.inf
            if xy is not None and connectors is not None:
                via, dist = _via(connectors, np.asarray(xy), t, k, n, f0, f1, window_s)
            rows.append((n, t[k], f0, f1, via, dist))
    return np.array(rows, dtype=FLOOR_CHANGE_DTYPE)


def _via(con, xy, t, k, n, f0, f1, window_s):
    """Connector of a change at step k.

    Each connector id (an escalator's two landings share one) is scored by how close the
    device stayed to its landing on the old floor before the change plus to its landing on
    the new floor after it (median distances over ``window_s``; a polygon with floor -1, a
    lift shaft, serves both sides).  Scoring both sides tells a lift from the escalator
    landing next to it: only the lift is also where the device comes out.
    """
    before = (t >= t[k] - window_s) & (t < t[k])
    after = (t >= t[k]) & (t <= t[k] + window_s)
    ids = np.asarray(con.ids, dtype=object)
    best, best_d, best_score = -1, np.inf, np.inf
    for name in dict.fromkeys(ids.tolist()):
        cs = [c for c in np.flatnonzero(ids == name) if f0 in con.connects[c] and f1 in con.connects[c]]
        if not cs:
            continue
        score, side_best = 0.0, (cs[0], np.inf)
        for f, w in ((f0, before), (f1, after)):
            side = [c for c in cs if con.floor[c] in (-1, f)] or cs
            p = xy[w, n]
            p = p[:, f] if p.ndim == 3 else p
            d = con.distances(p)[:, side]
            d = d[np.isfinite(d).all(axis=1)]
            if not d.size:
                score = np.inf
                break
            med = np.median(d, axis=0)
            score += float(med.min())
            if med.min() < side_best[1]:
                side_best = (side[int(med.argmin())], float(med.min()))
        if score < best_score:
            best_score, best, best_d = score, side_best[0], side_best[1]
    return best, best_d


def visits(t, zone, t_enter: float = 60.0, t_exit: float = 30.0, valid=None, t_gap=None) -> np.ndarray:
    """Zone visits from per-window zone assignments through :class:`ZoneHysteresis`.

    Parameters
    ----------
    t : (T,) float
    zone : (T,N) int
        Zone index per window, -1 for none (pass only the zones that make visits, e.g. stores).
    t_enter, t_exit, t_gap : float
        Hysteresis, seconds (see :class:`ZoneHysteresis`).
    valid : (T,N) bool, optional
        False where a device had no fix.

    Returns
    -------
    structured array of VISIT_DTYPE
        ``enter``/``exit`` are the first/last windows observed inside; visits still open at
        the end are closed at their last observation.
    """
    t = np.asarray(t, dtype=float)
    z = np.asarray(zone, dtype=int)
    if z.ndim != 2 or z.shape[0] != t.shape[0]:
        raise InvalidParameterError("zone", f"must be (T,N) with T = len(t), got {z.shape}")
    h = ZoneHysteresis(z.shape[1], t_enter=t_enter, t_exit=t_exit, t_gap=t_gap)
    out = []
    for k in range(t.shape[0]):
        s = h.update(t[k], z[k], None if valid is None else valid[k])
        out.extend(_closed(s))
    out.extend(_closed(h.close()))
    v = np.array(out, dtype=VISIT_DTYPE)
    return v[np.lexsort((v["enter"], v["device"]))]


def _closed(step):
    i = np.flatnonzero(step.exited)
    return [(n, step.exit_zone[n], step.exit_enter_t[n], step.exit_t[n], step.exit_t[n] - step.exit_enter_t[n]) for n in i]
