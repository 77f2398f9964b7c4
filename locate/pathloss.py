"""Log-distance path-loss model with log-normal shadowing.

``rssi = p0 - 10 n log10(d / 1 m) + N(0, sigma^2)`` in dBm, d the 3-D distance in metres.
Each parameter is a scalar or one value per anchor (gateway): gateways are calibrated
individually (see :mod:`locate.calibrate`), phones are not (see ``estimate_offset`` in
:func:`locate.multilaterate`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InvalidParameterError

__all__ = ["PathLoss"]

#: 10 / ln(10): converts a natural-log distance derivative into dB.
DB_PER_NEPER = 10.0 / np.log(10.0)


def _param(name: str, value, positive: bool) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim > 1:
        raise InvalidParameterError(name, f"must be a scalar or 1-D (one per anchor), got shape {arr.shape}")
    if arr.size == 0:
        raise InvalidParameterError(name, "must not be empty")
    if not np.all(np.isfinite(arr)):
        raise InvalidParameterError(name, "must be finite")
    if positive and np.any(arr <= 0):
        raise InvalidParameterError(name, "must be > 0")
    arr = arr.copy()
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class PathLoss:
    """Log-distance path-loss model, scalar or per anchor.

    Parameters
    ----------
    p0_dbm : float or array_like, shape (K,)
        Mean RSSI at 1 m, dBm.
    exponent : float or array_like, shape (K,)
        Path-loss exponent n (> 0); 2 in free space, 2-3.5 indoors.
    sigma_db : float or array_like, shape (K,)
        Standard deviation of the shadowing in dB (> 0).

    Examples
    --------
    >>> from locate import PathLoss
    >>> m = PathLoss(p0_dbm=-59.0, exponent=2.5, sigma_db=6.0)
    >>> float(m.mean_rssi(10.0))
    -84.0
    >>> float(m.distance(-84.0))
    10.0
    >>> PathLoss(-59.0, 2.5, sigma_db=0.0)
    Traceback (most recent call last):
    ...
    locate.errors.InvalidParameterError: sigma_db: must be > 0
    """

    p0_dbm: np.ndarray | float = -59.0
    exponent: np.ndarray | float = 2.5
    sigma_db: np.ndarray | float = 6.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "p0_dbm", _param("p0_dbm", self.p0_dbm, positive=False))
        object.__setattr__(self, "exponent", _param("exponent", self.exponent, positive=True))
        object.__setattr__(self, "sigma_db", _param("sigma_db", self.sigma_db, positive=True))
        sizes = {a.size for a in (self.p0_dbm, self.exponent, self.sigma_db) if a.ndim == 1}
        if len(sizes) > 1:
            raise InvalidParameterError("PathLoss", f"per-anchor parameters differ in length: {sorted(sizes)}")

    def per_anchor(self, k: int, name: str = "model") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return ``(p0, n, sigma)`` broadcast to shape (k,); raise if a 1-D length differs."""
        out = []
        for field in ("p0_dbm", "exponent", "sigma_db"):
            a = getattr(self, field)
            if a.ndim == 1 and a.size != k:
                raise InvalidParameterError(f"{name}.{field}", f"has {a.size} values for {k} anchors")
            out.append(np.broadcast_to(a, (k,)).astype(np.float64))
        return out[0], out[1], out[2]

    def mean_rssi(self, distance_m):
        """Mean RSSI (dBm) at 3-D distance ``distance_m`` (broadcast against the parameters)."""
        d = np.asarray(distance_m, dtype=np.float64)
        return self.p0_dbm - 10.0 * self.exponent * np.log10(d)

    def distance(self, rssi_dbm):
        """Invert the mean model: the distance (m) at which ``rssi_dbm`` is the mean RSSI."""
        r = np.asarray(rssi_dbm, dtype=np.float64)
        return 10.0 ** ((self.p0_dbm - r) / (10.0 * self.exponent))
