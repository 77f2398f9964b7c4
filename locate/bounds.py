"""Cramér-Rao lower bound of RSSI positioning under the log-distance model.

For Gaussian shadowing in dB the Fisher information of the position is

    I = sum_k (1/sigma_k^2) grad(mu_k) grad(mu_k)^T,   grad(mu_k) = -(10 n_k / ln 10) (p - a_k)_xy / d_k^2,

accumulated here as three (N,) sums (no (N, K, K) temporaries). With an unknown per-device power
offset the position block is the Schur complement, which is the same sum over the
weight-centred gradients.
"""

from __future__ import annotations

import numpy as np

from .errors import InvalidParameterError
from ._checks import _check_anchors, _check_model, _check_z
from .pathloss import DB_PER_NEPER, PathLoss

__all__ = ["crlb", "fisher_information"]


def fisher_information(anchors_xyz, xy, model: PathLoss, z=1.2, heard=None, estimate_offset=False,
                       chunk_size=16384):
    """Fisher information of the horizontal position, shape (N, 2, 2), in 1/m^2.

    Parameters are those of :func:`crlb`.
    """
    anchors = _check_anchors(anchors_xyz)
    k = anchors.shape[0]
    p = np.asarray(xy, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2:
        raise InvalidParameterError("xy", f"must have shape (N, 2), got {p.shape}")
    n = p.shape[0]
    _, nexp, sigma = _check_model(model, k)
    zz = _check_z(z, n)
    if heard is not None:
        heard = np.asarray(heard)
        if heard.shape != (n, k) or heard.dtype != bool:
            raise InvalidParameterError("heard", f"must be a bool array of shape ({n}, {k}), got {heard.dtype} {heard.shape}")
    sg = nexp * DB_PER_NEPER / sigma  # sqrt(weight) * d mu / d ln d
    out = np.empty((n, 2, 2))
    for i0 in range(0, n, chunk_size):
        sl = slice(i0, min(n, i0 + chunk_size))
        dx = p[sl, 0, None] - anchors[:, 0]
        dy = p[sl, 1, None] - anchors[:, 1]
        dz = anchors[:, 2] - (zz[sl, None] if zz.ndim else zz)
        d2 = dx * dx + dy * dy + dz * dz
        t = sg / d2
        if heard is not None:
            t = t * heard[sl]
        ex, ey = t * dx, t * dy
        ixx = np.einsum("ij,ij->i", ex, ex)
        ixy = np.einsum("ij,ij->i", ex, ey)
        iyy = np.einsum("ij,ij->i", ey, ey)
        if estimate_offset:
            sw = np.broadcast_to(1.0 / sigma, dx.shape)
            if heard is not None:
                sw = sw * heard[sl]
            S = np.maximum(np.einsum("ij,ij->i", sw, sw), 1e-300)
            sx = np.einsum("ij,ij->i", sw, ex)
            sy = np.einsum("ij,ij->i", sw, ey)
            ixx -= sx * sx / S
            ixy -= sx * sy / S
            iyy -= sy * sy / S
        out[sl, 0, 0] = ixx
        out[sl, 0, 1] = out[sl, 1, 0] = ixy
        out[sl, 1, 1] = iyy
    return out


def crlb(anchors_xyz, xy, model: PathLoss, z=1.2, heard=None, estimate_offset=False):
    """Position error bound: sqrt(trace) of the Cramér-Rao bound, metres, per point.

    Parameters
    ----------
    anchors_xyz : array_like, shape (K, 3)
        Anchor positions, metres.
    xy : array_like, shape (N, 2)
        True device positions, metres.
    model : PathLoss
        Path-loss model, scalars or per anchor.
    z : float or array_like, shape (N,)
        Device height, metres (>= 0).
    heard : ndarray of bool, shape (N, K), optional
        Anchors that count for each device (default: all).
    estimate_offset : bool
        Bound when a per-device power offset is estimated jointly.

    Returns
    -------
    ndarray, shape (N,)
        sqrt(trace(I^-1)), metres; inf where the information is singular (fewer than two
        useful anchors, or collinear geometry).

    Examples
    --------
    >>> import numpy as np
    >>> from locate import PathLoss, crlb
    >>> anchors = np.array([[0, 0, 3.], [20, 0, 3.], [0, 20, 3.], [20, 20, 3.]])
    >>> model = PathLoss(-59.0, 2.5, 6.0)
    >>> b = crlb(anchors, [[10.0, 10.0], [40.0, 40.0]], model)
    >>> bool(b[1] > 3 * b[0])      # range noise grows with distance: outside the anchors is worse
    True
    >>> float(np.round(crlb(anchors, [[10.0, 10.0]], PathLoss(-59.0, 2.5, 3.0))[0] / b[0], 6))
    0.5
    >>> crlb(anchors, [[10.0, 10.0]], model, heard=np.array([[True, False, False, False]]))
    array([inf])
    """
    info = fisher_information(anchors_xyz, xy, model, z=z, heard=heard, estimate_offset=estimate_offset)
    a, b, c = info[:, 0, 0], info[:, 0, 1], info[:, 1, 1]
    det = a * c - b * b
    tr = a + c
    with np.errstate(divide="ignore", invalid="ignore"):
        well = det > 1e-12 * np.maximum(tr * tr, 1e-300)
        out = np.where(well, np.sqrt(np.abs(tr / det)), np.inf)
    return out
