"""Per-floor grid posterior of a device's position from one window of RSSI (fast fixes).

For each floor and radio kind the expected RSSI at every candidate point of a regular grid is
tabulated once (log-distance model, the floor's own gateways, their calibration). A window's
log-likelihood over the grid is then three matrix products per (floor, kind), the same
expansion locate's FloorModel uses:

    sum_heard (r - M)^2 / s^2 = sum r^2/s^2 - 2 (r/s^2) M^T + h (M^2/s^2)^T

plus, for gateways of the floor that did *not* hear the device, the censored term
log(p_miss + (1 - p_miss) Phi((sensitivity - M) / s)) - the silence of the gateways deep
inside is what places a phone on the street. An unknown per-phone power offset (phones are
not calibrated; pocket, bag) is profiled out in closed form with a Gaussian prior.

The posterior gives the mean position and its covariance (for the Kalman filter) and the
posterior mass on outside zones (street, metro concourse). Cost per window is independent of
any per-device Python work: about 3 N K G multiply-adds per floor.
"""
from __future__ import annotations

import numpy as np
from scipy.special import log_ndtr

from locate.zones import points_in_polygon


class GridPosterior:
    def __init__(self, site, locator, *, step_m: float = 3.0, p_miss: float = 0.1,
                 offset_mean_db: float = -2.0, offset_sd_db: float = 4.0, temper: float = 1.0,
                 offset_step_db: float = 0.0) -> None:
        # The phone's offset: carried in a hand, pocket or bag (0/4/8 dB body loss) and models
        # that differ by a few dB; the prior mean and spread come from there.
        self.step = step_m
        self.p_miss = p_miss
        self.mu_o = offset_mean_db
        self.inv_o2 = 1.0 / offset_sd_db**2
        self.temper = temper
        self.use_map = False
        # With offset_step_db > 0: the offset is a hidden variable on bins this far apart
        # (+-2.5 prior sd around the prior mean), each with its own censoring table, for
        # ``solve_joint`` (GridFilter carries each phone's distribution over them).
        self.offset_bins = np.zeros(0)
        self.offset_log_prior = np.zeros(0)
        if offset_step_db > 0:
            half = int(np.ceil(2.5 * offset_sd_db / offset_step_db))
            self.offset_bins = offset_mean_db + offset_step_db * np.arange(-half, half + 1)
            lp = -0.5 * ((self.offset_bins - offset_mean_db) / offset_sd_db) ** 2
            self.offset_log_prior = lp - np.logaddexp.reduce(lp)
        self.tables: dict[tuple[int, int], dict] = {}
        # Per floor: the regular lattice (nx, ny) and the flat indices of its points kept
        # (inside the outline, not over a void); GridFilter moves probability along it.
        self.lattice: dict[int, tuple[int, int, np.ndarray]] = {}
        loc = locator
        for fi, floor in enumerate(site.floors):
            b = loc.floor_bounds[fi]
            gx = np.arange(b[0] + step_m / 2, b[2], step_m)
            gy = np.arange(b[1] + step_m / 2, b[3], step_m)
            g = np.stack(np.meshgrid(gx, gy, indexing="ij"), axis=-1).reshape(-1, 2)
            keep = points_in_polygon(g, np.asarray(floor.outline, float))
            for z in site.zones_on(floor.id):
                if z.kind == "atrium":        # a void: nobody stands there
                    keep &= ~points_in_polygon(g, np.asarray(z.polygon, float))
            self.lattice[fi] = (len(gx), len(gy), np.flatnonzero(keep))
            g = g[keep]
            outside = np.zeros(len(g))
            for z in site.zones_on(floor.id):
                if z.kind == "outside":
                    outside[points_in_polygon(g, np.asarray(z.polygon, float))] = 1.0
            for ki in range(loc.p0.shape[0]):
                cols = loc.floor_cols[fi]
                cols = cols[np.isfinite(loc.p0[ki, cols])]
                if not len(cols):
                    continue
                a = loc.anchors_rel[cols]
                d = np.sqrt(((g[:, None, :] - a[None, :, :2]) ** 2).sum(-1)
                            + (a[None, :, 2] - 1.2) ** 2)
                M = loc.p0[ki, cols] - 10 * loc.expo[ki, cols] * np.log10(np.maximum(d, 0.5))
                s = loc.sigma[ki, cols]
                sens = loc.sens[ki, cols]
                # Not heard: P(rssi < sensitivity) with the offset marginalised (its prior).
                sc = np.sqrt(s**2 + offset_sd_db**2)
                cens = np.logaddexp(np.log(p_miss),
                                    np.log1p(-p_miss) + log_ndtr((sens - M - offset_mean_db) / sc))
                # The solve's single-precision tables: one stacked matrix for the linear terms
                # of the log-likelihood (heard: M and -M^2/2s^2 - cens; all: sum of cens, since
                # the unheard are all minus the heard), M/s^2 for the profiled offset, and the
                # moments table [1, x, y, x^2, xy, y^2, outside, 0] in coordinates centred on the
                # floor (float32 keeps the moments exact to ~1e-3 m^2; 8 columns are a faster
                # product than 7).
                c0 = g.mean(axis=0)
                gc = g - c0
                mom = np.column_stack([np.ones(len(g)), gc, gc[:, 0] ** 2, gc[:, 0] * gc[:, 1],
                                       gc[:, 1] ** 2, outside, np.zeros(len(g))])
                self.tables[(fi, ki)] = {
                    "cols": cols, "g": g, "out": outside, "inv_s2": 1.0 / s**2, "c0": c0,
                    "T32": np.vstack([M.T, (-0.5 * M**2 / s**2 - cens).T,
                                      cens.sum(axis=1)[None, :]]).astype(np.float32),
                    "Ms2_32": np.vstack([(M / s**2).T, np.ones((1, len(g)))]).astype(np.float32),
                    "mom32": mom.astype(np.float32)}
                if len(self.offset_bins):
                    # Per offset bin: the censoring with that offset (its bin's width as spread).
                    sj = np.sqrt(s**2 + offset_step_db**2 / 12.0)
                    tj = []
                    for o in self.offset_bins:
                        cj = np.logaddexp(np.log(p_miss),
                                          np.log1p(-p_miss) + log_ndtr((sens - M - o) / sj))
                        tj.append(np.vstack([M.T, (-0.5 * M**2 / s**2 - cj).T,
                                             cj.sum(axis=1)[None, :]]))
                    self.tables[(fi, ki)]["TJ32"] = np.stack(tj).astype(np.float32)

    def solve(self, rssi: np.ndarray, floor: int, kind: int, log_prior: np.ndarray | None = None,
              posterior: bool = False):
        """rssi (n, K_all) for devices of one floor and kind -> (xy, cov, p_out, n_heard).

        ``log_prior`` (n, G): added to the log-likelihood (GridFilter's prediction); with
        ``posterior`` the normalised weights (n, G) are returned as a fifth item.

        The log-likelihood over the grid, up to a per-device constant (which the normalisation
        removes), is

            ll = t (sum_h r M/s^2 - sum_h (M^2/2s^2 + cens) + sum_all cens) + 0.5 t (b - sum_h M/s^2)^2 / E

        with b = sum_h r/s^2 + mu_o/s_o^2 and E = sum_h 1/s^2 + 1/s_o^2 (the offset profiled
        out). The linear part is one (n, 2K+1) x (2K+1, G) product, the offset part one (n, K+1) x
        (K+1, G) product; the posterior moments and p_out one (n, G) x (G, 8) product. The
        (n, G) arrays are float32 (log-likelihood errors ~1e-3 nats) and built in place.
        """
        tb = self.tables.get((floor, kind))
        n = rssi.shape[0]
        if tb is None or n == 0:
            empty = (np.full((n, 2), np.nan), np.full((n, 2, 2), np.nan), np.zeros(n),
                     np.zeros(n, np.int64))
            return empty + (np.zeros((n, 0), np.float32),) if posterior else empty
        t = self.temper
        r = rssi[:, tb["cols"]]
        h = np.isfinite(r)
        k = r.shape[1]
        hf = h.astype(np.float32)
        rs2 = np.where(h, r, 0.0) * tb["inv_s2"]
        b = rs2.sum(1) + self.mu_o * self.inv_o2          # sum h r/s^2 + prior
        E = h @ tb["inv_s2"] + self.inv_o2
        X = np.empty((n, 2 * k + 1), np.float32)
        np.multiply(rs2, t, out=X[:, :k], casting="same_kind")
        np.multiply(hf, t, out=X[:, k:2 * k])
        X[:, 2 * k] = t
        ll = X @ tb["T32"]                                # (n, G)
        # sqrt(t/2E) (sum h M/s^2 - b), squared: the profiled offset's term.
        c = np.sqrt(0.5 * t / E)
        Y = np.empty((n, k + 1), np.float32)
        np.multiply(hf, c[:, None], out=Y[:, :k], casting="same_kind")
        np.multiply(b, -c, out=Y[:, k], casting="same_kind")
        q = Y @ tb["Ms2_32"]
        np.square(q, out=q)
        ll += q
        if log_prior is not None:
            ll += log_prior
        ll -= ll.max(axis=1, keepdims=True)
        w = np.exp(ll, out=ll)
        mu, cov, p_out, nh, _ = self._summary(w, tb, h)
        if posterior:
            w /= w.sum(axis=1, keepdims=True)
            return mu, cov, p_out, nh, w
        return mu, cov, p_out, nh

    def _summary(self, w: np.ndarray, tb: dict, h: np.ndarray):
        """Unnormalised grid weights (n, G) -> (mean, covariance, outside mass, gateways
        heard, sum of weights); NaN position for a device no gateway heard."""
        mo = (w @ tb["mom32"]).astype(np.float64)        # (n, 8): sum w, x, y, x^2, xy, y^2, out, 0
        total = mo[:, 0].copy()
        mo[:, 1:] /= mo[:, :1]
        mu = mo[:, 1:3] + tb["c0"]
        var = self.step**2 / 12.0
        cov = np.empty((len(w), 2, 2))
        cov[:, 0, 0] = np.maximum(mo[:, 3] - mo[:, 1] ** 2, 0) + var
        cov[:, 1, 1] = np.maximum(mo[:, 5] - mo[:, 2] ** 2, 0) + var
        cov[:, 0, 1] = cov[:, 1, 0] = mo[:, 4] - mo[:, 1] * mo[:, 2]
        if self.use_map:
            mu = tb["g"][np.argmax(w, axis=1)]
        nh = h.sum(1)
        none = nh == 0
        mu[none] = np.nan
        cov[none] = np.nan
        return mu, cov, mo[:, 6], nh, total

    def solve_joint(self, rssi: np.ndarray, floor: int, kind: int, log_q: np.ndarray,
                    log_prior: np.ndarray | None = None, block: int = 512):
        """Position and power offset together: rssi (n, K_all), ``log_q`` (n, J) each phone's
        log distribution over ``offset_bins`` (what earlier windows taught), ``log_prior``
        (n, G) on positions or None -> (xy, cov, p_out, n_heard, w (n, G), q (n, J)).

        For offset bin j the log-likelihood is t (sum_h (r-o_j) M/s^2 - sum_h (M^2/2s^2 + cens_j)
        + sum_all cens_j) - t sum_h (r-o_j)^2/2s^2: the heard and the silent gateways see the
        same offset (``solve`` profiles it from the heard alone, which the censoring biases
        upwards). One (n, 2K+1) x (2K+1, G) product per bin.
        """
        tb = self.tables.get((floor, kind))
        n = rssi.shape[0]
        J = len(self.offset_bins)
        if tb is None or n == 0:
            return (np.full((n, 2), np.nan), np.full((n, 2, 2), np.nan), np.zeros(n),
                    np.zeros(n, np.int64), np.zeros((n, 0), np.float32), np.exp(log_q))
        outs = [self._solve_joint(rssi[i:i + block], tb, log_q[i:i + block],
                                  None if log_prior is None else log_prior[i:i + block], J)
                for i in range(0, n, block)]
        return tuple(np.concatenate([o[k] for o in outs]) for k in range(6))

    def _solve_joint(self, rssi, tb, log_q, log_prior, J):
        t = self.temper
        n = rssi.shape[0]
        r = rssi[:, tb["cols"]]
        h = np.isfinite(r)
        k = r.shape[1]
        rr = np.where(h, r, 0.0)
        inv_s2 = tb["inv_s2"]
        X = np.empty((n, 2 * k + 1), np.float32)
        np.multiply(h, t, out=X[:, k:2 * k], casting="unsafe")
        X[:, 2 * k] = t
        G = tb["TJ32"].shape[2]
        ll = np.empty((J, n, G), np.float32)
        for j, o in enumerate(self.offset_bins):
            d = np.where(h, rr - o, 0.0)
            np.multiply(d * inv_s2, t, out=X[:, :k], casting="same_kind")
            np.matmul(X, tb["TJ32"][j], out=ll[j])
            cj = -0.5 * t * (d * d * inv_s2).sum(1) + log_q[:, j]
            ll[j] += cj[:, None].astype(np.float32)
        if log_prior is not None:
            ll += log_prior[None]
        ll -= ll.max(axis=(0, 2))[None, :, None]
        np.exp(ll, out=ll)
        w = ll.sum(axis=0)                               # (n, G) positions
        q = ll.sum(axis=2).T.astype(np.float64)          # (n, J) offsets
        q /= q.sum(axis=1, keepdims=True)
        mu, cov, p_out, nh, total = self._summary(w, tb, h)
        w /= total[:, None].astype(np.float32)
        return mu, cov, p_out, nh, w, q


