"""Option validation for multilaterate: every bad parameter is named before any work."""

from __future__ import annotations


import numpy as np

from .errors import InvalidParameterError
from .pathloss import PathLoss


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
    # z is a coordinate of the site frame, not a height above ground: floors below street level
    # (a metro level at -5 m) have negative z.
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
