"""Floors: per-window floor likelihood from all gateways, and an HMM over time.

Height is practically unobservable from ceiling gateways, so the floor is a classification
over time (DESIGN.md, radio realism).  :class:`FloorModel` scores each floor hypothesis with
every gateway: the ones that heard the device (Gaussian in dB around the log-distance mean,
minus the attenuation of each slab crossed) and the ones that did not (censored:
``P(rssi < sensitivity)``, plus a miss probability for scan duty cycle and packet loss).
The unheard gateways carry much of the evidence: a device on L2 is *not* heard by the L1
gateways under it.  The xy is unknown, so each floor's likelihood is marginalised over a
coarse grid of candidate points on that floor (and over a per-device power offset).

:class:`FloorHMM` smooths the per-window scores over time.  A floor change is allowed only
where the device is in or near a connector (escalator, lift) that links the two floors, and
not again before a minimum dwell (an escalator ride takes 15-30 s), so the floor does not
flicker.  Online filtering, forward-backward and Viterbi are batched over devices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from scipy.special import log_ndtr, logsumexp

from .errors import InvalidParameterError
from .zones import _as_polygon, distance_to_polygon, points_in_polygon

__all__ = ["Connectors", "FloorHMM", "FloorLikelihood", "FloorModel"]

_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)
_CHUNK = 2048
_REF_DBM = -75.0  # RSSI and means are centred on this before the expanded squares


def _per(name, value, k, positive=False) -> np.ndarray:
    a = np.asarray(value, dtype=float)
    if a.ndim > 1 or (a.ndim == 1 and a.size != k):
        raise InvalidParameterError(name, f"must be a scalar or have {k} values, got shape {a.shape}")
    if not np.all(np.isfinite(a)) or (positive and np.any(a <= 0)):
        raise InvalidParameterError(name, "must be finite" + (" and > 0" if positive else ""))
    return np.broadcast_to(a, (k,)).astype(float)


@dataclass(frozen=True)
class FloorLikelihood:
    """Per-window floor scores.

    Attributes
    ----------
    loglik : (N,F) float
        Log-likelihood of each floor (xy and power offset marginalised); 0 on rows where no
        gateway heard the device (no evidence).
    xy : (N,F,2) float
        Posterior mean position under each floor hypothesis (NaN where not heard).
    cov : (N,F,2,2) float
        Posterior covariance of that position (includes the grid quantisation).
    n_heard : (N,) int
    zone_p : (N,Z) float or None
        With ``zones`` given: probability that the device is in each zone, given that it is
        on that zone's floor (the posterior mass of the zone's candidate points).
    """

    loglik: np.ndarray
    xy: np.ndarray
    cov: np.ndarray
    n_heard: np.ndarray
    zone_p: np.ndarray | None = None

    def posterior(self) -> np.ndarray:
        """(N,F) floor probabilities of each window alone (flat prior)."""
        ll = self.loglik - self.loglik.max(axis=1, keepdims=True)
        p = np.exp(ll)
        return p / p.sum(axis=1, keepdims=True)


class FloorModel:
    """Floor log-likelihood of windows of RSSI from all gateways.

    Parameters
    ----------
    anchors_xyz : (K,3) array_like
        Gateway positions in the site frame (z absolute: floor elevation + mounting height).
    anchor_floor : (K,) int
        Floor index (0..F-1) of each gateway.
    floor_z : (F,) float
        Elevation of each floor, increasing.
    model : PathLoss
        Path loss per anchor (``p0_dbm``, ``exponent``, ``sigma_db``: the spread of one window's
        RSSI around the mean, shadowing and fading together).
    slab_db : float or (F,) float
        Attenuation of the slab that is the floor of level j (index 0 unused), dB.
    sensitivity_dbm : float or (K,)
        Below this a gateway reports nothing.
    p_miss : float
        Probability that a gateway misses a device it could hear in a window (duty cycle,
        packet loss, the phone silent).  Keeps one missing report from vetoing a floor.
    voids : sequence of F sequences of (M,2) arrays, optional
        Where floor j has no slab (atrium).  A straight path from device to gateway that passes
        a slab's elevation inside a void of that floor crosses no slab there.
    candidates : sequence of F (G_f,2) arrays, optional
        Candidate device positions per floor.  Default: a ``grid_step`` grid over ``outlines``
        (or the gateways' bounding box plus ``margin``), minus the voids.
    outlines : sequence of F (M,2) arrays, optional
    grid_step, margin : float
        Metres.
    device_h : float
        Device height above its floor, metres.
    offsets_db : sequence of float
        Per-device power offsets marginalised over (phones are not calibrated), dB.
    offset_sd_db : float
        Gaussian prior on that offset.
    dtype : {"float32", "float64"}
        Precision of the matrix products over the candidate grid (the cost of a call).
        float32 is faster where BLAS has the cores; the log-likelihoods move by < 0.001 nat.

    Examples
    --------
    >>> import numpy as np
    >>> from locate import PathLoss
    >>> gw = np.array([[0, 0, 3.0], [20, 0, 3.0], [0, 0, 8.0], [20, 0, 8.0]])
    >>> fm = FloorModel(gw, [0, 0, 1, 1], [0.0, 5.0], PathLoss(-59, 2.5, 5.0), slab_db=18,
    ...                 grid_step=2.0)
    >>> lk = fm.loglik(np.array([[-75.0, -85.0, np.nan, np.nan]]))
    >>> lk.posterior().round(3)
    array([[1., 0.]])
    """

    def __init__(self, anchors_xyz, anchor_floor, floor_z, model, slab_db=15.0, sensitivity_dbm=-95.0,
                 p_miss=0.05, voids=None, candidates=None, outlines=None, grid_step=3.0, margin=5.0,
                 device_h=1.2, offsets_db=(0.0,), offset_sd_db=3.0, dtype="float64"):
        a = np.asarray(anchors_xyz, dtype=float)
        if a.ndim != 2 or a.shape[1] != 3 or a.shape[0] < 1 or not np.all(np.isfinite(a)):
            raise InvalidParameterError("anchors_xyz", f"must be a finite (K,3) array, got shape {a.shape}")
        k = a.shape[0]
        fz = np.asarray(floor_z, dtype=float).reshape(-1)
        if fz.size < 1 or not np.all(np.diff(fz) > 0):
            raise InvalidParameterError("floor_z", "must be increasing, one elevation per floor")
        nf = fz.size
        af = np.asarray(anchor_floor, dtype=int).reshape(-1)
        if af.shape != (k,) or af.min() < 0 or af.max() >= nf:
            raise InvalidParameterError("anchor_floor", f"must be {k} floor indices in 0..{nf - 1}")
        if not (0 <= p_miss < 1):
            raise InvalidParameterError("p_miss", f"must be in [0, 1), got {p_miss}")
        if not (grid_step > 0 and device_h >= 0 and offset_sd_db > 0):
            raise InvalidParameterError("grid_step", "grid_step and offset_sd_db must be > 0, device_h >= 0")
        if dtype not in ("float32", "float64"):
            raise InvalidParameterError("dtype", f"must be 'float32' or 'float64', got {dtype!r}")
        self.dtype = np.dtype(dtype)
        self.anchors_xyz, self.anchor_floor, self.floor_z = a, af, fz
        self.p0, self.n_exp, self.sigma = model.per_anchor(k)
        self.slab_db = _per("slab_db", slab_db, nf)
        self.sensitivity = _per("sensitivity_dbm", sensitivity_dbm, k)
        self.p_miss = float(p_miss)
        self.device_h = float(device_h)
        self.voids = [[_as_polygon(p, f"voids[{j}]") for p in (voids[j] if voids else [])] for j in range(nf)]
        if voids is not None and len(voids) != nf:
            raise InvalidParameterError("voids", f"must have one list per floor ({nf}), got {len(voids)}")
        self.offsets = np.asarray(offsets_db, dtype=float).reshape(-1)
        w = -0.5 * (self.offsets / offset_sd_db) ** 2
        self.log_w_offset = w - logsumexp(w)
        if candidates is not None:
            if len(candidates) != nf:
                raise InvalidParameterError("candidates", f"must have one array per floor ({nf})")
            self.candidates = [np.asarray(c, dtype=float).reshape(-1, 2) for c in candidates]
        else:
            self.candidates = [self._grid(f, outlines, grid_step, margin) for f in range(nf)]
        if any(len(c) == 0 for c in self.candidates):
            raise InvalidParameterError("candidates", "every floor needs at least one candidate point")
        self.grid_var = (float(grid_step) ** 2 / 12.0) if candidates is None else 0.0
        self._tables = [self._table(f) for f in range(nf)]

    @property
    def n_floors(self) -> int:
        return self.floor_z.size

    def _grid(self, f, outlines, step, margin) -> np.ndarray:
        if outlines is not None:
            ring = _as_polygon(outlines[f], f"outlines[{f}]")
            lo, hi = ring.min(axis=0), ring.max(axis=0)
        else:
            lo = self.anchors_xyz[:, :2].min(axis=0) - margin
            hi = self.anchors_xyz[:, :2].max(axis=0) + margin
        gx = np.arange(lo[0] + step / 2, hi[0], step)
        gy = np.arange(lo[1] + step / 2, hi[1], step)
        g = np.stack(np.meshgrid(gx, gy, indexing="ij"), axis=-1).reshape(-1, 2)
        keep = np.ones(len(g), bool)
        if outlines is not None:
            keep &= points_in_polygon(g, ring)
        for v in self.voids[f]:
            keep &= ~points_in_polygon(g, v)  # nobody walks in the atrium
        return g[keep]

    def slab_loss(self, xy, f: int) -> np.ndarray:
        """Slab attenuation (P,K) dB between devices at ``xy`` (P,2) on floor ``f`` and each gateway."""
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        pz = self.floor_z[f] + self.device_h
        out = np.zeros((len(xy), self.anchor_floor.size))
        for kk in range(self.anchor_floor.size):
            fk = self.anchor_floor[kk]
            lo, hi = min(f, fk), max(f, fk)
            for j in range(lo + 1, hi + 1):
                loss = np.full(len(xy), self.slab_db[j])
                if self.voids[j]:
                    # Where the straight path passes the slab's elevation (the floor of j).
                    s = (self.floor_z[j] - pz) / (self.anchors_xyz[kk, 2] - pz)
                    cross = xy + s * (self.anchors_xyz[kk, :2] - xy)
                    for v in self.voids[j]:
                        loss[points_in_polygon(cross, v)] = 0.0
                out[:, kk] += loss
        return out

    def mean_rssi(self, xy, f: int) -> np.ndarray:
        """Mean RSSI (P,K) dBm at every gateway from devices at ``xy`` (P,2) on floor ``f``."""
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        d = np.sqrt(
            np.sum((xy[:, None, :] - self.anchors_xyz[None, :, :2]) ** 2, axis=2)
            + (self.anchors_xyz[None, :, 2] - self.floor_z[f] - self.device_h) ** 2
        )
        return self.p0 - 10.0 * self.n_exp * np.log10(np.maximum(d, 0.5)) - self.slab_loss(xy, f)

    def _censored(self, M) -> list[np.ndarray]:
        # log(p_miss + (1 - p_miss) Phi((s - M - o) / sigma)) per offset o.
        out = []
        for o in self.offsets:
            lphi = log_ndtr((self.sensitivity - M - o) / self.sigma)
            if self.p_miss > 0:
                lphi = np.logaddexp(np.log(self.p_miss), np.log1p(-self.p_miss) + lphi)
            out.append(lphi)
        return out

    def _table(self, f):
        M = self.mean_rssi(self.candidates[f], f)
        s2 = self.sigma**2
        g = self.candidates[f]
        gg = np.column_stack([g[:, 0] ** 2, g[:, 0] * g[:, 1], g[:, 1] ** 2])
        cens = self._censored(M)
        Mc = M - _REF_DBM  # centred: the expanded squares stay small, float32 is enough
        dt = self.dtype
        return {"M": Mc.astype(dt), "M_s2": (Mc / s2).astype(dt), "M2_s2": (Mc**2 / s2).astype(dt),
                "cens": [c.astype(dt) for c in cens], "gg": gg}

    def _heard_terms(self, r, h):
        s2 = self.sigma**2
        r0 = np.where(h, r - _REF_DBM, 0.0)
        A = np.sum(r0**2 / s2, axis=1)
        Rr = np.sum(r0 / s2, axis=1)
        E = h @ (1.0 / s2)
        norm = -(h @ (np.log(self.sigma) + _LOG_SQRT_2PI)) + h.sum(axis=1) * np.log1p(-self.p_miss)
        return (r0 / s2).astype(self.dtype), A, Rr, E, norm

    def _membership(self, zones):
        # (G_f, Z) 0/1: which candidate points of floor f lie in which zone.
        out = []
        for f in range(self.n_floors):
            g = self.candidates[f]
            z = zones.assign(g, np.full(len(g), f))
            m = np.zeros((len(g), len(zones)))
            m[np.flatnonzero(z >= 0), z[z >= 0]] = 1.0
            out.append(m)
        return out

    def loglik(self, rssi_dbm, zones=None) -> FloorLikelihood:
        """Floor log-likelihood of each row of ``rssi_dbm`` (N,K), NaN = not heard.

        With ``zones`` (a :class:`locate.zones.ZoneIndex`) also the per-zone posterior mass
        ``zone_p`` (N,Z), which lets visits be decided on probabilities rather than on a point
        estimate near a wall.
        """
        r = np.asarray(rssi_dbm, dtype=float)
        k = self.anchor_floor.size
        if r.ndim != 2 or r.shape[1] != k:
            raise InvalidParameterError("rssi_dbm", f"must be (N,{k}), got shape {r.shape}")
        n, nf = r.shape[0], self.n_floors
        ll = np.zeros((n, nf))
        xy = np.full((n, nf, 2), np.nan)
        cov = np.full((n, nf, 2, 2), np.nan)
        heard = np.isfinite(r)
        nh = heard.sum(axis=1)
        memb = self._membership(zones) if zones is not None else None
        zp = np.zeros((n, len(zones))) if zones is not None else None
        for s in range(0, n, _CHUNK):
            sl = slice(s, min(n, s + _CHUNK))
            rows = np.flatnonzero(nh[sl] > 0) + s
            if rows.size == 0:
                continue
            h = heard[rows].astype(self.dtype)
            rs2, A, Rr, E, norm = self._heard_terms(r[rows], heard[rows])
            for f in range(nf):
                tb, g = self._tables[f], self.candidates[f]
                base = A[:, None] - 2 * (rs2 @ tb["M"].T) + h @ tb["M2_s2"].T  # sum h (r-M)^2/s2
                lin = Rr[:, None] - h @ tb["M_s2"].T  # sum h (r-M)/s2
                P = np.empty((len(self.offsets), rows.size, len(g)))
                for oi, o in enumerate(self.offsets):
                    P[oi] = -0.5 * (base - 2 * o * lin + o * o * E[:, None])
                    P[oi] += (1.0 - h) @ tb["cens"][oi].T
                    P[oi] += self.log_w_offset[oi]
                # log-sum-exp over offsets and candidates at once, keeping the weights.
                mx = P.max(axis=(0, 2))
                np.subtract(P, mx[None, :, None], out=P)
                np.exp(P, out=P)
                wg = P.sum(axis=0)
                Z = wg.sum(axis=1)
                ll[rows, f] = mx + np.log(Z) + norm - np.log(len(g))
                wg /= Z[:, None]
                mu = wg @ g
                m2 = wg @ tb["gg"]  # E[x^2], E[xy], E[y^2]
                c = np.empty((rows.size, 2, 2))
                c[:, 0, 0] = m2[:, 0] - mu[:, 0] ** 2 + self.grid_var
                c[:, 1, 1] = m2[:, 2] - mu[:, 1] ** 2 + self.grid_var
                c[:, 0, 1] = c[:, 1, 0] = m2[:, 1] - mu[:, 0] * mu[:, 1]
                xy[rows, f], cov[rows, f] = mu, c
                if memb is not None:
                    zp[rows] += wg @ memb[f]
        return FloorLikelihood(loglik=ll, xy=xy, cov=cov, n_heard=nh, zone_p=zp)

    def loglik_at(self, rssi_dbm, xy) -> np.ndarray:
        """Floor log-likelihood (N,F) at known positions ``xy`` (N,2) (e.g. a tracker's),
        power offset marginalised; 0 where nothing heard or xy is NaN."""
        r = np.asarray(rssi_dbm, dtype=float)
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        if r.shape != (len(xy), self.anchor_floor.size):
            raise InvalidParameterError("rssi_dbm", f"must be (N,{self.anchor_floor.size}) matching xy")
        heard = np.isfinite(r)
        ok = heard.any(axis=1) & np.isfinite(xy).all(axis=1)
        ll = np.zeros((len(xy), self.n_floors))
        if not np.any(ok):
            return ll
        rr, hh = r[ok], heard[ok]
        for f in range(self.n_floors):
            M = self.mean_rssi(xy[ok], f)
            cens = self._censored(M)
            parts = []
            for oi, o in enumerate(self.offsets):
                z = (rr - M - o) / self.sigma
                lh = -0.5 * z**2 - np.log(self.sigma) - _LOG_SQRT_2PI + np.log1p(-self.p_miss)
                parts.append(np.where(hh, lh, cens[oi]).sum(axis=1) + self.log_w_offset[oi])
            ll[ok, f] = logsumexp(np.stack(parts), axis=0)
        return ll


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


class FloorHMM:
    """Hidden Markov model of each device's floor over regular time steps, batched.

    The hidden state is (floor, time on that floor) with ages 0..D-1, D-1 meaning "at least
    ``min_dwell_s``": only that age can change floor, which is the minimum-duration prior.
    From it a change f -> g has probability ``p_change`` per step where ``allowed`` (near a
    connector linking f and g), ``p_leak`` elsewhere (so a wrong start can still recover).

    Parameters
    ----------
    n_floors : int
    dt : float
        Step, seconds.
    min_dwell_s : float
        Minimum time between floor changes (an escalator ride, 15-30 s).
    p_change : float
        Per-step change probability next to a connector.
    p_leak : float
        Per-step change probability anywhere else (1e-20: a change away from any connector
        needs ~46 nats of evidence, a round trip ~92, more than an atrium balcony gives).
    emission_scale : float
        Multiplies the per-window log-likelihoods.  Below 1 it tempers evidence that is
        correlated from one window to the next: static shadowing, a device standing still,
        the same single gateway reporting the same median window after window.  0.5 (each
        window counts half) stopped a shopper parked by a lift on firmware_sim's sample mall
        from flickering between floors, and changes nothing on the test scenario.

    Examples
    --------
    >>> hmm = FloorHMM(2, dt=1.0, min_dwell_s=3)
    >>> ll = np.zeros((8, 1, 2)); ll[:, 0, 0] = 5.0; ll[4:, 0, :] = [0.0, 5.0]
    >>> ok = np.ones((8, 1, 2, 2), bool)
    >>> hmm.viterbi(ll, ok)[:, 0]
    array([0, 0, 0, 0, 1, 1, 1, 1])
    """

    def __init__(self, n_floors: int, dt: float = 1.0, min_dwell_s: float = 15.0, p_change: float = 0.05,
                 p_leak: float = 1e-20, emission_scale: float = 0.5):
        if n_floors < 1:
            raise InvalidParameterError("n_floors", f"must be >= 1, got {n_floors}")
        if not dt > 0:
            raise InvalidParameterError("dt", f"must be > 0, got {dt}")
        if not (0 < p_change < 1 and 0 <= p_leak < p_change):
            raise InvalidParameterError("p_change", f"need 0 <= p_leak < p_change < 1, got {p_leak}, {p_change}")
        if not (min_dwell_s >= 0 and emission_scale > 0):
            raise InvalidParameterError("min_dwell_s", "min_dwell_s >= 0 and emission_scale > 0 required")
        self.n_floors, self.dt = int(n_floors), float(dt)
        self.D = max(2, int(np.ceil(min_dwell_s / dt)) + 1)
        self.p_change, self.p_leak, self.emission_scale = float(p_change), float(p_leak), float(emission_scale)

    # --- transition pieces -------------------------------------------------------------
    def _pc(self, allowed) -> np.ndarray:
        """(N,F,F) change probabilities with a zero diagonal; rows sum below 1."""
        a = np.asarray(allowed, bool)
        nf = self.n_floors
        pc = np.where(a, self.p_change, self.p_leak)
        pc = pc * (1 - np.eye(nf, dtype=bool))
        tot = pc.sum(axis=2, keepdims=True)
        return np.where(tot > 0.5, pc * 0.5 / np.maximum(tot, 1e-300), pc)

    def _emis(self, ll) -> np.ndarray:
        ll = np.asarray(ll, dtype=float) * self.emission_scale
        ll = np.where(np.isfinite(ll), ll, -1e300)
        return np.exp(ll - ll.max(axis=-1, keepdims=True))

    def start(self, n: int, prior=None) -> np.ndarray:
        """Initial filter state (n,F,D): floor ``prior`` (n,F) or uniform, free to change."""
        alpha = np.zeros((n, self.n_floors, self.D))
        alpha[:, :, -1] = 1.0 / self.n_floors if prior is None else np.asarray(prior, float)
        return alpha

    def _propagate(self, alpha, pc):
        stay = alpha[:, :, -1]
        new = np.zeros_like(alpha)
        new[:, :, 1:] = alpha[:, :, :-1]
        new[:, :, -1] += stay * (1 - pc.sum(axis=2))
        new[:, :, 0] += np.einsum("nf,nfg->ng", stay, pc)
        return new

    def step(self, alpha, ll, allowed) -> tuple[np.ndarray, np.ndarray]:
        """One online filtering step.

        ``alpha`` (N,F,D) state after the previous step, ``ll`` (N,F) this window's
        log-likelihood, ``allowed`` (N,F,F) from the previous position.  Returns the new state
        and the filtered floor probabilities (N,F).
        """
        a = self._propagate(alpha, self._pc(allowed)) * self._emis(ll)[:, :, None]
        a /= a.sum(axis=(1, 2), keepdims=True)
        return a, a.sum(axis=2)

    # --- batch over time ---------------------------------------------------------------
    def _check(self, ll, allowed):
        ll = np.asarray(ll, dtype=float)
        if ll.ndim != 3 or ll.shape[2] != self.n_floors:
            raise InvalidParameterError("loglik", f"must be (T,N,{self.n_floors}), got shape {ll.shape}")
        allowed = np.asarray(allowed, bool)
        if allowed.shape != ll.shape + (self.n_floors,):
            raise InvalidParameterError("allowed", f"must be {ll.shape + (self.n_floors,)}, got {allowed.shape}")
        return ll, allowed

    def filter(self, loglik, allowed, prior=None) -> np.ndarray:
        """Causal floor probabilities (T,N,F).  ``allowed[t]`` gates the change t -> t+1."""
        ll, allowed = self._check(loglik, allowed)
        T, N, _ = ll.shape
        out = np.empty_like(ll)
        a = self.start(N, prior)
        a = a * self._emis(ll[0])[:, :, None]
        a /= a.sum(axis=(1, 2), keepdims=True)
        out[0] = a.sum(axis=2)
        for t in range(1, T):
            a, out[t] = self.step(a, ll[t], allowed[t - 1])
        return out

    def smooth(self, loglik, allowed, prior=None) -> np.ndarray:
        """Forward-backward floor probabilities (T,N,F) given all windows."""
        ll, allowed = self._check(loglik, allowed)
        T, N, F = ll.shape
        alphas = np.empty((T, N, F, self.D))
        a = self.start(N, prior) * self._emis(ll[0])[:, :, None]
        alphas[0] = a / a.sum(axis=(1, 2), keepdims=True)
        for t in range(1, T):
            alphas[t], _ = self.step(alphas[t - 1], ll[t], allowed[t - 1])
        beta = np.ones((N, F, self.D))
        out = np.empty_like(ll)
        g = alphas[-1] * beta
        out[-1] = g.sum(axis=2) / g.sum(axis=(1, 2))[:, None]
        for t in range(T - 2, -1, -1):
            pc = self._pc(allowed[t])
            w = self._emis(ll[t + 1])[:, :, None] * beta
            nb = np.empty_like(beta)
            nb[:, :, :-1] = w[:, :, 1:]
            nb[:, :, -1] = (1 - pc.sum(axis=2)) * w[:, :, -1] + np.einsum("nfg,ng->nf", pc, w[:, :, 0])
            beta = nb / nb.sum(axis=(1, 2), keepdims=True)
            g = alphas[t] * beta
            out[t] = g.sum(axis=2) / g.sum(axis=(1, 2))[:, None]
        return out

    def viterbi(self, loglik, allowed, prior=None) -> np.ndarray:
        """Most probable floor sequence (T,N) int under the dwell and connector constraints."""
        ll, allowed = self._check(loglik, allowed)
        T, N, F = ll.shape
        D = self.D
        lls = ll * self.emission_scale
        lls = np.where(np.isfinite(lls), lls, -1e300)
        with np.errstate(divide="ignore"):
            lp0 = np.full((N, F), -np.log(F)) if prior is None else np.log(np.asarray(prior, float))
        delta = np.full((N, F, D), -np.inf)
        delta[:, :, -1] = lp0 + lls[0]
        from_g = np.zeros((T, N, F), np.int16)  # age 0 at t: came from floor from_g (age D-1)
        from_stay = np.zeros((T, N, F), bool)  # age D-1 at t: came from age D-1 (else D-2)
        rows = np.arange(N)[:, None]
        for t in range(1, T):
            pc = self._pc(allowed[t - 1])
            with np.errstate(divide="ignore"):
                lpc = np.log(pc)
                lstay = np.log1p(-pc.sum(axis=2))
            stay = delta[:, :, -1]
            cand = stay[:, :, None] + lpc  # (N, from, to)
            from_g[t] = np.argmax(cand, axis=1)
            new = np.empty_like(delta)
            new[:, :, 0] = np.take_along_axis(cand, from_g[t][:, None, :].astype(np.intp), axis=1)[:, 0, :]
            new[:, :, 1:-1] = delta[:, :, 0:-2]
            keep = stay + lstay
            from_stay[t] = keep >= delta[:, :, -2]
            new[:, :, -1] = np.where(from_stay[t], keep, delta[:, :, -2])
            delta = new + lls[t][:, :, None]
            delta -= delta.max(axis=(1, 2), keepdims=True)  # keep the numbers small
        path = np.empty((T, N), int)
        flat = np.argmax(delta.reshape(N, -1), axis=1)
        f, a = flat // D, flat % D
        path[-1] = f
        for t in range(T - 1, 0, -1):
            to0 = a == 0
            top = a == D - 1
            pf = np.where(to0, from_g[t][rows[:, 0], f], f)
            pa = np.where(to0, D - 1, np.where(top & from_stay[t][rows[:, 0], f], D - 1, a - 1))
            f, a = pf, pa
            path[t - 1] = f
        return path