class GridFilter:
    """Each device's position posterior over its floor's grid, carried from window to window.

    One window heard by one or two gateways places a phone poorly (the fix of a single window
    is ~17 m off on the sample mall); a shopper standing in a store is heard by different
    gateways from window to window, and the product of those likelihoods can place it far
    better. The prediction spreads the previous posterior by a random walk of ``sigma_mps``
    per second (a sparse nearest-neighbour blur on the lattice, walls reflecting), floored at
    ``floor_p`` of its peak so a phone that really moved is found again; the window's
    likelihood multiplies it (``GridPosterior.solve`` with ``log_prior``).

    The phone's power offset must be carried too: ``GridPosterior.solve`` profiles it anew in
    every window from the heard gateways alone (which censoring biases upwards), a per-window
    bias that the product of windows amplifies. With ``GridPosterior(offset_step_db=...)`` the
    offset is a hidden variable on bins, ``solve_joint`` weighs heard and silent gateways with
    the same offset, and ``q`` keeps each phone's distribution over the bins.

    Off by default (``DeviceConfig.grid_filter``): on synthetic readings it takes a standing
    phone from 7-11 m to 1-3 m, but on firmware_sim the fixed shadowing of a place (5.5 dB per
    gateway, decorrelating within metres) is a bias no integration removes, the journey
    metrics move both ways, and a window costs ~3x (docs/metrics.md, "Positions").
    """

    def __init__(self, grid: GridPosterior, capacity: int, *, sigma_mps: float = 1.5,
                 floor_p: float = 1e-3, reset_s: float = 20.0, max_steps: int = 8,
                 offset_mix_s: float = 0.005) -> None:
        from scipy import sparse

        self.grid = grid
        # Each phone's distribution over the grid's offset bins (when it has them): it relaxes
        # towards the population prior by offset_mix_s per second (crowd, a phone put away).
        self.joint = len(grid.offset_bins) > 0
        self.offset_mix_s = offset_mix_s
        self.q = np.tile(np.exp(grid.offset_log_prior), (capacity, 1)).astype(np.float32)
        self.q_t = np.full(capacity, np.nan)
        self.floor_p = floor_p
        self.reset_s = reset_s
        self.max_steps = max_steps
        gmax = max(len(k) for _, _, k in grid.lattice.values())
        self.post = np.zeros((capacity, gmax), np.float32)
        self.floor = np.full(capacity, -1, np.int64)
        self.t = np.full(capacity, np.nan)
        # One second of motion: variance sigma^2 per axis, as [a, 1-2a, a] per lattice axis.
        a = min(0.5 * (sigma_mps / grid.step) ** 2, 0.3)
        self.blur = {}
        for fi, (nx, ny, keep) in grid.lattice.items():
            pos = np.full(nx * ny, -1)
            pos[keep] = np.arange(len(keep))
            ix, iy = np.divmod(keep, ny)
            rows, cols, vals = [], [], []
            for dx, wx in ((-1, a), (0, 1 - 2 * a), (1, a)):
                for dy, wy in ((-1, a), (0, 1 - 2 * a), (1, a)):
                    jx, jy = ix + dx, iy + dy
                    ok = (jx >= 0) & (jx < nx) & (jy >= 0) & (jy < ny)
                    j = np.full(len(keep), -1)
                    j[ok] = pos[jx[ok] * ny + jy[ok]]
                    # A move into a wall or a void stays where it was (mass kept).
                    j = np.where(j >= 0, j, np.arange(len(keep)))
                    rows.append(np.arange(len(keep)))
                    cols.append(j)
                    vals.append(np.full(len(keep), wx * wy))
            m = sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                                  shape=(len(keep), len(keep)), dtype=np.float32)
            self.blur[fi] = m          # row i: where the mass at i goes; post @ m moves it

    def reset(self, slots) -> None:
        self.floor[slots] = -1
        self.t[slots] = np.nan
        if self.joint:
            self.q[slots] = np.exp(self.grid.offset_log_prior)
            self.q_t[slots] = np.nan

    def log_q(self, slots: np.ndarray, t: float) -> np.ndarray:
        """(n, J) log of each phone's predicted offset distribution at t."""
        prior = np.exp(self.grid.offset_log_prior)
        dt = np.nan_to_num(t - self.q_t[slots], nan=0.0)
        keep = np.exp(-self.offset_mix_s * np.maximum(dt, 0.0))[:, None]
        q = keep * self.q[slots] + (1.0 - keep) * prior[None, :]
        return np.log(np.maximum(q, 1e-12))

    def log_prior(self, slots: np.ndarray, floor: int, t: float) -> np.ndarray:
        """(n, G) log of the predicted posterior (0 for a device with none: flat)."""
        g = len(self.grid.lattice[floor][2])
        out = np.zeros((len(slots), g), np.float32)
        dt = t - self.t[slots]
        have = (self.floor[slots] == floor) & (dt >= 0) & (dt <= self.reset_s)
        if not have.any():
            return out
        i = np.flatnonzero(have)
        p = self.post[slots[i], :g]
        steps = np.clip(np.rint(dt[i]).astype(int), 0, self.max_steps)
        m = self.blur[floor]
        for k in range(1, int(steps.max()) + 1):
            j = steps >= k
            p[j] = np.asarray(p[j] @ m)
        p /= p.max(axis=1, keepdims=True)
        np.maximum(p, self.floor_p, out=p)
        out[i] = np.log(p)
        return out

    def store(self, slots: np.ndarray, floor: int, t: float, w: np.ndarray,
              q: np.ndarray | None = None) -> None:
        g = w.shape[1]
        self.post[slots, :g] = w
        self.floor[slots] = floor
        self.t[slots] = t
        if q is not None:
            self.q[slots] = q
            self.q_t[slots] = t
