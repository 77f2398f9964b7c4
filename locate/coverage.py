"""Coverage planning: expected accuracy and floor separability over a grid, from the model alone.

Used by field engineers before and after installing gateways (gateway/ calls these with the site
model's arrays). Both functions are deterministic expectations, no simulation: an anchor counts
only where its mean RSSI is at or above the receiver sensitivity.
"""

from __future__ import annotations

import numpy as np

from .bounds import fisher_information
from .errors import InvalidParameterError
from ._checks import _check_anchors, _check_model
from .pathloss import PathLoss

__all__ = ["accuracy_grid", "floor_margin_grid"]


def _grid_points(grid_x, grid_y):
    gx = np.asarray(grid_x, dtype=np.float64)
    gy = np.asarray(grid_y, dtype=np.float64)
    for name, g in (("grid_x", gx), ("grid_y", gy)):
        if g.ndim != 1 or g.size == 0 or not np.all(np.isfinite(g)):
            raise InvalidParameterError(name, "must be a non-empty finite 1-D array of cell centres")
    xx, yy = np.meshgrid(gx, gy)  # (ny, nx)
    return xx, yy


def accuracy_grid(anchors_xyz, model: PathLoss, grid_x, grid_y, z=1.2, sensitivity_dbm=-100.0,
                  estimate_offset=False):
    """Expected position error bound (CRLB, metres) per grid cell.

    Parameters
    ----------
    anchors_xyz : array_like, shape (K, 3)
    model : PathLoss
    grid_x, grid_y : array_like, 1-D
        Cell centres, metres.
    z : float
        Device height (site frame), metres.
    sensitivity_dbm : float or array_like (K,)
        Anchors whose mean RSSI at the cell is below this do not count.
    estimate_offset : bool
        Bound for uncalibrated phones (per-device offset estimated).

    Returns
    -------
    ndarray, shape (len(grid_y), len(grid_x))
        sqrt(trace(CRB)), metres; inf where fewer than two anchors are heard.

    Examples
    --------
    >>> import numpy as np
    >>> from locate import PathLoss
    >>> from locate.coverage import accuracy_grid
    >>> a = np.array([[0, 0, 3.], [20, 0, 3.], [0, 20, 3.], [20, 20, 3.]])
    >>> g = accuracy_grid(a, PathLoss(-59.0, 2.5, 6.0), [10.0, 60.0, 500.0], [10.0])
    >>> bool(g[0, 0] < g[0, 1]), bool(np.isinf(g[0, 2]))
    (True, True)
    """
    anchors = _check_anchors(anchors_xyz)
    k = anchors.shape[0]
    p0, n, _ = _check_model(model, k)
    sens = np.broadcast_to(np.asarray(sensitivity_dbm, dtype=np.float64), (k,))
    if not np.all(np.isfinite(sens)):
        raise InvalidParameterError("sensitivity_dbm", "must be finite")
    xx, yy = _grid_points(grid_x, grid_y)
    pts = np.c_[xx.ravel(), yy.ravel()]
    d = np.sqrt(((pts[:, None, :] - anchors[:, :2]) ** 2).sum(2) + (anchors[:, 2] - z) ** 2)
    heard = p0 - 10.0 * n * np.log10(d) >= sens
    info = fisher_information(anchors, pts, model, z=z, heard=heard, estimate_offset=estimate_offset)
    a, b, c = info[:, 0, 0], info[:, 0, 1], info[:, 1, 1]
    det = a * c - b * b
    with np.errstate(divide="ignore", invalid="ignore"):
        well = (heard.sum(1) >= 2) & (det > 1e-12 * (a + c) ** 2)
        out = np.where(well, np.sqrt(np.abs((a + c) / det)), np.inf)
    return out.reshape(xx.shape)


