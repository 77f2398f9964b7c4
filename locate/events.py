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

__all__ = ["FLOOR_CHANGE_DTYPE", "VISIT_DTYPE", "drop_excursions", "floor_changes", "visits"]

FLOOR_CHANGE_DTYPE = np.dtype(
    [("device", np.int64), ("t", np.float64), ("from_floor", np.int64), ("to_floor", np.int64),
     ("via", np.int64), ("via_dist", np.float64)]
)
VISIT_DTYPE = np.dtype(
    [("device", np.int64), ("zone", np.int64), ("enter", np.float64), ("exit", np.float64),
     ("dwell", np.float64)]
)


def drop_excursions(t, floor, max_s: float = 60.0) -> np.ndarray:
    """Remove short return trips from a floor sequence: f -> g -> f with less than ``max_s``
    seconds on g becomes f throughout.

    The HMM's minimum dwell keeps the floor from flickering window by window; a shopper
    parked next to an escalator above the atrium can still look like a trip down and back
    every ~20 s.  Riding one floor and straight back within a minute is rare for shoppers,
    so such excursions are taken as errors.  Chains (f -> g -> h) are kept.

    Parameters
    ----------
    t : (T,) float
    floor : (T,N) int
        Floor per window (-1 unknown; unknown windows are bridged).
    max_s : float

    Returns
    -------
    (T,N) int, a copy.

    Examples
    --------
    >>> fl = np.array([[2] * 5 + [1] * 3 + [2] * 4 + [1] * 3 + [0] * 3]).T
    >>> drop_excursions(np.arange(18.0), fl, max_s=5)[:, 0].tolist()
    [2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 0, 0, 0]
    """
    t = np.asarray(t, dtype=float)
    out = np.array(floor, dtype=int, copy=True)
    if out.ndim != 2 or out.shape[0] != t.shape[0]:
        raise InvalidParameterError("floor", f"must be (T,N) with T = len(t), got {out.shape}")
    for n in range(out.shape[1]):
        known = np.flatnonzero(out[:, n] >= 0)
        changed = True
        while changed and known.size:
            changed = False
            seq = out[known, n]
            starts = np.r_[0, np.flatnonzero(seq[1:] != seq[:-1]) + 1]
            ends = np.r_[starts[1:], len(seq)]
            for r in range(1, len(starts) - 1):
                a, b = starts[r], ends[r]
                before, here, after = seq[starts[r - 1]], seq[a], seq[b]
                stay = t[known[b]] - t[known[a]]
                if before == after != here and stay < max_s:
                    out[known[a:b], n] = before
                    changed = True
                    break
    return out


