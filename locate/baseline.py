"""Naive solvers, kept only to measure the real ones against.

- :func:`range_ls`: invert each RSSI into a distance with the mean model, then least squares on
  the ranges (linearised start, Gauss-Newton). This is the textbook "trilateration" that the
  maximum-likelihood solver in :mod:`locate.multilat` must beat: inverting puts the symmetric dB
  noise through an exponential, so far anchors get huge, skewed range errors.
- :func:`weighted_centroid`: RSSI-weighted centroid of the anchors heard.

Both are vectorized over devices and return (N, 2) positions (NaN where undetermined).
"""

from __future__ import annotations

import numpy as np

from ._checks import _check_anchors, _check_model, _check_z

__all__ = ["range_ls", "weighted_centroid"]


def range_ls(anchors_xyz, rssi_dbm, model, z=1.2, iterations=10, weighted=False):
    """Least squares on ranges inverted from RSSI (the baseline to beat).

    Parameters
    ----------
    anchors_xyz, rssi_dbm, model, z
        As for :func:`locate.multilaterate`.
    iterations : int
        Gauss-Newton iterations after the linearised start.
    weighted : bool
        Weight each range by 1/d^2 (the usual "weighted trilateration": far ranges are noisier).

    Returns
    -------
    ndarray, shape (N, 2)
        NaN where fewer than 3 anchors were heard.

    Examples
    --------
    >>> import numpy as np
    >>> from locate import PathLoss
    >>> from locate.baseline import range_ls
    >>> anchors = np.array([[0, 0, 3.], [20, 0, 3.], [0, 20, 3.], [20, 20, 3.]])
    >>> m = PathLoss(-59.0, 2.5, 6.0)
    >>> d = np.linalg.norm(np.array([5.0, 12.0, 1.2]) - anchors, axis=1)
    >>> np.round(range_ls(anchors, m.mean_rssi(d)[None], m), 3)
    array([[ 5., 12.]])
    """
    a = _check_anchors(anchors_xyz)
    k = a.shape[0]
    rssi = np.asarray(rssi_dbm, dtype=np.float64)
    p0, n, _ = _check_model(model, k)
    zz = _check_z(z, rssi.shape[0])
    heard = ~np.isnan(rssi)
    w = heard.astype(np.float64)
    dz2 = (a[:, 2] - (zz[:, None] if zz.ndim else zz)) ** 2
    d = 10.0 ** ((p0 - np.where(heard, rssi, p0)) / (10.0 * n))
    r = np.sqrt(np.maximum(d * d - dz2, 0.0))  # horizontal range
    if weighted:
        w = w / np.maximum(d, 0.5) ** 2
    # linearised start: |p|^2 - 2 a.p + |a|^2 = r^2; subtract the weighted mean equation
    ax, ay = a[:, 0], a[:, 1]
    sw = np.maximum(w.sum(1), 1e-300)
    rhs = r * r - ax * ax - ay * ay
    mx = (w * ax).sum(1) / sw
    my = (w * ay).sum(1) / sw
    mr = (w * rhs).sum(1) / sw
    ux = -2.0 * (ax - mx[:, None])
    uy = -2.0 * (ay - my[:, None])
    v = rhs - mr[:, None]
    A11, A12, A22 = (w * ux * ux).sum(1), (w * ux * uy).sum(1), (w * uy * uy).sum(1)
    b1, b2 = (w * ux * v).sum(1), (w * uy * v).sum(1)
    det = A11 * A22 - A12 * A12
    with np.errstate(divide="ignore", invalid="ignore"):
        x = (A22 * b1 - A12 * b2) / det
        y = (A11 * b2 - A12 * b1) / det
        fallback = ~np.isfinite(x) | ~np.isfinite(y)
        x = np.where(fallback, mx, x)
        y = np.where(fallback, my, y)
        for _ in range(iterations):
            dx, dy = x[:, None] - ax, y[:, None] - ay
            rr = np.maximum(np.hypot(dx, dy), 1e-6)
            res = rr - r
            jx, jy = dx / rr, dy / rr
            h11, h12, h22 = (w * jx * jx).sum(1), (w * jx * jy).sum(1), (w * jy * jy).sum(1)
            g1, g2 = (w * jx * res).sum(1), (w * jy * res).sum(1)
            det = h11 * h22 - h12 * h12 + 1e-9
            x = x - (h22 * g1 - h12 * g2) / det
            y = y - (h11 * g2 - h12 * g1) / det
    out = np.c_[x, y]
    out[heard.sum(1) < 3] = np.nan
    return out


def weighted_centroid(anchors_xyz, rssi_dbm, model=None, top=None):
    """RSSI-weighted centroid of the anchors heard (weights: linear received power).

    Each anchor's weight is 1/d, d its RSSI inverted with ``model`` (default: P0 -59 dBm,
    n 2). ``top`` keeps only the strongest ``top`` anchors per device.

    Examples
    --------
    >>> import numpy as np
    >>> from locate.baseline import weighted_centroid
    >>> a = np.array([[0, 0, 3.], [10, 0, 3.]])
    >>> weighted_centroid(a, [[-60.0, -60.0], [-60.0, np.nan]])
    array([[5., 0.],
           [0., 0.]])
    """
    a = _check_anchors(anchors_xyz)
    rssi = np.asarray(rssi_dbm, dtype=np.float64)
    k = a.shape[0]
    if model is None:
        p0, n = np.full(k, -59.0), np.full(k, 2.0)
    else:
        p0, n, _ = _check_model(model, k)
    heard = ~np.isnan(rssi)
    w = np.where(heard, 10.0 ** ((np.where(heard, rssi, 0.0) - p0) / (10.0 * n)), 0.0)  # ~ 1/d
    if top is not None and top < k:
        kth = -np.sort(-np.where(heard, rssi, -np.inf), axis=1)[:, top - 1]
        w = np.where(rssi >= kth[:, None], w, 0.0)
    s = w.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.c_[(w * a[:, 0]).sum(1) / s, (w * a[:, 1]).sum(1) / s]
