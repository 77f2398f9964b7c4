"""The result of multilaterate, and its status codes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np



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
