"""One window of sightings from all gateways -> per-device RSSI matrix, floor evidence, fixes.

The site is turned into arrays once (anchors, per-kind path-loss parameters per gateway, the
floor of each gateway); each window then costs a handful of vectorized calls, independent of
the number of devices: one :func:`locate.multilaterate` per (floor, radio kind).

Floors are a classification over time, not the z of a fix (DESIGN.md, radio realism): the
per-window *evidence* for floor f is the mean of the two strongest path-loss-normalised RSSI
values among the gateways on f; ``analytics.devices`` smooths it with a sticky HMM.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import chain

import numpy as np

from locate import PathLoss, multilaterate

log = logging.getLogger(__name__)

KINDS = ("ble", "wifi")
DEVICE_Z_M = 1.2          # phone height above the floor (hand, pocket, bag)
_FLOOR_MISSING_DB = -45.0  # normalised evidence for a floor none of whose gateways heard


@dataclass
class WindowMatrix:
    """All sightings of one window as arrays; one row per device id."""

    t: float
    ids: list[str]
    kind: np.ndarray          # (N,) uint8 index into KINDS
    rssi: np.ndarray          # (N, K) dBm, NaN = not heard
    fp: list[str | None]
    member: list[str | None]
    rnd: np.ndarray           # (N,) int8 -1/0/1
    n_sightings: int
    sq: np.ndarray | None = None  # (N,) int16 newest 802.11 sequence number (-1 none)


@dataclass
class Fixes:
    xy: np.ndarray            # (N, 2)
    cov: np.ndarray           # (N, 2, 2)
    ok: np.ndarray            # (N,) bool
    n_heard: np.ndarray       # (N,)
    outside: np.ndarray       # (N,) bool: an outside zone explains the readings at least as well


class Locator:
    def __init__(self, site, *, method: str = "grid", loss: str = "huber",
                 solve_kinds: tuple[str, ...] = KINDS, grid_step_m: float = 3.0,
                 grid_options: dict | None = None) -> None:
        if method not in ("grid", "ml"):
            raise ValueError(f"method must be 'grid' or 'ml', got {method!r}")
        self.method = method
        self.site = site
        self.gw_ids = [g.id for g in site.gateways]
        self.gw_col = {g: i for i, g in enumerate(self.gw_ids)}
        self.anchors = site.gateway_xyz()
        self.floor_ids = [f.id for f in site.floors]
        self.floor_ix = {f: i for i, f in enumerate(self.floor_ids)}
        self.gw_floor = np.array([self.floor_ix[g.floor] for g in site.gateways])
        self.loss = loss
        self.solve_kinds = solve_kinds
        k = len(self.gw_ids)
        # Per kind: p0 (with the gateway's calibration offset), exponent, sigma; NaN p0 where
        # the gateway has no such radio so its column is ignored.
        self.p0 = np.full((len(KINDS), k), np.nan)
        self.expo = np.full((len(KINDS), k), np.nan)
        self.sigma = np.full((len(KINDS), k), np.nan)
        self.sens = np.full((len(KINDS), k), np.nan)
        for ki, kind in enumerate(KINDS):
            rd = site.radio.get(kind)
            if rd is None:
                continue
            for j, g in enumerate(site.gateways):
                if kind in g.radios:
                    self.p0[ki, j] = rd.p0_dbm + g.p0_offset_db
                    self.expo[ki, j] = g.exponent if g.exponent is not None else rd.exponent
                    self.sigma[ki, j] = rd.sigma_db
                    self.sens[ki, j] = (g.sensitivity_dbm if g.sensitivity_dbm is not None
                                        else rd.sensitivity_dbm)
        self.floor_cols = [np.flatnonzero(self.gw_floor == f) for f in range(len(self.floor_ids))]
        self.floor_z = np.array([f.elevation_m + DEVICE_Z_M for f in site.floors])
        # Each floor is solved with its own gateways only, in a frame whose z origin is that
        # floor (locate wants heights >= 0; a basement has negative elevation).
        self.anchors_rel = self.anchors.copy()
        self.anchors_rel[:, 2] -= np.array([site.floor(g.floor).elevation_m for g in site.gateways])
        self.floor_bounds = []
        for f in site.floors:
            o = np.asarray(f.outline, float)
            self.floor_bounds.append((o[:, 0].min(), o[:, 1].min(), o[:, 0].max(), o[:, 1].max()))
        # Outside zones (street, metro concourse) per floor as boxes. Gateways hang inside, so
        # a fix of a device on the street is pulled inwards; a second fix confined to the
        # street box competes with the free one (same model, same degrees of freedom) and the
        # better fit decides (``outside_margin`` in units of the cost, favouring inside).
        self.outside_boxes: list[list[tuple[float, float, float, float]]] = [[] for _ in site.floors]
        self.inside_boxes: list[tuple[float, float, float, float]] = list(self.floor_bounds)
        for z in site.zones:
            if z.kind == "outside":
                p = np.asarray(z.polygon, float)
                self.outside_boxes[self.floor_ix[z.floor]].append(
                    (p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max()))
        for fi, f in enumerate(site.floors):
            # The walkable inside: the bounding box of the floor's non-outside zones.
            ps = [np.asarray(z.polygon, float) for z in site.zones_on(f.id) if z.kind != "outside"]
            if ps:
                allp = np.vstack(ps)
                self.inside_boxes[fi] = (allp[:, 0].min(), allp[:, 1].min(), allp[:, 0].max(), allp[:, 1].max())
        self.outside_margin = 0.0
        self.outside_near_m = 25.0
        self.grid = None
        if method == "grid":
            from analytics.gridpost import GridPosterior

            self.grid = GridPosterior(site, self, step_m=grid_step_m, **(grid_options or {}))

    # -- window -> matrix ------------------------------------------------------------------
    def matrix(self, t: float, parts) -> WindowMatrix:
        """Stack the gateway batches of one window into a (devices x gateways) RSSI matrix.

        Rows in order of first appearance. All batches at once: ids to rows with C-level dict
        passes, then one scatter when no (device, gateway) cell is hit twice (the usual case);
        otherwise batch by batch, the stronger reading of a device kept.
        """
        good = []
        cols = []
        for p in parts:
            col = self.gw_col.get(p.gw)
            if col is None:
                log.debug("batch from unknown gateway %s ignored", p.gw)
                continue
            good.append(p)
            cols.append(col)
        allids = list(chain.from_iterable(p.id for p in good))
        total = len(allids)
        ids = list(dict.fromkeys(allids))
        n = len(ids)
        k = len(self.gw_ids)
        row_of = dict(zip(ids, range(n)))
        rows = np.fromiter(map(row_of.__getitem__, allids), np.int64, total)
        lens = [len(p.id) for p in good]
        kind = np.zeros(n, np.uint8)
        rnd = np.full(n, -1, np.int8)
        rssi = np.full((n, k), np.nan)
        fp: list[str | None] = [None] * n
        member: list[str | None] = [None] * n
        if total:
            key = rows * k + np.repeat(np.asarray(cols, np.int64), lens)
            seq = np.arange(total)
            last = np.empty(n * k, np.int64)
            last[key] = seq
            if np.array_equal(last[key], seq):      # every (device, gateway) cell hit once
                rssi.reshape(-1)[key] = np.concatenate([p.rssi for p in good])
                kind[rows] = np.concatenate([p.kind for p in good])
                np.maximum.at(rnd, rows, np.concatenate([p.rnd for p in good]))
            else:
                off = 0
                for p, col, m in zip(good, cols, lens):
                    r = rows[off:off + m]
                    off += m
                    if not m:
                        continue
                    # Same device twice in one batch: keep the stronger reading.
                    rssi[r, col] = np.fmax(rssi[r, col], p.rssi)
                    kind[r] = p.kind
                    rnd[r] = np.maximum(rnd[r], p.rnd)
            off = 0
            rl = None
            for p, m in zip(good, lens):
                for src, dst in ((p.fp, fp), (p.member, member)):
                    if src.count(None) != m:
                        if rl is None:
                            rl = rows.tolist()
                        for j, v in enumerate(src):
                            if v is not None:
                                dst[rl[off + j]] = v
                off += m
        sq = np.full(n, -1, np.int16)
        if total and any(p.sq is not None for p in good):
            col = np.concatenate([p.sq if p.sq is not None else np.full(len(p.id), -1, np.int16)
                                  for p in good])
            # Gateways hear different frames of a burst: the newest any heard (no wrap handling:
            # a burst across 4095 -> 0 is 1 in ~500 and the chaining tolerance absorbs it).
            np.maximum.at(sq, rows, col)
        return WindowMatrix(t, ids, kind, rssi, fp, member, rnd, total, sq)

    # -- floor evidence --------------------------------------------------------------------
    def floor_evidence(self, wm: WindowMatrix) -> np.ndarray:
        """(N, F) mean of the two strongest normalised readings per floor (dB re p0)."""
        p0 = self.p0[wm.kind]                       # (N, K)
        norm = wm.rssi - p0
        out = np.full((len(wm.ids), len(self.floor_ids)), _FLOOR_MISSING_DB)
        for f, cols in enumerate(self.floor_cols):
            if not len(cols):
                continue
            sub = np.where(np.isnan(norm[:, cols]), -np.inf, norm[:, cols])
            if sub.shape[1] >= 2:
                top = -np.partition(-sub, 1, axis=1)[:, :2]
            else:
                top = np.repeat(sub, 2, axis=1)
            best, second = top[:, 0], top[:, 1]
            second = np.where(np.isfinite(second), second, np.maximum(best - 6.0, _FLOOR_MISSING_DB))
            ev = np.where(np.isfinite(best), 0.5 * (best + second), _FLOOR_MISSING_DB)
            out[:, f] = np.maximum(ev, _FLOOR_MISSING_DB)
        return out

    # -- positions -------------------------------------------------------------------------
    def solve(self, wm: WindowMatrix, floor: np.ndarray, rows: np.ndarray | None = None,
              track=None) -> Fixes:
        """Fix each device (rows, default all) with the gateways of its floor only.

        ``track``: (GridFilter, slots (N,) of the rows, t) to carry each device's grid
        posterior from window to window (the fix is then that posterior's mean)."""
        if self.method == "ml":
            return self.solve_ml(wm, floor, rows)
        n = len(wm.ids)
        xy = np.full((n, 2), np.nan)
        cov = np.full((n, 2, 2), np.nan)
        n_heard = np.zeros(n, np.int64)
        outside = np.zeros(n, bool)
        mask = np.zeros(n, bool)
        mask[slice(None) if rows is None else rows] = True
        g = self.grid
        for f in range(len(self.floor_ids)):
            for ki, kind in enumerate(KINDS):
                if kind not in self.solve_kinds:
                    continue
                sel = np.flatnonzero(mask & (floor == f) & (wm.kind == ki))
                if not len(sel):
                    continue
                if track is not None:
                    filt, slots, t = track
                    lp = filt.log_prior(slots[sel], f, t)
                    if filt.joint:
                        mu, c, p_out, nh, w, q = g.solve_joint(
                            wm.rssi[sel], f, ki, filt.log_q(slots[sel], t), log_prior=lp)
                    else:
                        mu, c, p_out, nh, w = g.solve(wm.rssi[sel], f, ki, posterior=True,
                                                      log_prior=lp)
                        q = None
                    heard = nh > 0
                    filt.store(slots[sel][heard], f, t, w[heard],
                               None if q is None else q[heard])
                else:
                    mu, c, p_out, nh = g.solve(wm.rssi[sel], f, ki)
                xy[sel], cov[sel], n_heard[sel], outside[sel] = mu, c, nh, p_out > 0.5
        ok = n_heard >= 3
        return Fixes(xy, cov, ok, n_heard, outside)

    def solve_ml(self, wm: WindowMatrix, floor: np.ndarray, rows: np.ndarray | None = None,
                 prior_xy: np.ndarray | None = None, prior_cov: np.ndarray | None = None) -> Fixes:
        """Maximum-likelihood fixes (locate.multilaterate), an inside and an outside fit."""
        n = len(wm.ids)
        xy = np.full((n, 2), np.nan)
        cov = np.full((n, 2, 2), np.nan)
        ok = np.zeros(n, bool)
        n_heard = np.zeros(n, np.int64)
        outside = np.zeros(n, bool)
        mask = np.zeros(n, bool)
        if rows is None:
            mask[:] = True
        else:
            mask[rows] = True
        for f, cols in enumerate(self.floor_cols):
            for ki, kind in enumerate(KINDS):
                if kind not in self.solve_kinds:
                    continue
                kcols = cols[np.isfinite(self.p0[ki, cols])]
                sel = np.flatnonzero(mask & (floor == f) & (wm.kind == ki))
                if not len(sel) or len(kcols) < 1:
                    continue
                sub = wm.rssi[np.ix_(sel, kcols)]
                heard = np.isfinite(sub).any(axis=1)
                if not heard.any():
                    continue
                sel, sub = sel[heard], sub[heard]
                model = PathLoss(self.p0[ki, kcols], self.expo[ki, kcols], self.sigma[ki, kcols])
                kw = {}
                if prior_xy is not None:
                    kw = {"prior_xy": prior_xy[sel], "prior_cov": prior_cov[sel]}
                anchors = self.anchors_rel[kcols]
                fix = multilaterate(anchors, sub, model, z=DEVICE_Z_M,
                                    bounds=self.inside_boxes[f], loss=self.loss, **kw)
                fxy, fcov, fok, cost = fix.xy.copy(), fix.cov.copy(), fix.ok.copy(), fix.cost.copy()
                out = np.zeros(len(sel), bool)
                for box in self.outside_boxes[f]:
                    dx = np.maximum(np.maximum(box[0] - fxy[:, 0], fxy[:, 0] - box[2]), 0.0)
                    dy = np.maximum(np.maximum(box[1] - fxy[:, 1], fxy[:, 1] - box[3]), 0.0)
                    near = np.flatnonzero(np.hypot(dx, dy) <= self.outside_near_m)
                    if not len(near):
                        continue
                    ofix = multilaterate(anchors, sub[near], model, z=DEVICE_Z_M, bounds=box,
                                         loss=self.loss)
                    better = ofix.cost <= cost[near] + self.outside_margin
                    better &= np.isfinite(ofix.xy).all(axis=1)
                    b = near[better]
                    fxy[b], fcov[b], fok[b], cost[b] = ofix.xy[better], ofix.cov[better], ofix.ok[better], ofix.cost[better]
                    out[b] = True
                xy[sel] = fxy
                cov[sel] = fcov
                ok[sel] = fok
                n_heard[sel] = fix.n_heard
                outside[sel] = out
        return Fixes(xy, cov, ok, n_heard, outside)
