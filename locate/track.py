"""Batched constant-velocity Kalman tracking of devices, with an RTS smoother for offline use.

State per device ``x = [x, y, vx, vy]`` (metres, m/s), covariance ``P`` (4,4); motion model
``F`` constant velocity, ``Q`` white (continuous) acceleration of spectral density
``sigma_a**2``; measurement ``H`` picks the position, ``R`` is each fix's covariance as
:func:`locate.multilaterate` returns it.  Everything is batched over devices: ``x`` (N,4),
``P`` (N,4,4), per-device ``dt``.

Examples
--------
>>> import numpy as np
>>> from locate.track import KalmanTracker
>>> kf = KalmanTracker(2, sigma_a=0.5)
>>> R = np.broadcast_to(np.eye(2) * 4.0, (2, 2, 2))
>>> for t in range(5):
...     z = np.array([[1.2 * t, 0.0], [10.0, 5.0]])
...     st = kf.step(float(t), z, R)
>>> np.round(kf.x[1, :2], 6)
array([10.,  5.])
>>> bool(kf.x[0, 2] > 0.5)
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InvalidParameterError

__all__ = ["KalmanTracker", "SmoothResult", "TrackStatus", "cv_matrices", "default_gate", "rts_smooth"]

H = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
# chi-square 2 dof, 99.9 %: a fix further than this from the prediction is an outlier.
GATE_999 = 13.815510557964274


def default_gate(nu=None) -> float:
    """The gate on the squared Mahalanobis distance of a 2-D fix error: the chi-square 99.9 %
    point (``nu`` None), or the Student-t's 99 % point: its ``d2 / 2`` is F(2, nu), so
    P(d2 > g) = (1 + g/nu)^(-nu/2).  (The t's 99.9 % point, 1998 for nu = 2, would accept a
    40-sigma jump as a fix to down-weight rather than as the device having moved.)

    >>> round(default_gate(), 3), round(default_gate(2.0), 1)
    (13.816, 198.0)
    """
    return GATE_999 if nu is None else float(nu) * (1e-2 ** (-2.0 / nu) - 1.0)


def cv_matrices(dt, sigma_a: float):
    """Batched constant-velocity ``F`` (N,4,4) and white-acceleration ``Q`` (N,4,4).

    Examples
    --------
    >>> F, Q = cv_matrices(np.array([2.0]), 1.0)
    >>> F[0, 0, 2], Q[0, 0, 0], Q[0, 0, 2], Q[0, 2, 2]
    (np.float64(2.0), np.float64(2.6666666666666665), np.float64(2.0), np.float64(2.0))
    """
    dt = np.asarray(dt, dtype=float).reshape(-1)
    n = dt.shape[0]
    F = np.broadcast_to(np.eye(4), (n, 4, 4)).copy()
    F[:, 0, 2] = dt
    F[:, 1, 3] = dt
    q = sigma_a**2
    Q = np.zeros((n, 4, 4))
    for i in (0, 1):
        Q[:, i, i] = q * dt**3 / 3
        Q[:, i, i + 2] = Q[:, i + 2, i] = q * dt**2 / 2
        Q[:, i + 2, i + 2] = q * dt
    return F, Q


def _inv2(S):
    """Inverse of a batch of symmetric 2x2 matrices (N,2,2), closed form."""
    a, b, d = S[:, 0, 0], S[:, 0, 1], S[:, 1, 1]
    det = a * d - b * b
    out = np.empty_like(S)
    out[:, 0, 0] = d / det
    out[:, 1, 1] = a / det
    out[:, 0, 1] = out[:, 1, 0] = -b / det
    return out


@dataclass(frozen=True)
class TrackStatus:
    """Per-device outcome of an update, all (N,) arrays.

    ``used``: fix applied; ``gated``: fix rejected as an outlier; ``started``: track
    (re)initialised from this fix; ``d2``: squared Mahalanobis distance of the innovation
    (NaN where no fix or no track).
    """

    used: np.ndarray
    gated: np.ndarray
    started: np.ndarray
    d2: np.ndarray


class KalmanTracker:
    """Constant-velocity Kalman filter over ``n`` device slots.

    Parameters
    ----------
    n : int
        Number of slots (the bound on simultaneous tracks).
    sigma_a : float
        White-acceleration noise, m/s^2 per sqrt(Hz).  Pedestrians: 0.3-1.
    v_max : float
        Walking-speed cap, m/s.  Faster estimates are clipped and ``P`` inflated by the
        removed speed, so the filter does not trust the clipped value.
    gate : float or None
        Squared Mahalanobis distance above which a fix is rejected; None (default): the
        gate of the fix-error model, :func:`default_gate` of ``nu``.
    max_gated : int
        After this many consecutive rejected fixes the track restarts from the next fix
        (the device really did move: a floor change, a missed segment).
    v0 : float
        Initial velocity standard deviation, m/s.
    expiry_s : float
        :meth:`expire` frees slots not updated for this long.
    nu : float or None
        Student-t degrees of freedom of the fix errors; None (default) for Gaussian.  Fixes
        are heavy-tailed (a window that heard few gateways, a fading dip): with ``nu`` a fix
        that passes the gate is weighted by its distance ``d2``, ``R`` scaled by
        ``(nu + d2) / (nu + 2)``, so one far from the prediction pulls the track little.

    Attributes
    ----------
    x : (n,4) state; P : (n,4,4) covariance; active : (n,) bool; t : (n,) time of last
    predict/update; t_fix : (n,) time of last used fix; ids : (n,) object, key per slot.
    """

    def __init__(
        self,
        n: int,
        sigma_a: float = 0.5,
        v_max: float = 2.5,
        gate: float | None = None,
        max_gated: int = 5,
        v0: float = 1.0,
        expiry_s: float = 60.0,
        nu: float | None = None,
    ):
        for name, val in (("sigma_a", sigma_a), ("v_max", v_max), ("v0", v0), ("expiry_s", expiry_s),
                          ("nu", 1.0 if nu is None else nu)):
            if not (np.isfinite(val) and val > 0):
                raise InvalidParameterError(name, f"must be finite and > 0, got {val}")
        self.nu = None if nu is None else float(nu)
        gate = default_gate(self.nu) if gate is None else gate
        if not (np.isfinite(gate) and gate > 0):
            raise InvalidParameterError("gate", f"must be finite and > 0, got {gate}")
        if n < 0:
            raise InvalidParameterError("n", f"must be >= 0, got {n}")
        if max_gated < 1:
            raise InvalidParameterError("max_gated", f"must be >= 1, got {max_gated}")
        self.sigma_a, self.v_max, self.gate = float(sigma_a), float(v_max), float(gate)
        self.max_gated, self.v0, self.expiry_s = int(max_gated), float(v0), float(expiry_s)
        self.x = np.full((n, 4), np.nan)
        self.P = np.full((n, 4, 4), np.nan)
        self.active = np.zeros(n, bool)
        self.t = np.full(n, np.nan)
        self.t_fix = np.full(n, np.nan)
        self.n_gated = np.zeros(n, int)
        self.ids = np.full(n, None, dtype=object)
        self._slot: dict = {}

    @property
    def n(self) -> int:
        return self.x.shape[0]

    # --- keyed slots -------------------------------------------------------------------
    def slots(self, ids, create: bool = True) -> np.ndarray:
        """Slot of each device id, allocating free slots for new ids when ``create``.

        Returns (len(ids),) int; -1 where the id is unknown (``create=False``) or no slot is
        free (the table is full: expire stale tracks first).  A new slot starts inactive.
        """
        out = np.full(len(ids), -1, dtype=int)
        free = iter(np.flatnonzero(self.ids == None).tolist())
        for i, key in enumerate(ids):
            s = self._slot.get(key)
            if s is None and create:
                s = next(free, None)
                if s is not None:
                    self._slot[key] = s
                    self.ids[s] = key
                    self.reset(np.array([s]))
            out[i] = -1 if s is None else s
        return out

    def remove(self, ids) -> None:
        """Free the slots of these ids (unknown ids are ignored)."""
        for key in ids:
            s = self._slot.pop(key, None)
            if s is not None:
                self.ids[s] = None
                self.reset(np.array([s]))

    def expire(self, now: float) -> list:
        """Free slots whose last fix is older than ``expiry_s`` (or that never had one);
        returns the expired ids.  Call it once per window with the window time."""
        stale = (self.ids != None) & ~(now - np.nan_to_num(self.t_fix, nan=-np.inf) < self.expiry_s)
        keys = self.ids[stale].tolist()
        self.remove(keys)
        return keys

    def reset(self, mask) -> None:
        """Drop the tracks in ``mask`` (bool (n,) or slot indices): the next fix restarts them."""
        self.x[mask] = np.nan
        self.P[mask] = np.nan
        self.active[mask] = False
        self.t[mask] = np.nan
        self.t_fix[mask] = np.nan
        self.n_gated[mask] = 0

    # --- filter ------------------------------------------------------------------------
    def predict(self, dt, mask=None) -> None:
        """Propagate active tracks by ``dt`` seconds (scalar or (n,)); inactive are untouched."""
        dt = np.broadcast_to(np.asarray(dt, dtype=float), (self.n,))
        m = self.active if mask is None else self.active & np.asarray(mask, bool)
        m = m & (dt > 0)
        if not np.any(m):
            return
        d = dt[m]
        _, Q = cv_matrices(d, self.sigma_a)
        x = self.x[m]
        x[:, :2] += d[:, None] * x[:, 2:]
        self.x[m] = x
        # F P F^T with F = I + dt E (E moves velocity into position), by blocks:
        # P + dt (E P + P E^T) + dt^2 E P E^T; no batched 4x4 products.
        P = self.P[m]
        EP = np.zeros_like(P)
        EP[:, :2, :] = P[:, 2:, :]
        P = P + d[:, None, None] * (EP + EP.transpose(0, 2, 1))
        P[:, :2, :2] += (d * d)[:, None, None] * self.P[m][:, 2:, 2:]
        self.P[m] = P + Q
        self._cap_speed(m)
        self.t[m] = self.t[m] + dt[m]

    def _cap_speed(self, m) -> None:
        v = self.x[m, 2:]
        speed = np.hypot(v[:, 0], v[:, 1])
        over = speed > self.v_max
        if np.any(over):
            idx = np.flatnonzero(m)[over]
            scale = self.v_max / speed[over]
            self.x[idx, 2:] *= scale[:, None]
            # The clipped part is not known to be wrong, only implausible: keep it as variance.
            extra = (speed[over] - self.v_max) ** 2
            self.P[idx, 2, 2] += extra
            self.P[idx, 3, 3] += extra

    def update(self, z, R, mask=None) -> TrackStatus:
        """Apply fixes ``z`` (n,2) with covariances ``R`` (n,2,2) where ``mask`` (and z finite).

        Inactive slots start from their fix; active ones are gated on the squared Mahalanobis
        distance of the innovation.
        """
        z = np.asarray(z, dtype=float)
        R = np.asarray(R, dtype=float)
        if z.shape != (self.n, 2):
            raise InvalidParameterError("z", f"must be ({self.n},2), got {z.shape}")
        if R.shape != (self.n, 2, 2):
            raise InvalidParameterError("R", f"must be ({self.n},2,2), got {R.shape}")
        has = np.isfinite(z).all(axis=1) & np.isfinite(R).all(axis=(1, 2))
        if mask is not None:
            has &= np.asarray(mask, bool)
        d2 = np.full(self.n, np.nan)
        upd = has & self.active
        gated = np.zeros(self.n, bool)
        if np.any(upd):
            i = np.flatnonzero(upd)
            Pi, xi = self.P[i], self.x[i]
            S = Pi[:, :2, :2] + R[i]
            y = z[i] - xi[:, :2]
            Sinv = _inv2(S)
            Sinv_y = np.einsum("nij,nj->ni", Sinv, y)
            d2[i] = np.einsum("ni,ni->n", y, Sinv_y)
            ok = d2[i] <= self.gate
            gated[i[~ok]] = True
            self.n_gated[i[~ok]] += 1
            i, Pi, xi, Sinv, Sinv_y, y = i[ok], Pi[ok], xi[ok], Sinv[ok], Sinv_y[ok], y[ok]
            if self.nu is not None and i.size:
                # Student-t fix error: one variational step, R / lambda with the expected
                # precision scale lambda = (nu + 2) / (nu + d2) of the innovation.
                lam = (self.nu + 2.0) / (self.nu + d2[i])
                Sinv = _inv2(Pi[:, :2, :2] + R[i] / lam[:, None, None])
                Sinv_y = np.einsum("nij,nj->ni", Sinv, y)
            # K = P H^T S^-1; x += K y; P -= K H P, symmetrised (the Joseph form costs three
            # batched 4x4 products more and buys nothing at these condition numbers).
            PHt = Pi[:, :, :2]
            K = PHt @ Sinv
            self.x[i] = xi + (PHt @ Sinv_y[..., None])[..., 0]
            Pn = Pi - K @ PHt.transpose(0, 2, 1)
            self.P[i] = 0.5 * (Pn + Pn.transpose(0, 2, 1))
            self.n_gated[i] = 0
            m = np.zeros(self.n, bool)
            m[i] = True
            self._cap_speed(m)
        restart = has & (~self.active | (self.n_gated >= self.max_gated))
        if np.any(restart):
            self.x[restart] = np.column_stack([z[restart], np.zeros((restart.sum(), 2))])
            P0 = np.zeros((restart.sum(), 4, 4))
            P0[:, :2, :2] = R[restart]
            P0[:, 2, 2] = P0[:, 3, 3] = self.v0**2
            self.P[restart] = P0
            self.active[restart] = True
            self.n_gated[restart] = 0
            gated &= ~restart
        used = (upd & ~gated) | restart
        return TrackStatus(used=used, gated=gated, started=restart, d2=d2)

    def step(self, t: float, z, R, mask=None) -> TrackStatus:
        """Predict every active track to time ``t``, then :meth:`update`; sets ``t``/``t_fix``."""
        dt = np.where(self.active, t - self.t, 0.0)
        self.predict(dt)
        st = self.update(z, R, mask)
        self.t[st.used | self.active] = t
        self.t_fix[st.used] = t
        return st


@dataclass(frozen=True)
class SmoothResult:
    """Offline tracking output over a common time grid (T steps, N devices).

    ``x_filt``/``P_filt``: forward filter, causal; ``x``/``P``: RTS-smoothed.  (T,N,4) and
    (T,N,4,4); NaN before a device's first fix.  ``used`` (T,N) bool: fix applied.
    """

    x: np.ndarray
    P: np.ndarray
    x_filt: np.ndarray
    P_filt: np.ndarray
    used: np.ndarray


def rts_smooth(t, z, R, mask=None, nu=2.0, iters=4, sigma_a=0.15, **kw) -> SmoothResult:
    """Forward Kalman filter then Rauch-Tung-Striebel backward pass, batched over devices,
    with Student-t fix errors fitted by expectation-maximisation.

    Parameters
    ----------
    t : (T,) float
        Increasing times, seconds.
    z : (T,N,2) float
        Fixes, NaN where none.
    R : (T,N,2,2) float
        Fix covariances.
    mask : (T,N) bool, optional
        Fixes to consider (default: all finite).
    nu : float or None
        Student-t degrees of freedom of the fix errors (default 2: heavy tails); None for the
        plain Gaussian smoother (one pass).
    iters : int
        Smoothing passes with ``nu``: each re-weights every fix by its residual from the
        previous pass's smoothed track.
    sigma_a : float
        White-acceleration noise.  Lower than the online tracker's default: a smoother sees
        the turn ahead, so a stiff model costs little lag and averages more of the noise.
    **kw
        Other :class:`KalmanTracker` options (v_max, gate, max_gated, v0).

    Returns
    -------
    SmoothResult

    Notes
    -----
    ``x_filt``/``P_filt`` are the first, causal pass (a :class:`KalmanTracker` with ``nu``:
    the robust step on the innovation).  The next passes are the EM iterations of the
    Student-t model: given the smoothed track, each fix's expected precision scale is
    ``lambda = (nu + 2) / (nu + e' R^-1 e + tr(R^-1 P))`` (``e`` its residual, ``P`` the
    smoothed position covariance); a Gaussian filter and RTS pass with ``R / lambda`` gives
    the next track.  A fix far from the track (a bad window; shadowing at a stop is shared by
    all its fixes and is not one) then pulls it little.

    A track restart (gating run, first fix) cuts the smoother there: the segment before it is
    smoothed on its own.  The speed cap acts in the forward pass only.
    """
    t = np.asarray(t, dtype=float)
    z = np.asarray(z, dtype=float)
    R = np.asarray(R, dtype=float)
    T, N = z.shape[:2] if z.ndim >= 2 else (0, 0)
    if z.ndim != 3 or z.shape[2] != 2:
        raise InvalidParameterError("z", f"must be (T,N,2), got {z.shape}")
    if t.shape != (T,):
        raise InvalidParameterError("t", f"must be ({T},), got {t.shape}")
    if R.shape != (T, N, 2, 2):
        raise InvalidParameterError("R", f"must be ({T},{N},2,2), got {R.shape}")
    if T > 1 and not np.all(np.diff(t) > 0):
        raise InvalidParameterError("t", "must be strictly increasing")
    if nu is not None and not (np.isfinite(nu) and nu > 0):
        raise InvalidParameterError("nu", f"must be finite and > 0 or None, got {nu}")
    if iters < 1:
        raise InvalidParameterError("iters", f"must be >= 1, got {iters}")
    kw["sigma_a"] = sigma_a
    xf, Pf, used, started, xs, Ps = _filter_smooth(t, z, R, mask, KalmanTracker(N, nu=nu, **kw))
    if nu is None:
        return SmoothResult(x=xs, P=Ps, x_filt=xf, P_filt=Pf, used=used)
    # The first pass decides which fixes are outliers beyond doubt (gated) and where tracks
    # restart; the EM passes keep that and only re-weight the fixes it used.
    kw["gate"] = np.finfo(float).max
    fin = np.isfinite(z).all(-1) & np.isfinite(R).all((-1, -2))
    Rinv = np.zeros_like(R)
    Rinv[fin] = _inv2(R[fin])
    for _ in range(iters - 1):
        # E-step: expected precision scale of each fix given the smoothed track.
        e = np.nan_to_num(np.where(fin[..., None], z - xs[..., :2], 0.0))  # NaN: masked before a start
        Pxy = np.nan_to_num(Ps[..., :2, :2])
        d2 = np.einsum("...i,...ij,...j->...", e, Rinv, e) + np.einsum("...ij,...ji->...", Rinv, Pxy)
        lam = (nu + 2.0) / (nu + d2)
        # M-step: the Gaussian smoother with those weights (no second robust step).
        _, _, _, _, xs, Ps = _filter_smooth(t, z, R / lam[..., None, None], used, KalmanTracker(N, **kw), started)
    return SmoothResult(x=xs, P=Ps, x_filt=xf, P_filt=Pf, used=used)


def _filter_smooth(t, z, R, mask, kf, restart=None):
    """One forward pass of ``kf`` over the grid (tracks reset where ``restart`` (T,N)) and the
    RTS backward pass: filtered and smoothed ``x``, ``P``, and ``used``, ``started`` (T,N)."""
    T, N = z.shape[:2]
    xf = np.full((T, N, 4), np.nan)
    Pf = np.full((T, N, 4, 4), np.nan)
    xp = np.full((T, N, 4), np.nan)
    Pp = np.full((T, N, 4, 4), np.nan)
    Fs = np.zeros((T, N, 4, 4))
    cut = np.zeros((T, N), bool)
    used = np.zeros((T, N), bool)
    started = np.zeros((T, N), bool)
    for k in range(T):
        dt = t[k] - t[k - 1] if k else 0.0
        if restart is not None and restart[k].any():
            kf.reset(restart[k])
        act = kf.active.copy()
        if k:
            F, _ = cv_matrices(np.full(N, dt), kf.sigma_a)
            Fs[k] = F
            kf.predict(dt)
        xp[k], Pp[k] = kf.x, kf.P
        st = kf.update(z[k], R[k], None if mask is None else mask[k])
        used[k], started[k] = st.used, st.started
        cut[k] = st.started | ~act  # no valid predecessor link into step k
        xf[k], Pf[k] = kf.x, kf.P
    xs, Ps = xf.copy(), Pf.copy()
    for k in range(T - 2, -1, -1):
        link = ~cut[k + 1] & np.isfinite(xf[k]).all(axis=1)
        if not np.any(link):
            continue
        i = np.flatnonzero(link)
        # G = P_f F^T P_p^-1 ; solve instead of inverting (P_p symmetric).
        PfFt = Pf[k, i] @ Fs[k + 1, i].transpose(0, 2, 1)
        G = np.linalg.solve(Pp[k + 1, i], PfFt.transpose(0, 2, 1)).transpose(0, 2, 1)
        xs[k, i] = xf[k, i] + np.einsum("nij,nj->ni", G, xs[k + 1, i] - xp[k + 1, i])
        Ps[k, i] = Pf[k, i] + G @ (Ps[k + 1, i] - Pp[k + 1, i]) @ G.transpose(0, 2, 1)
    return xf, Pf, used, started, xs, Ps
