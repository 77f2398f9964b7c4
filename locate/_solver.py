"""The batched solver behind multilaterate: start grid, Levenberg-Marquardt, finishing."""

from __future__ import annotations

import logging

import numpy as np
from scipy.special import log_ndtr

from .pathloss import DB_PER_NEPER
from ._fix import (STATUS_CONVERGED, STATUS_ILL_CONDITIONED, STATUS_MAX_ITER, STATUS_NOT_HEARD,
                   STATUS_TOO_FEW)
from ._fix import _COND_MIN, _TINY

log = logging.getLogger(__name__)


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
