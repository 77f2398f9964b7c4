"""Vectorized maximum-likelihood multilateration from RSSI.

The model is log-distance path loss with Gaussian shadowing in dB (:class:`locate.PathLoss`), so
the maximum-likelihood fix minimises the weighted sum of squared *dB* residuals

    r_k = rssi_k - (p0_k - 10 n_k log10 d_k) - b,    weight 1 / sigma_k^2,

where ``d_k`` is the 3-D distance from a device at height ``z`` to anchor ``k`` and ``b`` is an
optional per-device power offset. Inverting RSSI into ranges first and solving least squares on
ranges (:mod:`locate.baseline`) turns the symmetric dB noise into skewed, heteroscedastic range
noise and loses accuracy; we never do that.

With ``sensitivity_dbm`` the likelihood is censored (Tobit): an anchor that did not hear the
device adds -2 log Phi((sensitivity - mean) / sigma). Without it the fix uses detections only
and is pulled towards far anchors heard on a lucky fade (selection bias): on the 80 x 50 m test
floor that is 1.37 x the CRLB against 1.09 x with the censored likelihood and the floor box.

How it runs, for all devices at once (no Python loop per device):

1. Start: every device's likelihood of its detections is evaluated on a grid of candidate
   points shared by all devices. The squared residuals expand into one small matrix product,
   so the grid costs BLAS calls, not a Python loop; the best candidate is the start (it does not
   collapse onto the loudest anchor). With censoring, rows whose second-best basin is close in
   cost are also solved from there (multi-start) and the better optimum kept.
2. Levenberg-Marquardt on the batch: per device a 2x2 system accumulated over the anchors as
   scalars (no (N, K, K) temporaries); the Newton Hessian where it is positive definite
   (Gauss-Newton crawls with 6 dB residuals), Gauss-Newton elsewhere; Marquardt damping,
   accept/reject per device, a step cap, projection onto the box, IRLS for a robust loss. With
   ``estimate_offset`` the offset is profiled out (closed form, or a 1-D Newton with censoring),
   so the system stays 2x2 and its Schur complement is the position's information.
3. Covariance: the inverse Fisher information at the estimate (plus the prior precision when a
   prior is given), not a heuristic scale.

Devices are processed in chunks, stored anchors-major (K, chunk) so the per-device sums run
along contiguous memory; rows still iterating after a first pass are pooled across chunks so
a few slow rows do not keep every chunk looping. Extra memory is a few hundred bytes per device.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr

from .errors import InvalidParameterError
from .pathloss import DB_PER_NEPER, PathLoss

__all__ = [
    "Fix",
    "multilaterate",
    "STATUS_CONVERGED",
    "STATUS_MAX_ITER",
    "STATUS_TOO_FEW",
    "STATUS_ILL_CONDITIONED",
    "STATUS_NOT_HEARD",
]

log = logging.getLogger(__name__)

STATUS_CONVERGED = 0  #: step below ``xtol``: ok
STATUS_MAX_ITER = 1  #: ``max_iter`` reached; the fix is still determined (ok) but may be rough
STATUS_TOO_FEW = 2  #: fewer than ``min_anchors`` heard: best-effort xy, ok False
STATUS_ILL_CONDITIONED = 3  #: Fisher information (near) singular: best-effort xy, ok False
STATUS_NOT_HEARD = 4  #: no anchor heard: xy NaN, ok False

_LOSSES = {"l2": None, "huber": 1.345, "cauchy": 2.385}  # default scales in sigmas (95 % efficiency)
_COND_MIN = 1e-9  # smallest/largest eigenvalue of the Fisher information below which: ill-conditioned
_TINY = 1e-12
_FIRST_PASS = 10  # iterations per chunk before unfinished rows are pooled (see multilaterate)


@dataclass(frozen=True, eq=False)
class Fix:
    """Result of :func:`multilaterate`; every field is an array over the N devices.

    Attributes
    ----------
    xy : ndarray, shape (N, 2)
        Position estimate, metres. NaN where nothing was heard; a best-effort estimate (the
        damped solver's result) where ``ok`` is False for another reason.
    cov : ndarray, shape (N, 2, 2)
        Inverse Fisher information at the estimate (with the prior precision added when a prior
        is given), m^2. NaN where ``ok`` is False.
    ok : ndarray of bool, shape (N,)
        True where the fix is determined: at least ``min_anchors`` heard (or a prior given) and
        a well-conditioned information matrix.
    n_heard : ndarray of int, shape (N,)
        Number of anchors heard (non-NaN RSSI).
    iterations : ndarray of int, shape (N,)
        Levenberg-Marquardt iterations used (summed over both starts where a second start ran,
        so up to 2 ``max_iter``).
    status : ndarray of int8, shape (N,)
        One of the ``STATUS_*`` codes of this module.
    cost : ndarray, shape (N,)
        Final sum of squared standardised residuals (robust loss: sum of 2 rho(u)); without a
        prior term. About chi-square with n_heard - 2 (- 1 with offset) degrees of freedom.
    offset_db : ndarray or None, shape (N,)
        Estimated per-device power offset (dB, added to every anchor's P0) when
        ``estimate_offset`` was set, else None.
    """

    xy: np.ndarray
    cov: np.ndarray
    ok: np.ndarray
    n_heard: np.ndarray
    iterations: np.ndarray
    status: np.ndarray
    cost: np.ndarray
    offset_db: np.ndarray | None = None

    def __len__(self) -> int:
        return self.xy.shape[0]


# --------------------------------------------------------------------------- validation


def _as_int(name, value, lo):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        raise InvalidParameterError(name, f"must be an integer >= {lo}, got {value!r}")
    return int(value)


def _check_anchors(anchors_xyz) -> np.ndarray:
    a = np.asarray(anchors_xyz, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 3 or a.shape[0] < 1:
        raise InvalidParameterError("anchors_xyz", f"must have shape (K, 3), got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise InvalidParameterError("anchors_xyz", "must be finite")
    return a


def _check_model(model, k) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not isinstance(model, PathLoss):
        raise InvalidParameterError("model", f"must be a locate.PathLoss, got {type(model).__name__}")
    return model.per_anchor(k)


def _check_z(z, n) -> np.ndarray:
    zz = np.asarray(z, dtype=np.float64)
    if zz.ndim > 1 or (zz.ndim == 1 and zz.shape[0] != n):
        raise InvalidParameterError("z", f"must be a scalar or shape ({n},), got {zz.shape}")
    if not np.all(np.isfinite(zz)):
        raise InvalidParameterError("z", "must be finite")
    if np.any(zz < 0):
        raise InvalidParameterError("z", "must be >= 0 (height in the site frame, metres)")
    return zz


def _check_bounds(bounds):
    if bounds is None:
        return None
    b = np.asarray(bounds, dtype=np.float64)
    if b.shape != (4,) or not np.all(np.isfinite(b)) or b[0] >= b[2] or b[1] >= b[3]:
        raise InvalidParameterError("bounds", f"must be finite (xmin, ymin, xmax, ymax) with min < max, got {bounds!r}")
    return b


def _check_prior(prior_xy, prior_cov, n):
    if prior_xy is None and prior_cov is None:
        return None
    if prior_xy is None or prior_cov is None:
        raise InvalidParameterError("prior_cov" if prior_cov is None else "prior_xy",
                                    "prior_xy and prior_cov must be given together")
    m = np.asarray(prior_xy, dtype=np.float64)
    if m.shape == (2,):
        m = np.broadcast_to(m, (n, 2))
    if m.shape != (n, 2) or not np.all(np.isfinite(m)):
        raise InvalidParameterError("prior_xy", f"must be finite with shape (2,) or ({n}, 2), got {m.shape}")
    c = np.asarray(prior_cov, dtype=np.float64)
    if c.shape == (2, 2):
        c = np.broadcast_to(c, (n, 2, 2))
    if c.shape != (n, 2, 2) or not np.all(np.isfinite(c)):
        raise InvalidParameterError("prior_cov", f"must be finite with shape (2, 2) or ({n}, 2, 2), got {c.shape}")
    a, b, b2, d = c[:, 0, 0], c[:, 0, 1], c[:, 1, 0], c[:, 1, 1]
    det = a * d - b * b
    if np.any(b != b2) or np.any(a <= 0) or np.any(det <= 0):
        raise InvalidParameterError("prior_cov", "must be symmetric positive definite")
    # precision (inverse covariance) as three (N,) arrays
    return m, np.stack([d / det, -b / det, a / det], axis=1)


# --------------------------------------------------------------------------- core


class _Problem:
    """Per-call constants: anchor geometry and the model in the solver's units."""

    def __init__(self, anchors, p0, n, sigma, loss, loss_scale, offset, bounds, sens):
        self.ax = anchors[:, 0].copy()
        self.ay = anchors[:, 1].copy()
        self.az = anchors[:, 2].copy()
        self.p0 = p0
        self.inv_sigma = 1.0 / sigma
        self.g = n * DB_PER_NEPER  # d(rssi)/d(ln d)
        self.h = 0.5 * self.g  # d(rssi)/d(ln d^2)
        self.loss = loss
        self.c = loss_scale
        self.offset = offset
        self.bounds = bounds
        self.sens = sens  # (K,) sensitivity, dBm, or None: non-detections carry no information


class _Chunk:
    """Data of the rows still iterating, in standardised units (divided by sigma).

    Entries of anchors that heard the device hold (rssi - p0)/sigma; with a sensitivity, entries
    of anchors that did not hear it hold (sensitivity - p0)/sigma, so that the same expression
    gives the standardised residual of a detection and the standardised censoring margin of a
    non-detection.
    """

    def __init__(self, pb: _Problem, rssi, z):
        # anchors-major layout (K, n): the per-device sums over anchors then run along
        # contiguous memory, three times faster than reducing rows of 16
        rssi = np.ascontiguousarray(rssi.T)
        heard = ~np.isnan(rssi)
        inv_sigma, p0 = pb.inv_sigma[:, None], pb.p0[:, None]
        self.hsw = heard * inv_sigma  # sqrt of the weight: 1/sigma where heard, else 0
        if pb.sens is None:
            self.cens = None
            self.sw = self.hsw
            self.syp = np.where(heard, (rssi - p0) * inv_sigma, 0.0)
        else:
            self.cens = ~heard
            self.sw = np.broadcast_to(inv_sigma, rssi.shape).copy()
            self.syp = (np.where(heard, rssi, pb.sens[:, None]) - p0) * inv_sigma
        self.swh = self.sw * pb.h[:, None]
        self.swg = self.sw * pb.g[:, None]
        self.S = np.einsum("ij,ij->j", self.hsw, self.hsw)
        self.z_per_row = bool(np.ndim(z))
        dz = pb.az[:, None] - (z[None, :] if self.z_per_row else z)
        self.dz2 = dz * dz  # (K, n) or (K, 1)
        self.n_heard = heard.sum(axis=0)

    def take(self, idx):
        new = object.__new__(_Chunk)
        for k in ("hsw", "syp", "swh", "swg"):
            setattr(new, k, getattr(self, k)[:, idx])
        new.S, new.n_heard = self.S[idx], self.n_heard[idx]
        new.sw = new.hsw if self.sw is self.hsw else self.sw[:, idx]
        new.cens = None if self.cens is None else self.cens[:, idx]
        new.z_per_row = self.z_per_row
        new.dz2 = self.dz2[:, idx] if self.z_per_row else self.dz2
        return new


def _rho2(u, loss, c):
    """2 rho(u) and the IRLS weight psi(u)/u for the standardised residual u."""
    au = np.abs(u)
    if loss == "huber":
        w = np.minimum(1.0, c / np.maximum(au, _TINY))
        r2 = np.where(au <= c, u * u, 2.0 * c * au - c * c)
    else:  # cauchy
        q = (u / c) ** 2
        w = 1.0 / (1.0 + q)
        r2 = c * c * np.log1p(q)
    return r2, w


_SQRT_2PI = np.sqrt(2.0 * np.pi)
_CENS_IRRELEVANT = 6.0  # standardised censoring margin beyond which a non-detection is certain


def _evaluate(pb: _Problem, ch: _Chunk, x, y, b_prev, robust=True):
    """Cost, Gauss-Newton information, gradient and Newton correction at (x, y).

    Returns (cost, hxx, hxy, hyy, gx, gy, nxx, nxy, nyy, b), each (n,) (b None without offset).
    h = sum kappa J J^T is the information (Fisher for the Gaussian terms, offset profiled
    out), g = sum a J the half gradient, n = sum a grad^2(residual) the second-order term
    that turns Gauss-Newton into Newton (large residuals: 6 dB shadowing makes GN crawl).
    """
    def dot(a, b):  # per-device sum over anchors: (K, n) x (K, n) -> (n,)
        return np.einsum("ij,ij->j", a, b)

    dx = x - pb.ax[:, None]  # (K, n)
    dy = y - pb.ay[:, None]
    d2 = dx * dx
    d2 += dy * dy
    d2 += ch.dz2
    t = ch.swg / d2  # sqrt(w) d(rssi)/d(ln d) / d^2
    sr = np.log(d2)
    sr *= ch.swh
    sr += ch.syp  # standardised residual (detections) / censoring margin (non-detections)
    ex = t * dx  # Jacobian of sr w.r.t. x
    ey = t * dy
    hsw = ch.hsw
    kappa = None
    cens_cost = 0.0
    if robust and pb.loss is not None:
        u = sr - hsw * b_prev if pb.offset else sr
        _, kappa = _rho2(u, pb.loss, pb.c)
    cens = ch.cens
    if cens is not None and not pb.offset:
        # a silent anchor whose mean is > 6 sigma below the sensitivity was bound to be
        # silent: log Phi > -1e-9, no information; skip the costly log_ndtr for it
        cens = cens & (sr < _CENS_IRRELEVANT)
    if cens is not None and not cens.any():
        cens = None
    if ch.cens is not None:  # silent entries carry only the censoring weight set below
        if kappa is None:
            kappa = np.ones_like(sr)
        kappa[ch.cens] = 0.0
    b = None
    if cens is not None:
        n = sr.shape[1]
        rows_c = np.nonzero(cens)[1]
        swc = ch.sw[cens]
        v = sr[cens]  # censoring margins without the offset
        if pb.offset:
            # The offset is profiled jointly with the non-detections: a few 1-D Newton steps
            # per row on  sum_heard (sr - sw b)^2 - 2 sum_silent log Phi(v - sw b).
            kh = hsw if kappa is None else kappa * hsw
            sh = dot(kh, hsw)
            srh = dot(kh, sr)
            v0 = v
            b = b_prev.copy()
            for _ in range(4):
                v = v0 - swc * b[rows_c]
                lnp = log_ndtr(v)
                lam = np.exp(-0.5 * v * v - lnp) / _SQRT_2PI
                g1 = b * sh - srh + np.bincount(rows_c, lam * swc, n)
                g2 = sh + np.bincount(rows_c, lam * (v + lam) * swc * swc, n)
                b = b - g1 / np.maximum(g2, _TINY)
            v = v0 - swc * b[rows_c]
        lnp = log_ndtr(v)
        lam = np.exp(-0.5 * v * v - lnp) / _SQRT_2PI  # inverse Mills ratio phi/Phi
        kappa[cens] = lam * (v + lam)
        cens_cost = -2.0 * np.bincount(rows_c, lnp, n)
    if kappa is None:
        kex, key = ex, ey
    else:
        kex, key = kappa * ex, kappa * ey
    hxx = dot(kex, ex)
    hxy = dot(kex, ey)
    hyy = dot(key, ey)
    if pb.offset:
        # Schur complement of the offset; with censoring the silent anchors count with their
        # information weight kappa (their margin moves with the offset too)
        wsw = hsw if cens is None else ch.sw
        ksw = wsw if kappa is None else kappa * wsw
        S = np.maximum(dot(ksw, wsw), _TINY)
        if b is None:
            b = dot(ksw, sr) / S
        sx = dot(ksw, ex)
        sy = dot(ksw, ey)
        hxx -= sx * sx / S
        hxy -= sx * sy / S
        hyy -= sy * sy / S
        rho = sr - hsw * b  # non-detections: hsw = 0, margin handled above
    else:
        rho = sr
    # per-entry multiplier a of the residual's gradient and Hessian
    if kappa is None:
        a = rho
    elif cens is None:
        a = kappa * rho
    else:
        a = kappa * rho
        a[cens] = -lam
    gx = dot(a, ex)
    gy = dot(a, ey)
    # grad^2 of sr: t (I - 2 d d^T / d2)
    q = a * t
    sq = q.sum(axis=0)
    q /= d2
    qx = q * dx
    nxx = sq - 2.0 * dot(qx, dx)
    nxy = -2.0 * dot(qx, dy)
    q *= dy
    nyy = sq - 2.0 * dot(q, dy)
    # cost: sum of squared (or 2 rho of) standardised residuals of the detections
    if robust and pb.loss is not None:
        r2, _ = _rho2(rho, pb.loss, pb.c)
        cost = dot(r2, hsw > 0)
    elif ch.cens is None:
        cost = dot(rho, rho)
    else:
        rh = np.where(ch.cens, 0.0, rho)
        cost = dot(rh, rh)
    return cost + cens_cost, hxx, hxy, hyy, gx, gy, nxx, nxy, nyy, b


def _grid(pb: _Problem, k: int):
    """Candidate start points shared by all devices: a grid over the box."""
    if pb.bounds is not None:
        x0, y0, x1, y1 = pb.bounds
    else:
        x0, x1 = pb.ax.min(), pb.ax.max()
        y0, y1 = pb.ay.min(), pb.ay.max()
        pad = 0.25 * max(x1 - x0, y1 - y0, 4.0)
        x0, x1, y0, y1 = x0 - pad, x1 + pad, y0 - pad, y1 + pad
    target = int(np.clip(8 * k, 64, 256))
    w, h = x1 - x0, y1 - y0
    step = np.sqrt(w * h / target)
    nx = max(2, int(round(w / step)) + 1)
    ny = max(2, int(round(h / step)) + 1)
    gx, gy = np.meshgrid(np.linspace(x0, x1, nx), np.linspace(y0, y1, ny))
    gx, gy = gx.ravel(), gy.ravel()
    cell = max((x1 - x0) / (nx - 1), (y1 - y0) / (ny - 1))
    far = np.hypot(gx[:, None] - gx, gy[:, None] - gy) > 2.5 * cell  # (G, G)
    return gx, gy, far


_MATMUL_ROWS = 48  # OpenBLAS stays single-threaded below ~2^18 multiply-adds per call


def _rows_matmul(at, b):
    """``at.T @ b`` in blocks of rows.

    One product per chunk would let a multi-threaded BLAS fan out; on a busy box (ingest next
    to other services, CI with two cores) its spinning threads made the start 10-30x slower
    than one thread. Small blocks keep BLAS on the calling thread at no cost when idle.
    """
    n = at.shape[1]
    out = np.empty((n, b.shape[1]))
    for i in range(0, n, _MATMUL_ROWS):
        np.matmul(at[:, i:i + _MATMUL_ROWS].T, b, out=out[i:i + _MATMUL_ROWS])
    return out


def _start(pb, ch, z_ref, grid, second_gap):
    """Best grid candidate per row by the Gaussian likelihood of the detections.

    Also returns a second start for rows where another basin is plausible: the best candidate
    at least ``2.5`` grid steps from the first whose cost is within ``second_gap`` of it
    (a mirror solution of a few anchors, a flat ridge); -1 where there is none.
    """
    gx, gy, far = grid
    d2 = (gx[:, None] - pb.ax) ** 2 + (gy[:, None] - pb.ay) ** 2 + (pb.az - z_ref) ** 2
    L = np.log(d2)  # (G, K)
    # sum_k (syp + swh L)^2 = const + 2 (syp swh) . L + swh^2 . L^2, over detections only
    hswh = ch.hsw * pb.h[:, None]  # (K, n)
    lhs = np.concatenate([2.0 * (ch.syp if ch.cens is None else ch.syp * (ch.hsw > 0)) * hswh,
                          hswh * hswh], axis=0)
    cost = _rows_matmul(lhs, np.concatenate([L, L * L], axis=1).T)  # (n, G)
    if pb.offset:
        s = np.einsum("ij,ij->j", ch.hsw, ch.syp)[:, None] + _rows_matmul(ch.hsw * hswh, L.T)
        cost -= s * s / np.maximum(ch.S, _TINY)[:, None]
    best = np.argmin(cost, axis=1)
    rows = np.arange(best.shape[0])
    c1 = cost[rows, best]
    if second_gap <= 0:
        return gx[best], gy[best], np.full(best.shape[0], -1)
    cost = np.where(far[best], cost, np.inf)
    second = np.argmin(cost, axis=1)
    use2 = cost[rows, second] - c1 < second_gap
    return gx[best], gy[best], np.where(use2, second, -1)


def _lm(pb, ch, x, y, b0, prior, max_iter, xtol, max_step):
    """Batched Levenberg-Marquardt from (x, y).

    Returns a dict of per-row arrays: x, y, cost, fcost (with the prior term), b (offset or
    None), h (n, 3) information (xx, xy, yy) at the accepted point, iters, done.
    """
    n = x.shape[0]
    rows = np.arange(n)
    pm = pp = None
    if prior is not None:
        pm, pp = prior

    def full_cost(cost, x, y, rows):
        if prior is None:
            return cost
        ex, ey = x - pm[rows, 0], y - pm[rows, 1]
        P = pp[rows]
        return cost + P[:, 0] * ex * ex + 2 * P[:, 1] * ex * ey + P[:, 2] * ey * ey

    sysm = list(_evaluate(pb, ch, x, y, b0))  # cost, hxx, hxy, hyy, gx, gy, nxx, nxy, nyy, b
    fcost = full_cost(sysm[0], x, y, rows).copy()
    lam = np.full(n, 1e-3)
    iters = np.zeros(n, np.int32)
    done = np.zeros(n, bool)
    X, Y, C, F = x.copy(), y.copy(), sysm[0].copy(), fcost.copy()
    H = np.stack([sysm[1], sysm[2], sysm[3]], axis=1)  # information at the accepted point
    B = None if sysm[9] is None else sysm[9].copy()
    act = rows
    sub = ch
    live = np.ones(n, bool)

    def writeback(act, x, y, sysm, fcost):
        X[act], Y[act], C[act], F[act] = x, y, sysm[0], fcost
        H[act, 0], H[act, 1], H[act, 2] = sysm[1], sysm[2], sysm[3]
        if B is not None:
            B[act] = sysm[9]

    for _ in range(max_iter):
        cost, hxx, hxy, hyy, gx, gy, nxx, nxy, nyy, b = sysm
        # Newton where its Hessian is positive definite, Gauss-Newton elsewhere
        a_, b_, c_ = hxx + nxx, hxy + nxy, hyy + nyy
        pd = (a_ > 0) & (c_ > 0) & (a_ * c_ - b_ * b_ > 1e-6 * (a_ * c_))
        a_ = np.where(pd, a_, hxx)
        b_ = np.where(pd, b_, hxy)
        c_ = np.where(pd, c_, hyy)
        a_ = a_ * (1 + lam) + _TINY
        c_ = c_ * (1 + lam) + _TINY
        gx_, gy_ = gx, gy
        if prior is not None:
            P = pp[act]
            ex, ey = x - pm[act, 0], y - pm[act, 1]
            a_ = a_ + P[:, 0]
            b_ = b_ + P[:, 1]
            c_ = c_ + P[:, 2]
            gx_ = gx + P[:, 0] * ex + P[:, 1] * ey
            gy_ = gy + P[:, 1] * ex + P[:, 2] * ey
        det = a_ * c_ - b_ * b_
        sx = -(c_ * gx_ - b_ * gy_) / det
        sy = -(a_ * gy_ - b_ * gx_) / det
        if pb.bounds is not None:
            # projected step: a coordinate at a face of the box with the step pointing out of
            # it is held; the other coordinate takes its 1-D Newton step
            x0, y0, x1, y1 = pb.bounds
            hx = ((x <= x0) & (sx < 0)) | ((x >= x1) & (sx > 0))
            hy = ((y <= y0) & (sy < 0)) | ((y >= y1) & (sy > 0))
            sx, sy = (np.where(hy & ~hx, -gx_ / a_, np.where(hx, 0.0, sx)),
                      np.where(hx & ~hy, -gy_ / c_, np.where(hy, 0.0, sy)))
        ln = np.hypot(sx, sy)
        sc = np.minimum(1.0, max_step / np.maximum(ln, _TINY))
        xt, yt = x + sx * sc, y + sy * sc
        if pb.bounds is not None:
            np.clip(xt, pb.bounds[0], pb.bounds[2], out=xt)
            np.clip(yt, pb.bounds[1], pb.bounds[3], out=yt)
        moved = np.hypot(xt - x, yt - y)
        # a Newton step already below xtol means converged: no need to evaluate it. Converged
        # rows stay in the batch, frozen (trial = current point, never accepted), until a
        # quarter of it is frozen; then the batch is compacted (copying costs an iteration).
        newly = live & (moved < xtol)
        if newly.any():
            done[act[newly]] = True
            live &= ~newly
        if not live.any():
            break
        if live.mean() < 0.75:
            writeback(act, x, y, sysm, fcost)
            act, x, y, xt, yt, fcost, lam = (v[live] for v in (act, x, y, xt, yt, fcost, lam))
            sub = sub.take(live)
            sysm = [None if v is None else v[live] for v in sysm]
            b = sysm[9]
            live = np.ones(act.size, bool)
        else:
            np.copyto(xt, x, where=~live)
            np.copyto(yt, y, where=~live)
        res = _evaluate(pb, sub, xt, yt, b if b is not None else b0[act])
        fct = full_cost(res[0], xt, yt, act)
        better = (fct < fcost) & live
        iters[act] += live
        np.copyto(x, xt, where=better)
        np.copyto(y, yt, where=better)
        np.copyto(fcost, fct, where=better)
        for old, new in zip(sysm, res):
            if old is not None:
                np.copyto(old, new, where=better)
        lam = np.where(better, np.maximum(lam / 4.0, 1e-7), lam * 4.0)
        stuck = live & (lam > 1e8)  # no descent found even for tiny steps
        if stuck.any():
            done[act[stuck]] = True
            live &= ~stuck
    writeback(act, x, y, sysm, fcost)
    return dict(x=X, y=Y, cost=C, fcost=F, b=B, h=H, iters=iters, done=done)


def _solve_chunk(pb, ch, rows, z_ref, grid, prior, n_iter, xtol, max_step, second_gap):
    """Start and first Levenberg-Marquardt pass for the rows of one chunk."""
    n = ch.S.shape[0]
    x, y, second = _start(pb, ch, z_ref, grid, second_gap)
    b0 = np.zeros(n)
    pr = None if prior is None else (prior[0][rows], prior[1][rows])
    if pb.offset and (pb.loss is not None or pb.sens is not None):
        b0 = _evaluate(pb, ch, x, y, b0, robust=False)[9]  # an offset to start from
    st = _lm(pb, ch, x, y, b0, pr, n_iter, xtol, max_step)
    two = np.flatnonzero(second >= 0)
    if two.size:
        # multi-start: rows with a plausible second basin are solved from it too; keep the better
        s2 = second[two]
        pr2 = None if pr is None else (pr[0][two], pr[1][two])
        st2 = _lm(pb, ch.take(two), grid[0][s2], grid[1][s2], b0[two], pr2, n_iter, xtol, max_step)
        w = st2["fcost"] < st["fcost"][two]
        st["iters"][two] += st2["iters"]
        idx = two[w]
        for k in ("x", "y", "cost", "fcost", "h", "done") + (("b",) if st["b"] is not None else ()):
            st[k][idx] = st2[k][w]
    return st


def _finish(pb, ch, st, pr, min_anchors, out, rows):
    """Covariance, ok and status from a solved state; write rows of the outputs."""
    X, Y, C, B = st["x"], st["y"], st["cost"], st["b"]
    n = X.shape[0]
    if pb.loss is None:
        # l2: the accepted Gauss-Newton information is the Fisher information at the estimate
        ixx, ixy, iyy = st["h"][:, 0], st["h"][:, 1], st["h"][:, 2]
    else:
        # robust loss: information of the nominal model, without the IRLS weights
        fi = _evaluate(pb, ch, X, Y, B if B is not None else np.zeros(n), robust=False)
        ixx, ixy, iyy = fi[1], fi[2], fi[3]
    tr = ixx + iyy
    det_i = ixx * iyy - ixy * ixy
    disc = np.sqrt(np.maximum(tr * tr / 4 - det_i, 0.0))
    lmin, lmax = tr / 2 - disc, tr / 2 + disc
    well = lmin > _COND_MIN * np.maximum(lmax, _TINY)
    if pr is not None:
        pp = pr[1]
        ixx, ixy, iyy = ixx + pp[:, 0], ixy + pp[:, 1], iyy + pp[:, 2]
        det_i = ixx * iyy - ixy * ixy
        well = np.ones(n, bool)
    nh = ch.n_heard
    enough = nh >= min_anchors if pr is None else np.ones(n, bool)
    ok = well & enough & (nh > 0) & np.isfinite(X) & np.isfinite(Y) & (det_i > 0)
    status = np.where(st["done"], STATUS_CONVERGED, STATUS_MAX_ITER).astype(np.int8)
    status[~well] = STATUS_ILL_CONDITIONED
    status[~enough] = STATUS_TOO_FEW
    status[nh == 0] = STATUS_NOT_HEARD
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = np.empty((n, 2, 2))
        cov[:, 0, 0] = iyy / det_i
        cov[:, 1, 1] = ixx / det_i
        cov[:, 0, 1] = cov[:, 1, 0] = -ixy / det_i
    cov[~ok] = np.nan
    none = nh == 0
    out["xy"][rows, 0] = np.where(none, np.nan, X)
    out["xy"][rows, 1] = np.where(none, np.nan, Y)
    out["cov"][rows] = cov
    out["ok"][rows] = ok
    out["n_heard"][rows] = nh
    out["iterations"][rows] = st["iters"]
    out["status"][rows] = status
    out["cost"][rows] = np.where(none, np.nan, C)
    if out["offset_db"] is not None:
        out["offset_db"][rows] = np.where(none, np.nan, B)


def multilaterate(anchors_xyz, rssi_dbm, model: PathLoss, z=1.2, *, bounds=None, loss="l2",
                  loss_scale=None, estimate_offset=False, prior_xy=None, prior_cov=None,
                  sensitivity_dbm=None, min_anchors=None, max_iter=40, xtol=1e-3, max_step=None,
                  second_start_gap=None, chunk_size=4096) -> Fix:
    """Maximum-likelihood positions of many devices from the RSSI that anchors heard.

    Parameters
    ----------
    anchors_xyz : array_like, shape (K, 3)
        Anchor (gateway) positions, metres, site frame.
    rssi_dbm : array_like, shape (N, K)
        RSSI per device and anchor, dBm; NaN where the anchor did not hear the device.
    model : PathLoss
        Path-loss model, scalars or one value per anchor.
    z : float or array_like, shape (N,)
        Device height in the site frame (m, >= 0); fixed, not estimated (ceiling anchors do
        not observe height).
    bounds : (xmin, ymin, xmax, ymax), optional
        Box the solution is kept in (e.g. the floor outline's bounding box); also the area of
        the start grid.
    loss : {"l2", "huber", "cauchy"}
        "l2" is the Gaussian maximum likelihood; the robust losses reweight (IRLS) residuals
        beyond ``loss_scale`` sigmas.
    loss_scale : float, optional
        Robust loss threshold in units of sigma (defaults 1.345 Huber, 2.385 Cauchy).
    estimate_offset : bool
        Jointly estimate a per-device power offset (dB) common to all anchors (uncalibrated
        phones). Needs one more anchor; the position bound rises.
    prior_xy, prior_cov : array_like, shapes (N, 2) / (N, 2, 2) or (2,) / (2, 2), optional
        Gaussian prior on the position (e.g. a tracker's prediction). The result is then the
        MAP estimate and ``cov`` the posterior covariance.
    sensitivity_dbm : float or array_like, shape (K,), optional
        Detection threshold of each anchor, dBm. When given, a non-detection (NaN) is evidence
        too: it adds -2 log Phi((sensitivity - mean rssi) / sigma) to the cost (a censored,
        Tobit likelihood). Without it the estimate uses the detections only and is pulled
        towards far anchors that happened to be heard on a lucky fade.
    min_anchors : int, optional
        Anchors needed for ``ok`` (default 3, or 4 with ``estimate_offset``); ignored with a prior.
    max_iter : int
        Levenberg-Marquardt iterations at most.
    xtol : float
        A device stops when its step is below ``xtol`` metres.
    max_step : float, optional
        Step cap in metres (default: a quarter of the start grid's diagonal).
    second_start_gap : float, optional
        Multi-start: a device whose second-best start (another basin, >= 2.5 grid cells away)
        has a cost within this many chi-square units of the best is also solved from there,
        and the better optimum kept. 0 disables it. Default: 4 with ``sensitivity_dbm`` (the
        start grid scores detections only, so a censored likelihood can prefer another basin;
        measured RMSE 1.14 -> 1.09 x CRLB), else 0 (no measured gain, +25 % time).
    chunk_size : int
        Devices processed together; bounds the temporary memory.

    Returns
    -------
    Fix
        ``xy`` (N, 2), ``cov`` (N, 2, 2), ``ok`` (N,), ``n_heard``, ``iterations``, ``status``,
        ``cost``, ``offset_db``. Rows that cannot be solved are flagged in ``ok``/``status``,
        never raised.

    Raises
    ------
    InvalidParameterError
        For a bad option or input shape, naming it, before any work.

    Examples
    --------
    >>> import numpy as np
    >>> from locate import PathLoss, multilaterate
    >>> anchors = np.array([[0, 0, 3.], [20, 0, 3.], [0, 20, 3.], [20, 20, 3.]])
    >>> model = PathLoss(p0_dbm=-59.0, exponent=2.5, sigma_db=6.0)
    >>> truth = np.array([[5.0, 12.0], [15.0, 3.0]])
    >>> d = np.linalg.norm(np.c_[truth, np.full(2, 1.2)][:, None] - anchors, axis=2)
    >>> fix = multilaterate(anchors, model.mean_rssi(d), model, z=1.2)
    >>> np.round(fix.xy, 3)
    array([[ 5., 12.],
           [15.,  3.]])
    >>> fix.ok
    array([ True,  True])
    >>> bool(np.all(np.sqrt(np.trace(fix.cov, axis1=1, axis2=2)) > 1.0))  # 6 dB: metres, not cm
    True
    >>> rssi = model.mean_rssi(d)
    >>> rssi[1, 1:] = np.nan                         # second device: one anchor heard
    >>> fix = multilaterate(anchors, rssi, model)
    >>> fix.ok, fix.status
    (array([ True, False]), array([0, 2], dtype=int8))
    >>> multilaterate(anchors, rssi, model, loss="l1")
    Traceback (most recent call last):
    ...
    locate.errors.InvalidParameterError: loss: must be one of ['cauchy', 'huber', 'l2'], got 'l1'
    """
    anchors = _check_anchors(anchors_xyz)
    k = anchors.shape[0]
    rssi = np.asarray(rssi_dbm, dtype=np.float64)
    if rssi.ndim != 2 or rssi.shape[1] != k:
        raise InvalidParameterError("rssi_dbm", f"must have shape (N, {k}) for {k} anchors, got {rssi.shape}")
    if np.isinf(rssi).any():
        raise InvalidParameterError("rssi_dbm", "must be finite or NaN (not heard)")
    n = rssi.shape[0]
    p0, nexp, sigma = _check_model(model, k)
    zz = _check_z(z, n)
    box = _check_bounds(bounds)
    if loss not in _LOSSES:
        raise InvalidParameterError("loss", f"must be one of {sorted(_LOSSES)}, got {loss!r}")
    c = _LOSSES[loss] if loss_scale is None else float(loss_scale)
    if loss_scale is not None and not (np.isfinite(c) and c > 0):
        raise InvalidParameterError("loss_scale", f"must be > 0, got {loss_scale!r}")
    if not isinstance(estimate_offset, (bool, np.bool_)):
        raise InvalidParameterError("estimate_offset", f"must be a bool, got {estimate_offset!r}")
    prior = _check_prior(prior_xy, prior_cov, n)
    min_anchors = _as_int("min_anchors", 4 if estimate_offset else 3, 1) if min_anchors is None \
        else _as_int("min_anchors", min_anchors, 1)
    max_iter = _as_int("max_iter", max_iter, 1)
    chunk_size = _as_int("chunk_size", chunk_size, 1)
    if not (np.isfinite(xtol) and xtol > 0):
        raise InvalidParameterError("xtol", f"must be > 0, got {xtol!r}")
    if second_start_gap is None:
        second_start_gap = 0.0 if sensitivity_dbm is None else 4.0
    if not (np.isfinite(second_start_gap) and second_start_gap >= 0):
        raise InvalidParameterError("second_start_gap", f"must be >= 0, got {second_start_gap!r}")
    if max_step is not None and not (np.isfinite(max_step) and max_step > 0):
        raise InvalidParameterError("max_step", f"must be > 0, got {max_step!r}")

    sens = None
    if sensitivity_dbm is not None:
        sens = np.asarray(sensitivity_dbm, dtype=np.float64)
        if sens.ndim > 1 or (sens.ndim == 1 and sens.shape[0] != k) or not np.all(np.isfinite(sens)):
            raise InvalidParameterError("sensitivity_dbm", f"must be finite, scalar or shape ({k},), got {sens.shape}")
        sens = np.broadcast_to(sens, (k,)).astype(np.float64)
    pb = _Problem(anchors, p0, nexp, sigma, None if loss == "l2" else loss, c, bool(estimate_offset), box, sens)
    grid = _grid(pb, k)
    if max_step is None:
        max_step = 0.25 * float(np.hypot(np.ptp(grid[0]), np.ptp(grid[1])))
    z_ref = float(np.median(zz)) if zz.ndim and n else float(zz) if not zz.ndim else 0.0
    out = {
        "xy": np.empty((n, 2)),
        "cov": np.empty((n, 2, 2)),
        "ok": np.empty(n, bool),
        "n_heard": np.empty(n, np.int32),
        "iterations": np.empty(n, np.int32),
        "status": np.empty(n, np.int8),
        "cost": np.empty(n),
        "offset_db": np.empty(n) if estimate_offset else None,
    }
    # Most rows converge in 3-6 iterations; a few crawl along a flat ridge. Iterating a whole
    # chunk until its slowest row stops would pay the per-iteration overhead for those few, so
    # after a first pass the unfinished rows of all chunks are pooled and finished together.
    first = min(max_iter, _FIRST_PASS)
    slow_rows, slow_state = [], []
    with np.errstate(divide="ignore", invalid="ignore"):
        for i0 in range(0, n, chunk_size):
            sl = slice(i0, min(n, i0 + chunk_size))
            ch = _Chunk(pb, rssi[sl], zz[sl] if zz.ndim else zz)
            st = _solve_chunk(pb, ch, sl, z_ref, grid, prior, first, xtol, max_step,
                              float(second_start_gap))
            pr = None if prior is None else (prior[0][sl], prior[1][sl])
            _finish(pb, ch, st, pr, min_anchors, out, sl)
            slow = np.flatnonzero(~st["done"] & (ch.n_heard > 0))
            if slow.size and max_iter > first:
                slow_rows.append(slow + i0)
                slow_state.append({k: None if v is None else v[slow] for k, v in st.items()})
        if slow_rows:
            rows = np.concatenate(slow_rows)
            prev = {k: None if slow_state[0][k] is None else np.concatenate([s_[k] for s_ in slow_state])
                    for k in slow_state[0]}
            for j0 in range(0, rows.size, chunk_size):
                r = rows[j0:j0 + chunk_size]
                part = slice(j0, j0 + r.size)
                ch = _Chunk(pb, rssi[r], zz[r] if zz.ndim else zz)
                pr = None if prior is None else (prior[0][r], prior[1][r])
                b0 = prev["b"][part] if prev["b"] is not None else np.zeros(r.size)
                st = _lm(pb, ch, prev["x"][part], prev["y"][part], b0, pr, max_iter - first, xtol, max_step)
                st["iters"] += prev["iters"][part]
                _finish(pb, ch, st, pr, min_anchors, out, r)
    return Fix(**out)
