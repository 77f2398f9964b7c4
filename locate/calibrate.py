"""Fitting the log-distance model to reference measurements (known positions).

scikit-learn's contract: the constructor stores its arguments, :meth:`PathLossFit.fit` sets the
fitted attributes (trailing underscore) and returns self. The fit is ordinary (or Huber-IRLS)
least squares of RSSI on ``-10 log10 d`` per gateway, which is the maximum-likelihood fit under
Gaussian shadowing in dB:

    rssi_i = p0_g - 10 n_g log10(d_i) + e_i,    g = gateway_index_i.

With ``exponent="shared"`` one exponent is fitted for all gateways and each gateway keeps its own
P0 (its offset: antenna, enclosure, mounting); that is the usual site calibration, since the
exponent describes the building and is poorly determined by one gateway's few beacons.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_ndtr

from .errors import InvalidParameterError, NotFittedError
from .pathloss import PathLoss

__all__ = ["PathLossFit", "pairwise_distances"]

_MIN_D = 0.1  # m: below this the far-field model is meaningless; distances are clipped
_MIN_SIGMA = 1.0 / np.sqrt(12.0)  # dB: whole-dBm RSSI cannot be known better than its rounding


def pairwise_distances(anchors_xyz, points_xyz):
    """3-D distances (M, K) from M points to K anchors, metres."""
    a = np.asarray(anchors_xyz, dtype=np.float64)
    p = np.asarray(points_xyz, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 3:
        raise InvalidParameterError("anchors_xyz", f"must have shape (K, 3), got {a.shape}")
    if p.ndim != 2 or p.shape[1] != 3:
        raise InvalidParameterError("points_xyz", f"must have shape (M, 3), got {p.shape}")
    return np.sqrt(((p[:, None, :] - a[None, :, :]) ** 2).sum(axis=2))


def _mad(v):
    """Normal-consistent median absolute deviation about the median (1.0 if empty)."""
    if v.size == 0:
        return 1.0
    return 1.4826 * float(np.median(np.abs(v - np.median(v))))


class PathLossFit:
    """Per-gateway fit of P0, path-loss exponent and shadowing sigma.

    Parameters
    ----------
    exponent : {"per_gateway", "shared"} or float
        Fit one exponent per gateway, one for all, or keep this fixed value.
    fit_sigma : bool
        Estimate sigma per gateway from the residuals (else ``sigma_db`` is used).
    sigma_db : float
        Shadowing sigma used when ``fit_sigma`` is False (and the Huber scale's unit).
    loss : {"l2", "huber", "tukey"}
        Huber IRLS down-weights residuals beyond 1.345 sigma (body blocking, reflections);
        "tukey" follows it with bisquare IRLS, which rejects gross outliers outright.
    max_iter : int
        IRLS iterations per robust stage.
    sensitivity_dbm : float or array of shape (G,), optional
        Detection threshold, one for all gateways or one per gateway. When given, samples with
        a finite distance and a NaN RSSI are non-detections and the fit maximises the censored
        (Tobit) likelihood; otherwise far gateways are heard only on lucky fades and the fit
        flattens the exponent and biases P0 (about 2 dB in the tests).

    Attributes
    ----------
    p0_ : ndarray, shape (G,)
        RSSI at 1 m per gateway, dBm.
    exponent_ : ndarray, shape (G,)
        Path-loss exponent per gateway (all equal with ``exponent="shared"``).
    sigma_ : ndarray, shape (G,)
        Residual standard deviation per gateway, dB.
    residuals_ : ndarray, shape (M,)
        rssi - fitted mean, dB, per sample.
    n_samples_ : ndarray, shape (G,)
        Samples per gateway.

    Examples
    --------
    >>> import numpy as np
    >>> from locate.calibrate import PathLossFit
    >>> d = np.array([1.0, 2.0, 4.0, 8.0, 1.0, 10.0])
    >>> gw = np.array([0, 0, 0, 0, 1, 1])
    >>> rssi = np.where(gw == 0, -60.0, -55.0) - 25.0 * np.log10(d)
    >>> fit = PathLossFit(exponent="shared").fit(d, rssi, gw)
    >>> np.round(fit.p0_, 6), np.round(fit.exponent_, 6)
    (array([-60., -55.]), array([2.5, 2.5]))
    >>> fit.model().sigma_db.shape
    (2,)
    """

    def __init__(self, exponent="per_gateway", fit_sigma=True, sigma_db=6.0, loss="l2", max_iter=20,
                 sensitivity_dbm=None):
        self.sensitivity_dbm = sensitivity_dbm
        self.exponent = exponent
        self.fit_sigma = fit_sigma
        self.sigma_db = sigma_db
        self.loss = loss
        self.max_iter = max_iter

    # ------------------------------------------------------------------ fitting
    def _check(self, X, y, gateway_index, n_gateways, sample_weight=None):
        if not (self.exponent in ("per_gateway", "shared")
                or (isinstance(self.exponent, (int, float)) and not isinstance(self.exponent, bool)
                    and np.isfinite(self.exponent) and self.exponent > 0)):
            raise InvalidParameterError("exponent", f"must be 'per_gateway', 'shared' or a number > 0, got {self.exponent!r}")
        if self.loss not in ("l2", "huber", "tukey"):
            raise InvalidParameterError("loss", f"must be 'l2', 'huber' or 'tukey', got {self.loss!r}")
        if not (np.isfinite(self.sigma_db) and self.sigma_db > 0):
            raise InvalidParameterError("sigma_db", f"must be > 0, got {self.sigma_db!r}")
        d = np.asarray(X, dtype=np.float64)
        if d.ndim == 2 and d.shape[1] == 1:
            d = d[:, 0]
        if d.ndim != 1:
            raise InvalidParameterError("X", f"must be distances of shape (M,) or (M, 1), got {d.shape}")
        r = np.asarray(y, dtype=np.float64)
        if r.shape != d.shape:
            raise InvalidParameterError("y", f"must have shape {d.shape}, got {r.shape}")
        if gateway_index is None:
            g = np.zeros(d.shape, dtype=np.intp)
        else:
            g = np.asarray(gateway_index)
            if g.shape != d.shape or not np.issubdtype(g.dtype, np.integer) or (g.size and g.min() < 0):
                raise InvalidParameterError("gateway_index", f"must be non-negative integers of shape {d.shape}")
        if self.sensitivity_dbm is not None and not np.all(np.isfinite(self.sensitivity_dbm)):
            raise InvalidParameterError("sensitivity_dbm", f"must be finite, got {self.sensitivity_dbm!r}")
        if self.sensitivity_dbm is not None and self.loss != "l2":
            raise InvalidParameterError("loss", "the censored fit (sensitivity_dbm) supports loss='l2' only")
        sw = np.ones(d.shape) if sample_weight is None else np.asarray(sample_weight, np.float64)
        if sw.shape != d.shape or not np.all(np.isfinite(sw)) or np.any(sw < 0):
            raise InvalidParameterError("sample_weight", f"must be finite, >= 0, of shape {d.shape}")
        keep = np.isfinite(d) & (np.isfinite(r) | (self.sensitivity_dbm is not None))
        if np.any(d[keep] <= 0):
            raise InvalidParameterError("X", "distances must be > 0")
        d, r, g, sw = d[keep], r[keep], g[keep].astype(np.intp), sw[keep]
        ng = int(g.max()) + 1 if n_gateways is None and g.size else int(n_gateways or 0)
        if g.size and g.max() >= ng:
            raise InvalidParameterError("n_gateways", f"{ng} is less than the largest gateway_index + 1")
        if (self.sensitivity_dbm is not None and np.ndim(self.sensitivity_dbm) != 0
                and np.shape(self.sensitivity_dbm) != (ng,)):
            raise InvalidParameterError("sensitivity_dbm", f"must be a number or have shape ({ng},), "
                                        f"got {np.shape(self.sensitivity_dbm)}")
        counts = np.bincount(g, weights=np.isfinite(r), minlength=ng).astype(int)
        need = 2 if self.exponent == "per_gateway" else 1
        if ng == 0 or np.any(counts < need):
            bad = np.flatnonzero(counts < need).tolist()
            raise InvalidParameterError("gateway_index", f"gateways {bad} have fewer than {need} samples")
        return np.maximum(d, _MIN_D), r, g, ng, counts, sw

    def fit(self, X, y, gateway_index=None, n_gateways=None, sample_weight=None):
        """Fit from distances ``X`` (M,) metres, RSSI ``y`` (M,) dBm and each sample's gateway.

        Samples with a NaN distance or RSSI are ignored. ``sample_weight`` (M,) scales each
        sample's log-likelihood term (e.g. down-weights beacons whose shadowing is correlated
        with their neighbours'). Returns self.
        """
        d, r, g, ng, counts, sw = self._check(X, y, gateway_index, n_gateways, sample_weight)
        x = -10.0 * np.log10(d)
        heard = np.isfinite(r)
        cx, cg, cw = x[~heard], g[~heard], sw[~heard]
        x, r, g, sw = x[heard], r[heard], g[heard], sw[heard]
        w = np.ones_like(r)  # robust (IRLS) weights; sw multiplies them
        # IRLS: Huber (c = 1.345), then for "tukey" bisquare (c = 4.685) from the Huber
        # solution (an MM-type fit: Huber keeps a bias under one-sided outliers such as body
        # blocking; the redescending bisquare gives them zero weight)
        stages = {"l2": [], "huber": ["huber"], "tukey": ["huber", "tukey"]}[self.loss]
        p0, nexp = self._wls(x, r, g, ng, w * sw)
        res = r - (p0[g] + nexp[g] * x)
        for stage in stages:
            for _ in range(self.max_iter):
                # scale: per-gateway MAD of the residuals (robust sigma)
                med = np.array([_mad(res[g == k]) for k in range(ng)])
                u = np.abs(res) / np.maximum(med[g], 1e-6)
                if stage == "huber":
                    w_new = np.minimum(1.0, 1.345 / np.maximum(u, 1e-12))
                else:
                    w_new = np.where(u < 4.685, (1.0 - (u / 4.685) ** 2) ** 2, 0.0)
                if np.allclose(w_new, w, atol=1e-6):
                    break
                w = w_new
                p0, nexp = self._wls(x, r, g, ng, w * sw)
                res = r - (p0[g] + nexp[g] * x)
        # weighted variance with the effective sample size (n_eff = (sum w)^2 / sum w^2)
        sw1 = np.bincount(g, weights=sw, minlength=ng)
        n_eff = sw1 ** 2 / np.maximum(np.bincount(g, weights=sw * sw, minlength=ng), 1e-300)
        dof = n_eff - (2 if self.exponent == "per_gateway" else 1)
        ss = np.bincount(g, weights=sw * res * res, minlength=ng) * n_eff / np.maximum(sw1, 1e-300)
        if self.fit_sigma:
            sigma = np.maximum(np.sqrt(ss / np.maximum(dof, 1)), _MIN_SIGMA)
        else:
            sigma = np.full(ng, float(self.sigma_db))
        if self.sensitivity_dbm is not None and cx.size:
            p0, nexp, sigma = self._tobit(x, r, g, sw, cx, cg, cw, ng, p0, nexp, sigma)
            res = r - (p0[g] + nexp[g] * x)
        self.p0_, self.exponent_, self.sigma_ = p0, nexp, sigma
        self.residuals_ = res
        self.n_samples_ = counts
        return self

    def _tobit(self, x, r, g, sw, cx, cg, cw, ng, p0, nexp, sigma):
        """Censored maximum likelihood, started from the least-squares fit."""
        s = np.broadcast_to(np.asarray(self.sensitivity_dbm, dtype=np.float64), (ng,))[cg]
        mode = self.exponent
        n_n = ng if mode == "per_gateway" else (1 if mode == "shared" else 0)
        fit_s = bool(self.fit_sigma)

        def unpack(th):
            p = th[:ng]
            n = (np.broadcast_to(th[ng:ng + n_n], (ng,)) if n_n else nexp)
            sg = np.exp(th[ng + n_n:]) if fit_s else sigma
            return p, n, sg

        def nll(th):
            p, n, sg = unpack(th)
            u = (r - p[g] - n[g] * x) / sg[g]
            v = (s - p[cg] - n[cg] * cx) / sg[cg]
            f = np.sum(sw * (0.5 * u * u + np.log(sg[g]))) - np.sum(cw * log_ndtr(v))
            # analytic gradient: finite differences cost one evaluation per parameter
            lam = cw * np.exp(-0.5 * v * v - 0.5 * np.log(2 * np.pi) - log_ndtr(v))  # cw phi/Phi
            a, b = -sw * u / sg[g], lam / sg[cg]  # d/d(mean) of heard and censored terms
            gp = np.bincount(g, a, ng) + np.bincount(cg, b, ng)
            gn = np.bincount(g, a * x, ng) + np.bincount(cg, b * cx, ng)
            parts = [gp, gn if n_n == ng else gn.sum(keepdims=True)[:n_n]]
            if fit_s:
                parts.append(np.bincount(g, sw * (1.0 - u * u), ng) + np.bincount(cg, lam * v, ng))
            return f, np.concatenate(parts)

        th0 = np.concatenate([p0, nexp[:n_n] if mode == "per_gateway" else nexp[:1][:n_n],
                              np.log(sigma) if fit_s else []])
        sol = minimize(nll, th0, jac=True, method="L-BFGS-B")
        p, n, sg = unpack(sol.x)
        return p.copy(), np.array(n, dtype=np.float64), np.maximum(np.array(sg, dtype=np.float64), _MIN_SIGMA)

    def _wls(self, x, r, g, ng, w):
        sw = np.bincount(g, weights=w, minlength=ng)
        xm = np.bincount(g, weights=w * x, minlength=ng) / sw
        rm = np.bincount(g, weights=w * r, minlength=ng) / sw
        xc, rc = x - xm[g], r - rm[g]
        sxx = np.bincount(g, weights=w * xc * xc, minlength=ng)
        sxr = np.bincount(g, weights=w * xc * rc, minlength=ng)
        if self.exponent == "per_gateway":
            if np.any(sxx <= 1e-12):
                bad = np.flatnonzero(sxx <= 1e-12).tolist()
                raise InvalidParameterError("X", f"gateways {bad} have all samples at one distance: exponent undetermined")
            nexp = sxr / sxx
        elif self.exponent == "shared":
            if sxx.sum() <= 1e-12:
                raise InvalidParameterError("X", "all samples at one distance: exponent undetermined")
            nexp = np.full(ng, sxr.sum() / sxx.sum())
        else:
            nexp = np.full(ng, float(self.exponent))
        return rm - nexp * xm, nexp

    def fit_positions(self, anchors_xyz, points_xyz, rssi_dbm):
        """Fit from reference positions: ``rssi_dbm`` (M, K), NaN where not heard. Returns self."""
        d = pairwise_distances(anchors_xyz, points_xyz)
        r = np.asarray(rssi_dbm, dtype=np.float64)
        if r.shape != d.shape:
            raise InvalidParameterError("rssi_dbm", f"must have shape {d.shape}, got {r.shape}")
        g = np.broadcast_to(np.arange(d.shape[1]), d.shape)
        if self.sensitivity_dbm is not None:  # non-detections are data in the censored fit
            return self.fit(d.ravel(), r.ravel(), g.ravel(), n_gateways=d.shape[1])
        m = ~np.isnan(r)
        return self.fit(d[m], r[m], g[m], n_gateways=d.shape[1])

    # ------------------------------------------------------------------ use
    def model(self) -> PathLoss:
        """The fitted :class:`PathLoss` (per gateway)."""
        if not hasattr(self, "p0_"):
            raise NotFittedError("PathLossFit is not fitted; call fit() first")
        return PathLoss(self.p0_, self.exponent_, self.sigma_)

    def predict(self, X, gateway_index=None):
        """Mean RSSI (dBm) at distances ``X`` for each sample's gateway."""
        if not hasattr(self, "p0_"):
            raise NotFittedError("PathLossFit is not fitted; call fit() first")
        d = np.maximum(np.asarray(X, dtype=np.float64).reshape(-1), _MIN_D)
        g = np.zeros(d.shape, np.intp) if gateway_index is None else np.asarray(gateway_index)
        return self.p0_[g] - 10.0 * self.exponent_[g] * np.log10(d)