def floor_margin_grid(anchors_xyz, anchor_floor_idx, floor_elevations, slab_db, grid, floor_idx,
                      void_mask=None, *, model: PathLoss | None = None, z=1.2, sensitivity_dbm=-100.0):
    """Expected log-likelihood margin of the true floor over the best wrong floor, per cell.

    A device on floor ``floor_idx`` at height ``z`` above it; anchor k on floor
    ``anchor_floor_idx[k]`` loses ``slab_db`` per slab crossed, except in atrium cells
    (``void_mask``), where the signal crosses floors without slab loss. Under floor hypothesis f
    the mean RSSI is mu_k(f); the expected log-likelihood ratio between the true floor and f is
    sum_k (mu_k(true) - mu_k(f))^2 / (2 sigma_k^2) (nats), over the anchors heard (mean RSSI at
    or above sensitivity on the true floor). Returned: its minimum over the wrong floors.
    Larger is easier; a few nats per window is enough for an HMM over time.

    Parameters
    ----------
    anchors_xyz : array_like (K, 3)
        Absolute anchor positions (z includes the floor elevation).
    anchor_floor_idx : array_like of int (K,)
    floor_elevations : array_like (F,)
        Floor elevations, metres.
    slab_db : float or array_like (F - 1,)
        Loss per slab, dB (one per slab, between floor i and i + 1).
    grid : (grid_x, grid_y)
        Cell centres, metres.
    floor_idx : int
        The true floor.
    void_mask : ndarray of bool (len(grid_y), len(grid_x)), optional
        Atrium cells.
    model : PathLoss, optional
        Default PathLoss(-59, 2.5, 6).

    Returns
    -------
    ndarray (len(grid_y), len(grid_x))
        Nats; inf with a single floor, 0 where no anchor is heard.

    Examples
    --------
    >>> import numpy as np
    >>> from locate.coverage import floor_margin_grid
    >>> a = np.array([[5, 5, 3.], [15, 5, 3.], [5, 5, 8.], [15, 5, 8.]])
    >>> m = floor_margin_grid(a, [0, 0, 1, 1], [0.0, 5.0], 15.0, ([5.0, 15.0], [5.0]), 0,
    ...                       void_mask=np.array([[False, True]]))
    >>> bool(m[0, 0] > 5 * m[0, 1] > 0)
    True
    """
    anchors = _check_anchors(anchors_xyz)
    k = anchors.shape[0]
    model = PathLoss() if model is None else model
    p0, n, sigma = _check_model(model, k)
    af = np.asarray(anchor_floor_idx)
    if af.shape != (k,) or not np.issubdtype(af.dtype, np.integer):
        raise InvalidParameterError("anchor_floor_idx", f"must be {k} integers")
    elev = np.asarray(floor_elevations, dtype=np.float64)
    nf = elev.size
    if elev.ndim != 1 or nf == 0 or not np.all(np.isfinite(elev)):
        raise InvalidParameterError("floor_elevations", "must be a non-empty finite 1-D array")
    if af.min() < 0 or af.max() >= nf:
        raise InvalidParameterError("anchor_floor_idx", f"must index the {nf} floors")
    slab = np.broadcast_to(np.asarray(slab_db, dtype=np.float64), (max(nf - 1, 0),))
    if not np.all(np.isfinite(slab)) or np.any(slab < 0):
        raise InvalidParameterError("slab_db", "must be finite and >= 0")
    if not (isinstance(floor_idx, (int, np.integer)) and 0 <= floor_idx < nf):
        raise InvalidParameterError("floor_idx", f"must be an integer in [0, {nf})")
    if not (isinstance(grid, (tuple, list)) and len(grid) == 2):
        raise InvalidParameterError("grid", "must be (grid_x, grid_y)")
    xx, yy = _grid_points(*grid)
    if void_mask is None:
        void = np.zeros(xx.size, bool)
    else:
        void = np.asarray(void_mask)
        if void.shape != xx.shape or void.dtype != bool:
            raise InvalidParameterError("void_mask", f"must be a bool array of shape {xx.shape}")
        void = void.ravel()
    if nf == 1:
        return np.full(xx.shape, np.inf)
    cum = np.concatenate([[0.0], np.cumsum(slab)])  # slab loss from floor 0 up to floor i
    pts = np.c_[xx.ravel(), yy.ravel()]
    h2 = ((pts[:, None, :] - anchors[:, :2]) ** 2).sum(2)  # (P, K)

    def mean_rssi(f):
        d = np.sqrt(h2 + (anchors[:, 2] - (elev[f] + z)) ** 2)
        loss = np.abs(cum[f] - cum[af])  # (K,) slabs between the device floor and each anchor
        return p0 - 10.0 * n * np.log10(d) - np.where(void[:, None], 0.0, loss)

    mu0 = mean_rssi(floor_idx)
    heard = mu0 >= sensitivity_dbm
    best = np.full(pts.shape[0], np.inf)
    for f in range(nf):
        if f == floor_idx:
            continue
        diff = (mu0 - mean_rssi(f)) / sigma
        best = np.minimum(best, 0.5 * np.where(heard, diff * diff, 0.0).sum(1))
    return best.reshape(xx.shape)
