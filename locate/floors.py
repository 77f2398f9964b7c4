"""Floors: per-window floor likelihood from all gateways (the HMM over time: floor_hmm).

Height is practically unobservable from ceiling gateways, so the floor is a classification
over time (DESIGN.md, radio realism).  :class:`FloorModel` scores each floor hypothesis with
every gateway: the ones that heard the device (Gaussian in dB around the log-distance mean,
minus the attenuation of each slab crossed) and the ones that did not (censored:
``P(rssi < sensitivity)``, plus a miss probability for scan duty cycle and packet loss).
The unheard gateways carry much of the evidence: a device on L2 is *not* heard by the L1
gateways under it.  The xy is unknown, so each floor's likelihood is marginalised over a
coarse grid of candidate points on that floor (and over a per-device power offset).

:class:`FloorHMM` (in :mod:`locate.floor_hmm`) smooths the per-window scores over time; a floor
change is allowed only where the device is in or near a connector (:class:`Connectors`, in
:mod:`locate.connectors`) that links the two floors.  Both are re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr, logsumexp

from .connectors import Connectors
from .errors import InvalidParameterError
from .floor_hmm import FloorHMM
from .zones import _as_polygon, points_in_polygon

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