def floor_changes(t, floor, xy=None, connectors=None, window_s: float = 15.0,
                  pair_m: float = 5.0, via_loglik=None, chain_s: float = 45.0, ride_s=None,
                  ride_gap_s: float = 55.0, floor_loglik=None, emission_scale: float = 0.5) -> np.ndarray:
    """Floor changes in a per-window floor sequence (e.g. :meth:`FloorHMM.viterbi`).

    Parameters
    ----------
    t : (T,) float
        Window times, seconds.
    floor : (T,N) int
        Floor index per window, -1 where unknown (unknown windows are bridged).
    xy : (T,N,2) or (T,N,F,2) float, optional
        Positions (one per floor hypothesis in the second form) used to name the connector
        and for ``via_dist``.
    connectors : locate.floors.Connectors, optional
    window_s : float
        Windows within this many seconds of the change are searched for the connector.
    pair_m : float
        Landings of different ids on the two floors count as one connector when they are of
        the same kind and their centroids are this close (stacked landings drawn per floor).
    via_loglik : (T,N,C) float, optional
        Log-likelihood of each window with the device at each connector polygon
        (:func:`locate.connectors.landing_loglik`).  It decides whether consecutive rides
        were one lift ride (a lift is tens of metres from the escalators, and the track is
        least sure of itself during a ride); it names the connector only without ``xy``:
        between two escalators 16 m apart, static shadowing biases it window after window.
    chain_s : float
        Consecutive changes in one direction through the same lift less than this many
        seconds apart are one ride (the car stopped at the floor between); the HMM's
        minimum dwell otherwise splits an L3 -> L1 lift ride into two.
    ride_s : float, optional
        Escalator ride time per floor, seconds (used with ``xy``; e.g. rise / 0.25 m/s for a
        30 degree escalator at 0.5 m/s).  Escalator changes chained in one direction less than
        ``ride_gap_s`` apart are one trip up or down one escalator well: the trip is named
        one well on its summed scores (the track near one ride's landings alone often cannot
        tell two wells 16 m apart) and its changes are refit ``ride_s`` apart (each one alone
        is placed by a few sparse windows).  A single ride is a trip of one.
    ride_gap_s : float
        See ``ride_s``: the rides of a trip are ``ride_s`` apart, and either change may be
        found some 15 s off.
    floor_loglik : (T,N,F) float, optional
        Per-window floor log-likelihoods (:meth:`FloorModel.loglik`).  With ``ride_s``, each
        trip's (and lift ride's) time is moved to the posterior mean of a common shift within
        +-``ride_s``, scored on these: the HMM's path changes only where the per-window fix
        is near the landing, which on a sparse, biased fix can be many seconds late.
    emission_scale : float
        Tempering of ``floor_loglik`` (as :class:`FloorHMM`'s).

    Returns
    -------
    structured array of FLOOR_CHANGE_DTYPE
        ``t`` is the first window on the new floor; ``via`` the index of a polygon of the
        connector (see ``_via``), -1 if none is given or links the floors; ``via_dist`` the
        median distance of ``xy`` to it before the change (inf without ``xy``).

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
    N = fl.shape[1]
    xy = None if xy is None else np.asarray(xy, dtype=float)
    L = None if via_loglik is None else np.asarray(via_loglik, dtype=float)
    if L is not None and (connectors is None or L.shape != fl.shape + (len(connectors.polygons),)):
        raise InvalidParameterError("via_loglik", f"must be (T,N,C) with connectors, got {L.shape}")
    naming = connectors is not None and (xy is not None or L is not None)
    FL = None if floor_loglik is None else np.asarray(floor_loglik, dtype=float)
    rows = []
    for n in range(N):
        known = np.flatnonzero(fl[:, n] >= 0)
        if known.size < 2:
            continue
        seq = fl[known, n]
        # (k_first, k_last, from, to): a change spans k_first..k_last once rides are merged.
        ch = [[known[j], known[j], int(seq[j - 1]), int(seq[j])] for j in np.flatnonzero(seq[1:] != seq[:-1]) + 1]
        vias = [_name(connectors, xy, L, t, c, n, window_s, pair_m) if naming else (-1, np.inf) for c in ch]
        i = 0
        while naming and i < len(ch) - 1:
            merged = _one_lift_ride(connectors, xy, L, t, ch[i], ch[i + 1], vias[i:i + 2], n, window_s,
                                    pair_m, chain_s)
            if merged is None:
                i += 1
            else:  # the merged ride may chain with the next one too: look at i again
                ch[i:i + 2], vias[i:i + 2] = [merged[0]], [merged[1]]
        tc = t[[c[0] for c in ch]] if ch else np.zeros(0)
        if ch and naming and xy is not None and ride_s is not None:
            vias, tc = _rides(connectors, xy, L, FL, t, ch, vias, n, window_s, pair_m, ride_s, ride_gap_s,
                              emission_scale)
        rows += [(n, tt, c[2], c[3], v, d) for tt, c, (v, d) in zip(tc, ch, vias)]
    return np.array(rows, dtype=FLOOR_CHANGE_DTYPE)


def _name(con, xy, L, t, change, n, window_s, pair_m):
    """The connector by the track where it has positions near the change, else by the radio."""
    v = _via(con, xy, None, t, change, n, window_s, pair_m) if xy is not None else (-1, np.inf)
    return _via(con, None, L, t, change, n, window_s, pair_m) if v[0] < 0 and L is not None else v


def _shafts(con, pair_m) -> np.ndarray:
    """(C,) int label per polygon: one per escalator well or lift shaft (same id, or same kind
    with centroids within ``pair_m``)."""
    cen = con.centroids()
    lab = np.arange(len(con.polygons))
    for a in range(len(lab)):
        for b in range(a):
            if con.ids[a] == con.ids[b] or (con.kinds[a] == con.kinds[b] and np.hypot(*(cen[a] - cen[b])) <= pair_m):
                lab[lab == lab[a]] = lab[b]
    return lab


_LANDING_WEIGHT = 0.5  # nats of landing evidence (via_loglik) worth a metre of track distance


def _well_scores(con, xy, L, t, change, n, window_s, pair_m, shaft) -> dict:
    """{well: (score, departure polygon, d0)} of one change: the smoothed track's distances
    to the landings plus, with ``L``, the landing evidence (lower is better).  A well missing
    from either score is dropped: it cannot make the change."""
    out = None
    for src_xy, src_L, wt in ((xy, None, 1.0), (None, L, _LANDING_WEIGHT)):
        if src_xy is None and src_L is None:
            continue
        sc = _via_scores(con, src_xy, src_L, t, change, n, window_s, pair_m)
        per = {}
        if sc is not None:
            dep, _arr, pairs, score, d0 = sc
            for (a, _b), s in zip(pairs, score):
                w = int(shaft[dep[a]])
                if np.isfinite(s) and (w not in per or wt * s < per[w][0]):
                    per[w] = (wt * s, int(dep[a]), float(d0[a]))
        out = per if out is None else {w: (out[w][0] + v[0], out[w][1], out[w][2]) for w, v in per.items() if w in out}
    return out or {}


def _rides(con, xy, L, FL, t, ch, vias, n, window_s, pair_m, ride_s, ride_gap_s, emission_scale):
    """Name each escalator trip (one ride, or rides chained in one direction) one well, space
    its changes ``ride_s`` apart, then move each trip (and each lift ride) to the posterior
    mean of its time on the floor log-likelihoods ``FL``.  Returns (vias, times)."""
    vias, tc = list(vias), t[[c[0] for c in ch]].astype(float)
    shaft = _shafts(con, pair_m)

    def escalator(v):
        return v[0] >= 0 and con.kinds[v[0]] != "lift"

    i = 0
    while i < len(ch):
        j = i
        while (j + 1 < len(ch) and escalator(vias[j]) and escalator(vias[j + 1])
               and ch[j][3] == ch[j + 1][2]
               and np.sign(ch[j][3] - ch[j][2]) == np.sign(ch[j + 1][3] - ch[j + 1][2])
               and t[ch[j + 1][0]] - t[ch[j][1]] < ride_gap_s):
            j += 1
        if escalator(vias[i]):
            # The trip takes the well with the lowest summed score that makes every ride.
            best = [_well_scores(con, xy, L, t, c, n, window_s, pair_m, shaft) for c in ch[i:j + 1]]
            common = set.intersection(*(set(p) for p in best))
            if common:
                w = min(common, key=lambda w: sum(p[w][0] for p in best))
                vias[i:j + 1] = [(p[w][1], p[w][2]) for p in best]
            k = np.arange(j + 1 - i)
            tc[i:j + 1] = np.mean(tc[i:j + 1] - k * ride_s) + k * ride_s
        if FL is not None and vias[i][0] >= 0:
            lo = t[ch[i - 1][1]] if i > 0 else t[0]
            hi = t[ch[j + 1][0]] if j + 1 < len(ch) else t[-1]
            tc[i:j + 1] += _shift(t, FL[:, n], [ch[i][2]] + [c[3] for c in ch[i:j + 1]], tc[i:j + 1], lo, hi,
                                  ride_s, emission_scale)
        i = j + 1
    return vias, tc


def _shift(t, ll, floors, times, lo, hi, ride_s, emission_scale):
    """Posterior-mean shift (seconds) of a ride schedule: the changes at ``times`` (floor
    ``floors[k]`` before ``times[k]``, ``floors[k + 1]`` after) all moved by one offset within
    +-``ride_s``, kept inside (lo, hi), scored on the per-window floor log-likelihoods ``ll``
    (T,F) tempered by ``emission_scale`` (as the HMM does)."""
    w = (t > lo) & (t < hi)
    tw, lw = t[w], ll[w] * emission_scale
    d = np.arange(-np.floor(ride_s), np.floor(ride_s) + 1.0)
    d = d[(times[0] + d > lo) & (times[-1] + d < hi)]
    if d.size == 0 or tw.size == 0:
        return 0.0
    # floor index of each window under each shift: how many changes are at or before it
    seg = (tw[None, :, None] >= times[None, None, :] + d[:, None, None]).sum(axis=2)  # (S,W)
    fl = np.asarray(floors)[seg]
    score = np.take_along_axis(np.broadcast_to(lw, (d.size,) + lw.shape), fl[..., None], axis=2)[..., 0].sum(axis=1)
    p = np.exp(score - score.max())
    return float(np.sum(p * d) / p.sum())


def _one_lift_ride(con, xy, L, t, a, b, vias, n, window_s, pair_m, chain_s):
    """Changes ``a`` then ``b`` as one lift ride ``(change, (via, via_dist))``, or None.

    They merge when they go the same way within ``chain_s`` and both were through the same
    lift, judged on the radio (``L``) where given, else on the names already chosen.
    """
    if a[3] != b[2] or np.sign(a[3] - a[2]) != np.sign(b[3] - b[2]) or not t[b[0]] - t[a[1]] < chain_s:
        return None
    va, vb = (_via(con, xy, L, t, c, n, window_s, pair_m)[0] for c in (a, b)) if L is not None else (v[0] for v in vias)
    if va < 0 or vb < 0 or con.kinds[va] != "lift" or con.kinds[vb] != "lift":
        return None
    if con.ids[va] != con.ids[vb] and np.hypot(*(con.polygons[va].mean(0) - con.polygons[vb].mean(0))) > pair_m:
        return None
    m = [a[0], b[1], a[2], b[3]]
    v = _name(con, xy, L, t, m, n, window_s, pair_m)
    return (m, v) if v[0] >= 0 and con.kinds[v[0]] == "lift" else None


def _via(con, xy, L, t, change, n, window_s, pair_m):
    """Connector of a change (k_first, k_last, f0, f1): see :func:`_via_scores`."""
    sc = _via_scores(con, xy, L, t, change, n, window_s, pair_m)
    if sc is None:
        return -1, np.inf
    dep, _arr, pairs, score, d0 = sc
    i = pairs[int(np.argmin(score))][0]
    return int(dep[i]), float(d0[i])


def _via_scores(con, xy, L, t, change, n, window_s, pair_m):
    """Candidate connectors of a change (k_first, k_last, f0, f1) and their scores (lower is
    better): ``(dep, arr, pairs, score, d0)`` or None when no connector makes the change.

    Candidates are pairs of polygons (one the device leaves from, on the old floor, one it
    arrives at, on the new floor; floor -1 serves both) that make the change in one ride and
    belong together: the same id, or the same kind within ``pair_m`` metres (sites that draw
    each floor's landing of a stacked escalator or lift as its own zone).  With ``L`` a pair
    scores the summed log-likelihood of the windows from ``window_s`` before the change to
    ``window_s`` after it, each window at either landing (the ride's timing is uncertain);
    without it, the device's median distance to the first over ``window_s`` before the change
    plus to the second after it, so a lift is told from the escalator landing beside it: only
    the lift is also where the device comes out.  ``pairs`` index ``dep`` and ``arr``; ``d0``
    is the median distance of ``xy`` to each departure polygon before the change.
    """
    k0, k1, f0, f1 = change
    before = (t >= t[k0] - window_s) & (t < t[k0])
    after = (t >= t[k1]) & (t <= t[k1] + window_s)
    if not con.connects:
        return None
    links = con.links(max(max(c) for c in con.connects) + 1)
    if max(f0, f1) >= links.shape[1]:
        return None
    cs = np.flatnonzero(links[:, f0, f1])

    def med(w, f, cands):
        if xy is None:
            return np.full(len(cands), np.inf)
        p = xy[w, n]
        p = p[:, f] if p.ndim == 3 else p
        d = con.distances(p)[:, cands]
        d = d[np.isfinite(d).all(axis=1)]
        return np.median(d, axis=0) if d.size else np.full(len(cands), np.inf)

    dep = [c for c in cs if con.floor[c] in (-1, f0)]
    arr = [c for c in cs if con.floor[c] in (-1, f1)]
    if not dep or not arr:
        return None
    d0 = med(before, f0, dep)
    if L is not None:
        ride = (t >= t[k0] - window_s) & (t <= t[k1] + window_s)
        Lw = L[ride, n]
    else:
        d1 = med(after, f1, arr)
    cen = np.array([p.mean(axis=0) for p in con.polygons])
    pairs = []
    for i, a in enumerate(dep):
        for j, b in enumerate(arr):
            same = con.ids[a] == con.ids[b] or (
                con.kinds[a] == con.kinds[b] and np.hypot(*(cen[a] - cen[b])) <= pair_m)
            if same:
                pairs.append((i, j))
    if not pairs:
        return None
    if L is not None:
        # Either landing may hold the device in any window of the ride.
        lp = np.stack([np.logaddexp(Lw[:, dep[i]], Lw[:, arr[j]]) for i, j in pairs], axis=1)
        score = -lp.sum(axis=0)
    else:
        score = np.array([d0[i] + d1[j] for i, j in pairs])
    if not np.isfinite(score).any():
        return None
    return dep, arr, pairs, score, d0


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
