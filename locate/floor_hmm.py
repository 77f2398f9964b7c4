"""The floor HMM: each device's floor over time, batched over devices.

The hidden state is (floor, time on that floor); a change is allowed only where the device is
near a connector that links the two floors (:class:`locate.connectors.Connectors`), and not
again before a minimum dwell, so the floor does not flicker.  Online filtering,
forward-backward and Viterbi.  The per-window evidence comes from
:class:`locate.floors.FloorModel`.
"""

from __future__ import annotations

import numpy as np

from .errors import InvalidParameterError

__all__ = ["FloorHMM"]


class FloorHMM:
    """Hidden Markov model of each device's floor over regular time steps, batched.

    The hidden state is (floor, time on that floor) with ages 0..D-1, D-1 meaning "at least
    ``min_dwell_s``": only that age can change floor, which is the minimum-duration prior.
    From it a change f -> g has probability ``p_change`` per step where ``allowed`` (near a
    connector linking f and g), ``p_leak`` elsewhere (so a wrong start can still recover).

    Parameters
    ----------
    n_floors : int
    dt : float
        Step, seconds.
    min_dwell_s : float
        Minimum time between floor changes (an escalator ride, 15-30 s).
    p_change : float
        Per-step change probability next to a connector.
    p_leak : float
        Per-step change probability anywhere else (1e-20: a change away from any connector
        needs ~46 nats of evidence, a round trip ~92, more than an atrium balcony gives).
    emission_scale : float
        Multiplies the per-window log-likelihoods.  Below 1 it tempers evidence that is
        correlated from one window to the next: static shadowing, a device standing still,
        the same single gateway reporting the same median window after window.  0.5 (each
        window counts half) stopped a shopper parked by a lift on firmware_sim's sample mall
        from flickering between floors, and changes nothing on the test scenario.

    Examples
    --------
    >>> hmm = FloorHMM(2, dt=1.0, min_dwell_s=3)
    >>> ll = np.zeros((8, 1, 2)); ll[:, 0, 0] = 5.0; ll[4:, 0, :] = [0.0, 5.0]
    >>> ok = np.ones((8, 1, 2, 2), bool)
    >>> hmm.viterbi(ll, ok)[:, 0]
    array([0, 0, 0, 0, 1, 1, 1, 1])
    """

    def __init__(self, n_floors: int, dt: float = 1.0, min_dwell_s: float = 15.0, p_change: float = 0.05,
                 p_leak: float = 1e-20, emission_scale: float = 0.5):
        if n_floors < 1:
            raise InvalidParameterError("n_floors", f"must be >= 1, got {n_floors}")
        if not dt > 0:
            raise InvalidParameterError("dt", f"must be > 0, got {dt}")
        if not (0 < p_change < 1 and 0 <= p_leak < p_change):
            raise InvalidParameterError("p_change", f"need 0 <= p_leak < p_change < 1, got {p_leak}, {p_change}")
        if not (min_dwell_s >= 0 and emission_scale > 0):
            raise InvalidParameterError("min_dwell_s", "min_dwell_s >= 0 and emission_scale > 0 required")
        self.n_floors, self.dt = int(n_floors), float(dt)
        self.D = max(2, int(np.ceil(min_dwell_s / dt)) + 1)
        self.p_change, self.p_leak, self.emission_scale = float(p_change), float(p_leak), float(emission_scale)

    # --- transition pieces -------------------------------------------------------------
    def _pc(self, allowed) -> np.ndarray:
        """(N,F,F) change probabilities with a zero diagonal; rows sum below 1."""
        a = np.asarray(allowed, bool)
        nf = self.n_floors
        pc = np.where(a, self.p_change, self.p_leak)
        pc = pc * (1 - np.eye(nf, dtype=bool))
        tot = pc.sum(axis=2, keepdims=True)
        return np.where(tot > 0.5, pc * 0.5 / np.maximum(tot, 1e-300), pc)

    def _emis(self, ll) -> np.ndarray:
        ll = np.asarray(ll, dtype=float) * self.emission_scale
        ll = np.where(np.isfinite(ll), ll, -1e300)
        return np.exp(ll - ll.max(axis=-1, keepdims=True))

    def start(self, n: int, prior=None) -> np.ndarray:
        """Initial filter state (n,F,D): floor ``prior`` (n,F) or uniform, free to change."""
        alpha = np.zeros((n, self.n_floors, self.D))
        alpha[:, :, -1] = 1.0 / self.n_floors if prior is None else np.asarray(prior, float)
        return alpha

    def _propagate(self, alpha, pc):
        stay = alpha[:, :, -1]
        new = np.zeros_like(alpha)
        new[:, :, 1:] = alpha[:, :, :-1]
        new[:, :, -1] += stay * (1 - pc.sum(axis=2))
        new[:, :, 0] += np.einsum("nf,nfg->ng", stay, pc)
        return new

    def step(self, alpha, ll, allowed) -> tuple[np.ndarray, np.ndarray]:
        """One online filtering step.

        ``alpha`` (N,F,D) state after the previous step, ``ll`` (N,F) this window's
        log-likelihood, ``allowed`` (N,F,F) from the previous position.  Returns the new state
        and the filtered floor probabilities (N,F).
        """
        a = self._propagate(alpha, self._pc(allowed)) * self._emis(ll)[:, :, None]
        a /= a.sum(axis=(1, 2), keepdims=True)
        return a, a.sum(axis=2)

    # --- batch over time ---------------------------------------------------------------
    def _check(self, ll, allowed):
        ll = np.asarray(ll, dtype=float)
        if ll.ndim != 3 or ll.shape[2] != self.n_floors:
            raise InvalidParameterError("loglik", f"must be (T,N,{self.n_floors}), got shape {ll.shape}")
        allowed = np.asarray(allowed, bool)
        if allowed.shape != ll.shape + (self.n_floors,):
            raise InvalidParameterError("allowed", f"must be {ll.shape + (self.n_floors,)}, got {allowed.shape}")
        return ll, allowed

    def filter(self, loglik, allowed, prior=None) -> np.ndarray:
        """Causal floor probabilities (T,N,F).  ``allowed[t]`` gates the change t -> t+1."""
        ll, allowed = self._check(loglik, allowed)
        T, N, _ = ll.shape
        out = np.empty_like(ll)
        a = self.start(N, prior)
        a = a * self._emis(ll[0])[:, :, None]
        a /= a.sum(axis=(1, 2), keepdims=True)
        out[0] = a.sum(axis=2)
        for t in range(1, T):
            a, out[t] = self.step(a, ll[t], allowed[t - 1])
        return out

    def smooth(self, loglik, allowed, prior=None) -> np.ndarray:
        """Forward-backward floor probabilities (T,N,F) given all windows."""
        ll, allowed = self._check(loglik, allowed)
        T, N, F = ll.shape
        alphas = np.empty((T, N, F, self.D))
        a = self.start(N, prior) * self._emis(ll[0])[:, :, None]
        alphas[0] = a / a.sum(axis=(1, 2), keepdims=True)
        for t in range(1, T):
            alphas[t], _ = self.step(alphas[t - 1], ll[t], allowed[t - 1])
        beta = np.ones((N, F, self.D))
        out = np.empty_like(ll)
        g = alphas[-1] * beta
        out[-1] = g.sum(axis=2) / g.sum(axis=(1, 2))[:, None]
        for t in range(T - 2, -1, -1):
            pc = self._pc(allowed[t])
            w = self._emis(ll[t + 1])[:, :, None] * beta
            nb = np.empty_like(beta)
            nb[:, :, :-1] = w[:, :, 1:]
            nb[:, :, -1] = (1 - pc.sum(axis=2)) * w[:, :, -1] + np.einsum("nfg,ng->nf", pc, w[:, :, 0])
            beta = nb / nb.sum(axis=(1, 2), keepdims=True)
            g = alphas[t] * beta
            out[t] = g.sum(axis=2) / g.sum(axis=(1, 2))[:, None]
        return out

    def viterbi(self, loglik, allowed, prior=None) -> np.ndarray:
        """Most probable floor sequence (T,N) int under the dwell and connector constraints."""
        ll, allowed = self._check(loglik, allowed)
        T, N, F = ll.shape
        D = self.D
        lls = ll * self.emission_scale
        lls = np.where(np.isfinite(lls), lls, -1e300)
        with np.errstate(divide="ignore"):
            lp0 = np.full((N, F), -np.log(F)) if prior is None else np.log(np.asarray(prior, float))
        delta = np.full((N, F, D), -np.inf)
        delta[:, :, -1] = lp0 + lls[0]
        from_g = np.zeros((T, N, F), np.int16)  # age 0 at t: came from floor from_g (age D-1)
        from_stay = np.zeros((T, N, F), bool)  # age D-1 at t: came from age D-1 (else D-2)
        rows = np.arange(N)[:, None]
        for t in range(1, T):
            pc = self._pc(allowed[t - 1])
            with np.errstate(divide="ignore"):
                lpc = np.log(pc)
                lstay = np.log1p(-pc.sum(axis=2))
            stay = delta[:, :, -1]
            cand = stay[:, :, None] + lpc  # (N, from, to)
            from_g[t] = np.argmax(cand, axis=1)
            new = np.empty_like(delta)
            new[:, :, 0] = np.take_along_axis(cand, from_g[t][:, None, :].astype(np.intp), axis=1)[:, 0, :]
            new[:, :, 1:-1] = delta[:, :, 0:-2]
            keep = stay + lstay
            from_stay[t] = keep >= delta[:, :, -2]
            new[:, :, -1] = np.where(from_stay[t], keep, delta[:, :, -2])
            delta = new + lls[t][:, :, None]
            delta -= delta.max(axis=(1, 2), keepdims=True)  # keep the numbers small
        path = np.empty((T, N), int)
        flat = np.argmax(delta.reshape(N, -1), axis=1)
        f, a = flat // D, flat % D
        path[-1] = f
        for t in range(T - 1, 0, -1):
            to0 = a == 0
            top = a == D - 1
            pf = np.where(to0, from_g[t][rows[:, 0], f], f)
            pa = np.where(to0, D - 1, np.where(top & from_stay[t][rows[:, 0], f], D - 1, a - 1))
            f, a = pf, pa
            path[t - 1] = f
        return path
