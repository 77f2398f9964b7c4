"""Per-device state over windows: floor (HMM), track (Kalman), zone (hysteresis), inside/outside.

All state lives in arrays over a fixed number of slots, so one window costs a fixed number of
vectorized operations whatever the number of devices; Python-level work happens only for
devices that are born, change something or expire (a few per window).

A device is one pseudonym (one radio address); ``analytics.visitors`` merges devices into
visitors. Late windows (``Window.late``) are evidence only: they extend a known device's
presence (first/last seen) without rewinding its track, and a device first heard in a late
window is born and followed through the late windows in their own time order.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from analytics.linking import update_signature
from analytics.locating import KINDS, Locator, WindowMatrix
from locate.floors import Connectors, FloorHMM
from locate.track import KalmanTracker
from locate.zones import ZoneHysteresis, ZoneIndex

log = logging.getLogger(__name__)

OUT, DOOR, IN = 0, 1, 2


@dataclass
class DeviceConfig:
    capacity: int = 8192          # simultaneous devices (slots)
    expiry_s: float = 90.0        # a device not heard for this long is gone
    floor_temp_db: float = 8.0    # evidence dB per nat of floor log-likelihood
    floor_min_dwell_s: float = 30.0
    floor_p_change: float = 0.02  # per window, next to an escalator or lift
    floor_commit_p: float = 0.95  # a new floor is committed at this posterior probability
    floor_settle_windows: int = 20  # before that, a change is the first guess corrected
    floor_connector_m: float = 8.0  # a floor change needs the track this near an escalator/lift
    zone_t_enter_s: float = 30.0
    zone_t_exit_s: float = 120.0
    inside_tau_s: float = 10.0     # smoothing of the inside indicator
    kalman_sigma_a: float = 0.15
    # Positions from each device's grid posterior carried over windows (GridFilter) instead
    # of one window's fix through the Kalman filter. Off: on firmware_sim it moves the journey
    # metrics both ways for ~3x the cost per window (docs/metrics.md, "Positions").
    grid_filter: bool = False
    grid_sigma_mps: float = 1.5
    grid_floor_p: float = 1e-3
    # With the filter, each phone's power offset is a hidden variable on bins this far apart
    # (dB; 0: profiled anew in every window), carried from window to window.
    grid_offset_step_db: float = 2.0
    grid_offset_mean_db: float = -2.0
    grid_offset_sd_db: float = 4.0
    grid_offset_mix_s: float = 0.005


@dataclass
class Transitions:
    """What changed in one window (lists of tuples, slot indices into the table)."""

    t: float
    born: list = field(default_factory=list)          # slot
    floor_changes: list = field(default_factory=list)  # (slot, from_f, to_f, t, via_zone|-1)
    zone_enters: list = field(default_factory=list)    # (slot, zone, enter_t)
    zone_exits: list = field(default_factory=list)     # (slot, zone, enter_t, exit_t)
    went_in: list = field(default_factory=list)        # (slot, t, entrance_zone)
    went_out: list = field(default_factory=list)       # (slot, t, entrance_zone)
    gone: list = field(default_factory=list)           # DeviceSummary
    n_devices: int = 0
    n_sightings: int = 0
    late: bool = False


@dataclass(frozen=True)
class DeviceSummary:
    id: str
    slot: int
    kind: str
    first_t: float
    last_t: float
    windows: int
    ever_inside: bool
    inside: bool
    extent_m: float               # diagonal of the box its track covered
    last_xy: tuple[float, float]
    last_floor: int
    entrance: int                 # last entrance zone near it (-1 none)
    fp: str | None
    member: str | None
    bbox: tuple = (float("nan"),) * 4   # xmin ymin xmax ymax of its filtered track
    spread_m: float = 0.0               # RMS distance of its track from the track's mean
    out_long: bool = False              # seen outside (street, metro) for several windows


class DeviceTable:
    def __init__(self, site, locator: Locator | None = None, config: DeviceConfig | None = None) -> None:
        self.cfg = cfg = config or DeviceConfig()
        self.site = site
        if locator is None:
            opts = None
            if cfg.grid_filter:
                opts = {"offset_step_db": cfg.grid_offset_step_db,
                        "offset_mean_db": cfg.grid_offset_mean_db,
                        "offset_sd_db": cfg.grid_offset_sd_db}
            locator = Locator(site, grid_options=opts)
        self.loc = locator
        n, nf = cfg.capacity, len(self.loc.floor_ids)
        self.n_floors = nf
        self.slot_of: dict[str, int] = {}
        self._free = list(range(n - 1, -1, -1))
        self.ids = np.full(n, None, dtype=object)
        self.live = np.zeros(n, bool)           # slot in use (cheaper than ids != None)
        self.kind = np.zeros(n, np.uint8)
        self.first_t = np.full(n, np.nan)
        self.last_t = np.full(n, np.nan)
        self.windows = np.zeros(n, np.int64)
        self.floor = np.full(n, -1, np.int64)
        self.inside_m = np.full(n, 0.5)
        self.inside = np.zeros(n, bool)
        self.been_out = np.zeros(n, bool)       # a committed outside state seen (street, metro)
        self.out_long = np.zeros(n, bool)       # ... held for several windows
        self.ever_inside = np.zeros(n, bool)
        self.bbox = np.full((n, 4), np.nan)     # xmin ymin xmax ymax of the filtered track
        self.moments = np.zeros((n, 5))          # n, sum x, sum y, sum x^2, sum y^2 of the track
        self.entrance = np.full(n, -1, np.int64)
        self.entrance_t = np.full(n, np.nan)
        self.via = np.full(n, -1, np.int64)
        self.via_t = np.full(n, np.nan)
        self.fp = np.full(n, None, dtype=object)
        self.member = np.full(n, None, dtype=object)
        self.raw_zone = np.full(n, -1, np.int64)
        # Radio signature per device: EMA of its readings re each gateway's RSSI at 1 m.
        self.sig = np.full((n, len(self.loc.gw_ids)), np.nan, np.float32)
        self.sq = np.full(n, -1, np.int16)      # newest 802.11 sequence number heard
        self.rnd = np.full(n, -1, np.int8)      # randomized address: -1 unknown, 0 public, 1 random
        self.late_born = np.zeros(n, bool)     # born in a late window: expires on late time
        self.late_t = float("-inf")            # newest late window processed
        self.live_since_late = 0               # live windows since the last late one
        zones = site.zones
        self.zone_ids = [z.id for z in zones]
        self.zone_kind = np.array([z.kind for z in zones], dtype=object)
        self.zone_floor = np.array([self.loc.floor_ix[z.floor] for z in zones])
        self.zindex = ZoneIndex([np.asarray(z.polygon, float) for z in zones], self.zone_floor,
                                ids=self.zone_ids, kinds=list(self.zone_kind))
        self.zone_class = np.array([OUT if k == "outside" else DOOR if k == "entrance" else IN
                                    for k in self.zone_kind] + [IN])   # index -1 -> IN (no zone)
        self.is_entrance = self.zone_kind == "entrance"
        self.is_connector = np.isin(self.zone_kind, ["escalator", "lift"])
        self.is_store = self.zone_kind == "store"
        self.entr_idx = np.flatnonzero(self.is_entrance)
        self.entr_xy = np.array([np.mean(np.asarray(zones[i].polygon, float), axis=0)
                                 for i in self.entr_idx]).reshape(-1, 2)
        conn = np.flatnonzero(self.is_connector)
        # A connector zone (one landing per floor) links the floors its shaft serves.
        shaft_floors: dict[str, set[int]] = {}
        for i in conn:
            z = zones[i]
            key = z.shaft or z.id
            shaft_floors.setdefault(key, set()).add(self.loc.floor_ix[z.floor])
            for f in z.connects:
                if f in self.loc.floor_ix:
                    shaft_floors[key].add(self.loc.floor_ix[f])
        links = [sorted(shaft_floors[zones[i].shaft or zones[i].id]) for i in conn]
        # For "via": each landing's centre, floor and the floors its shaft serves.
        self.conn_idx = conn
        self.conn_xy = np.array([np.mean(np.asarray(zones[i].polygon, float), axis=0)
                                 for i in conn]).reshape(-1, 2)
        self.conn_floor = self.zone_floor[conn] if len(conn) else np.zeros(0, int)
        self.conn_serves = [set(l) for l in links]
        # Floors bottom to top, and (shaft, floor) -> landing zone: an escalator ride over
        # several floors passes each.
        self.floor_by_rank = np.argsort([f.elevation_m for f in site.floors], kind="stable")
        self.floor_rank = np.argsort(self.floor_by_rank)
        self.landing = {(zones[i].shaft or zones[i].id, int(self.zone_floor[i])): int(i) for i in conn}
        keep = [j for j, l in enumerate(links) if len(l) >= 2]
        self.connectors = Connectors([np.asarray(zones[conn[j]].polygon, float) for j in keep],
                                     [links[j] for j in keep], near_m=cfg.floor_connector_m) if keep else None
        from analytics.raster import ConnectorRaster, ZoneRaster

        self.zraster = ZoneRaster(self.zindex, self.loc.floor_bounds)
        self.craster = (ConnectorRaster(self.connectors, nf, self.loc.floor_bounds)
                        if self.connectors is not None else None)
        self.hmm = FloorHMM(nf, dt=1.0, min_dwell_s=cfg.floor_min_dwell_s, p_change=cfg.floor_p_change, p_leak=1e-4)
        self.alpha = np.zeros((n, nf, self.hmm.D))
        self.gfilter = None
        if cfg.grid_filter and self.loc.grid is not None:
            from analytics.gridpost import GridFilter

            self.gfilter = GridFilter(self.loc.grid, n, sigma_mps=cfg.grid_sigma_mps,
                                      floor_p=cfg.grid_floor_p, offset_mix_s=cfg.grid_offset_mix_s)
        self.kf = KalmanTracker(n, sigma_a=cfg.kalman_sigma_a, expiry_s=cfg.expiry_s, max_gated=4)
        self.zh = ZoneHysteresis(n, t_enter=cfg.zone_t_enter_s, t_exit=cfg.zone_t_exit_s)
        self.zh_t = float("-inf")
        self.t = float("-inf")

    # -- slots -----------------------------------------------------------------------------
    def _slots(self, wm: WindowMatrix, tr: Transitions) -> np.ndarray:
        out = np.empty(len(wm.ids), np.int64)
        get = self.slot_of.get
        for i, key in enumerate(wm.ids):
            s = get(key)
            if s is None:
                if not self._free:
                    self._evict_oldest(tr)
                s = self._free.pop()
                self.slot_of[key] = s
                self._init_slot(s, key, wm, i)
                tr.born.append(s)
            out[i] = s
        return out

    def _init_slot(self, s: int, key: str, wm: WindowMatrix, i: int) -> None:
        self.ids[s] = key
        self.live[s] = True
        self.kind[s] = wm.kind[i]
        self.first_t[s] = wm.t
        self.last_t[s] = wm.t
        self.windows[s] = 0
        self.floor[s] = -1
        self.inside_m[s] = 0.5
        self.inside[s] = self.ever_inside[s] = self.been_out[s] = self.out_long[s] = False
        self.bbox[s] = np.nan
        self.moments[s] = 0.0
        self.entrance[s] = -1
        self.entrance_t[s] = np.nan
        self.via[s] = -1
        self.via_t[s] = np.nan
        self.fp[s] = wm.fp[i]
        self.member[s] = wm.member[i]
        self.rnd[s] = wm.rnd[i]
        self.raw_zone[s] = -1
        self.sig[s] = np.nan
        self.sq[s] = -1
        self.late_born[s] = False
        self.alpha[s] = self.hmm.start(1)[0]
        self.kf.reset(np.array([s]))
        if self.gfilter is not None:
            self.gfilter.reset(np.array([s]))
        self.zh.reset(self._mask([s]))

    def _mask(self, slots) -> np.ndarray:
        m = np.zeros(self.cfg.capacity, bool)
        m[np.asarray(slots, dtype=np.int64)] = True
        return m

    def summary(self, s: int) -> DeviceSummary:
        b = self.bbox[s]
        extent = float(np.hypot(b[2] - b[0], b[3] - b[1])) if np.isfinite(b).all() else 0.0
        xy = self.kf.x[s, :2]
        return DeviceSummary(self.ids[s], s, KINDS[self.kind[s]], float(self.first_t[s]),
                             float(self.last_t[s]), int(self.windows[s]), bool(self.ever_inside[s]),
                             bool(self.inside[s]), extent, (float(xy[0]), float(xy[1])),
                             int(self.floor[s]), int(self.entrance[s]), self.fp[s], self.member[s],
                             tuple(float(x) for x in b), self.spread(s), bool(self.out_long[s]))

    def spread(self, s: int) -> float:
        n, sx, sy, sxx, syy = self.moments[s]
        if n < 2:
            return 0.0
        var = (sxx - sx * sx / n + syy - sy * sy / n) / n
        return float(np.sqrt(max(var, 0.0)))

    def _release(self, s: int, tr: Transitions) -> None:
        tr.gone.append(self.summary(s))
        del self.slot_of[self.ids[s]]
        self.ids[s] = None
        self.live[s] = False
        self._free.append(s)

    def _evict_oldest(self, tr: Transitions) -> None:
        live = np.flatnonzero(self.live)
        s = int(live[np.argmin(self.last_t[live])])
        log.warning("device table full (%d slots): evicting %s early", self.cfg.capacity, self.ids[s])
        self._close_zone(np.array([s]), tr)
        self._release(s, tr)

    def _close_zone(self, slots: np.ndarray, tr: Transitions) -> None:
        for s in slots.tolist():
            z = self.zh.zone[s]
            if z >= 0:
                tr.zone_exits.append((s, int(z), float(self.zh.enter_t[s]), float(self.zh.last_in[s])))
        self.zh.reset(self._mask(slots))

    # -- one window ------------------------------------------------------------------------
    def step(self, window) -> Transitions:
        wm = self.loc.matrix(window.t, window.parts)
        return self.step_matrix(wm, late=window.late)

    def step_matrix(self, wm: WindowMatrix, late: bool = False) -> Transitions:
        t = wm.t
        tr = Transitions(t, n_devices=len(wm.ids), n_sightings=wm.n_sightings, late=late)
        if not late:
            self.t = max(self.t, t)
            self.live_since_late += 1
        else:
            self.late_t = max(self.late_t, t)
            self.live_since_late = 0
        if wm.ids:
            self._observe(wm, tr, late)
        self._expire(t, late, tr)
        return tr

    def _observe(self, wm: WindowMatrix, tr: Transitions, late: bool) -> None:
        t = wm.t
        cfg = self.cfg
        slots = self._slots(wm, tr)
        if late and tr.born:
            self.late_born[np.asarray(tr.born)] = True
        # Evidence only for devices already past this event time (late data for a known device).
        current = ~(self.last_t[slots] > t)
        self.first_t[slots] = np.fmin(self.first_t[slots], t)
        self.last_t[slots] = np.fmax(self.last_t[slots], t)
        self.windows[slots] += 1
        for i, (f, m) in enumerate(zip(wm.fp, wm.member)):
            if f is not None or m is not None:
                s = slots[i]
                if f is not None:
                    self.fp[s] = f
                if m is not None:
                    self.member[s] = m
        rows = np.flatnonzero(current)
        if not len(rows):
            return
        s = slots[rows]
        if wm.sq is not None:
            q = wm.sq[rows]
            self.sq[s] = np.where(q >= 0, q, self.sq[s])
        self.sig[s] = update_signature(self.sig[s], wm.rssi[rows] - self.loc.p0[wm.kind[rows]])
        # Floors: sticky HMM over per-window evidence; changes only near a connector.
        ll = self.loc.floor_evidence(wm)[rows] / cfg.floor_temp_db
        prev_xy = self.kf.x[s, :2]
        if self.craster is not None:
            allowed = self.craster.allowed(prev_xy, self.floor[s])
        else:
            allowed = np.zeros((len(s), self.n_floors, self.n_floors), bool)
        new_dev = self.floor[s] < 0
        allowed[new_dev] = True
        self.alpha[s], post = self.hmm.step(self.alpha[s], ll, allowed)
        newf = np.argmax(post, axis=1)
        # Hysteresis on top of the HMM: leave the committed floor only when sure.
        cur = self.floor[s]
        keep = (cur >= 0) & (post[np.arange(len(s)), newf] < cfg.floor_commit_p)
        newf = np.where(keep, cur, newf)
        changed = (cur >= 0) & (newf != cur)
        settled = self.windows[s] > cfg.floor_settle_windows
        for j in np.flatnonzero(changed & settled).tolist():
            sj = int(s[j])
            via = int(self.via[sj]) if t - self.via_t[sj] <= 90.0 else -1
            if via < 0:
                via = self._nearest_connector(prev_xy[j], int(self.floor[sj]), int(newf[j]))
            for step in self._rides(int(self.floor[sj]), int(newf[j]), via):
                tr.floor_changes.append((sj,) + step[:2] + (t, step[2]))
        if changed.any():
            self.kf.reset(s[changed])
        self.floor[s] = newf
        floor_rows = np.full(len(wm.ids), -1, np.int64)
        floor_rows[rows] = newf
        # Positions: fixes with the floor's gateways, then the Kalman filter.
        track = None
        if self.gfilter is not None:
            slot_rows = np.zeros(len(wm.ids), np.int64)
            slot_rows[rows] = s
            track = (self.gfilter, slot_rows, t)
        fx = self.loc.solve(wm, floor_rows, rows, track=track)
        z = fx.xy[rows]
        R = fx.cov[rows].copy()
        self.last_fix = (s, z, R)          # for diagnostics
        weak = ~fx.ok[rows] & np.isfinite(z).all(axis=1) & ~np.isfinite(R).all(axis=(1, 2))
        R[weak] = np.eye(2) * 64.0          # ML with 1-2 gateways heard: near the loudest, 8 m sigma
        n = self.cfg.capacity
        dt = np.zeros(n)
        act = self.kf.active[s]
        dt[s[act]] = np.maximum(t - self.kf.t[s[act]], 0.0)
        mask = np.zeros(n, bool)
        mask[s] = True
        if self.gfilter is not None:
            # The posterior already holds the history: it is the track.
            got = np.isfinite(z).all(axis=1) & np.isfinite(R).all(axis=(1, 2))
            sg = s[got]
            self.kf.x[sg] = np.column_stack([z[got], np.zeros((len(sg), 2))])
            P = np.zeros((len(sg), 4, 4))
            P[:, :2, :2] = R[got]
            P[:, 2, 2] = P[:, 3, 3] = 1.0
            self.kf.P[sg] = P
            self.kf.active[sg] = True
            self.kf.t[s] = t
            self.kf.t_fix[sg] = t
        else:
            self.kf.predict(dt, mask)
            Z = np.full((n, 2), np.nan)
            RR = np.full((n, 2, 2), np.nan)
            Z[s] = z
            RR[s] = R
            st = self.kf.update(Z, RR, mask)
            self.kf.t[s] = t
            self.kf.t_fix[s[st.used[s]]] = t
        xy = self.kf.x[s, :2]
        fin = np.isfinite(xy).all(axis=1)
        b = self.bbox[s]
        b[fin, 0] = np.fmin(b[fin, 0], xy[fin, 0])
        b[fin, 1] = np.fmin(b[fin, 1], xy[fin, 1])
        b[fin, 2] = np.fmax(b[fin, 2], xy[fin, 0])
        b[fin, 3] = np.fmax(b[fin, 3], xy[fin, 1])
        self.bbox[s] = b
        mo = self.moments[s]
        xf = np.where(fin, xy[:, 0], 0.0)
        yf = np.where(fin, xy[:, 1], 0.0)
        mo += np.column_stack([fin, xf, yf, xf * xf, yf * yf])
        self.moments[s] = mo
        # Zones of the filtered position.
        rz = self.zraster.assign(np.where(fin[:, None], xy, np.nan), newf)
        self.raw_zone[s] = rz
        cls = self.zone_class[rz]
        cls = np.where(fx.outside[rows], OUT, cls)
        cls = np.where(fin, cls, DOOR)               # no position: no evidence either way
        ent = fin & (rz >= 0) & self.is_entrance[np.maximum(rz, 0)]
        self.entrance[s[ent]] = rz[ent]
        self.entrance_t[s[ent]] = t
        outs = np.flatnonzero(fin & (cls == OUT))
        if len(outs) and len(self.entr_idx):
            near = self._nearest_entrance(xy[outs], newf[outs])
            okn = near >= 0
            self.entrance[s[outs[okn]]] = near[okn]
            self.entrance_t[s[outs[okn]]] = t
        con = fin & (rz >= 0) & self.is_connector[np.maximum(rz, 0)]
        self.via[s[con]] = rz[con]
        self.via_t[s[con]] = t
        # Inside / outside with hysteresis on a smoothed indicator.
        a = 1.0 - np.exp(-1.0 / cfg.inside_tau_s)
        m = self.inside_m[s]
        upd = cls != DOOR
        m[upd] += a * ((cls[upd] == IN) - m[upd])
        self.inside_m[s] = m
        ins = self.inside[s]
        went_in = ~ins & (m > 0.75)
        went_out = ins & (m < 0.25)
        self.been_out[s] |= ~ins & (m < 0.4)      # a few windows of mostly-outside evidence
        self.out_long[s] |= ~ins & (m < 0.25)     # several: a passer-by's street, not a façade fix
        for j in np.flatnonzero(went_in | went_out).tolist():
            sj = int(s[j])
            # The entrance passed: the one it was last seen at (or outside of) within 2 min,
            # and only after a committed outside state. None for a device first heard inside
            # (a rotated address, a phone switched on): no entry is invented for it.
            e = int(self.entrance[sj]) if t - self.entrance_t[sj] <= 120.0 else -1
            if went_in[j] and not self.been_out[sj]:
                e = -1
            (tr.went_in if went_in[j] else tr.went_out).append((sj, t, e))
        self.inside[s] = (ins | went_in) & ~went_out
        self.ever_inside[s] |= went_in
        # Store visits with the locate hysteresis (enter after t_enter, exit after t_exit).
        zs = np.full(n, -1, np.int64)
        valid = np.zeros(n, bool)
        valid[s] = True
        zs[s] = np.where((rz >= 0) & self.is_store[np.maximum(rz, 0)], rz, -1)
        self._zone_update(t, zs, valid, tr)

    def _zone_update(self, t: float, zs: np.ndarray, valid: np.ndarray, tr: Transitions) -> None:
        step = self.zh.update(t, zs, valid)
        for sj in np.flatnonzero(step.exited).tolist():
            tr.zone_exits.append((sj, int(step.exit_zone[sj]), float(step.exit_enter_t[sj]),
                                  float(step.exit_t[sj])))
        for sj in np.flatnonzero(step.entered).tolist():
            tr.zone_enters.append((sj, int(step.zone[sj]), float(step.enter_t[sj])))

    def _rides(self, f_from: int, f_to: int, via: int) -> list[tuple[int, int, int]]:
        """(from, to, via) of a committed change: an escalator (or an unknown connector: most
        shoppers ride escalators) goes one floor per ride, so a change over several floors is
        each floor passed (the floor HMM's dwell cannot follow 20 s per floor); a lift goes
        straight."""
        if abs(int(self.floor_rank[f_to]) - int(self.floor_rank[f_from])) <= 1 or (
                via >= 0 and self.zone_kind[via] == "lift"):
            return [(f_from, f_to, via)]
        shaft = (self.site.zones[via].shaft or self.zone_ids[via]) if via >= 0 else None
        r0, r1 = self.floor_rank[f_from], self.floor_rank[f_to]
        d = 1 if r1 > r0 else -1
        out = []
        for r in range(r0, r1, d):
            a, b = int(self.floor_by_rank[r]), int(self.floor_by_rank[r + d])
            v = via if a == f_from else self.landing.get((shaft, a), -1) if shaft else -1
            out.append((a, b, v))
        return out

    def _nearest_connector(self, xy, f_from: int, f_to: int, max_m: float = 25.0) -> int:
        """The landing on f_from of the nearest shaft serving f_to (-1 if none within max_m)."""
        if not len(self.conn_idx) or not np.isfinite(xy).all():
            return -1
        ok = np.array([(self.conn_floor[c] == f_from) and (f_to in self.conn_serves[c])
                       for c in range(len(self.conn_idx))])
        if not ok.any():
            return -1
        d = np.where(ok, np.hypot(self.conn_xy[:, 0] - xy[0], self.conn_xy[:, 1] - xy[1]), np.inf)
        c = int(np.argmin(d))
        return int(self.conn_idx[c]) if d[c] <= max_m else -1

    def _nearest_entrance(self, xy: np.ndarray, floor: np.ndarray) -> np.ndarray:
        """Nearest entrance zone per point, same floor first (floor -1: any floor)."""
        d = np.hypot(xy[:, None, 0] - self.entr_xy[None, :, 0], xy[:, None, 1] - self.entr_xy[None, :, 1])
        efl = self.zone_floor[self.entr_idx]
        same = (floor[:, None] < 0) | (efl[None, :] == floor[:, None])
        d = np.where(same, d, np.inf)
        best = np.argmin(d, axis=1)
        return np.where(np.isfinite(d[np.arange(len(xy)), best]), self.entr_idx[best], -1)

    def _expire(self, t: float, late: bool, tr: Transitions) -> None:
        live = self.live
        horizon = self.cfg.expiry_s
        stale = live & ~self.late_born & (self.last_t < self.t - horizon)
        # Devices of a replayed spool live on the replay's clock; once the replay has been
        # idle for longer than the expiry, they are gone as well.
        late_clock = self.late_t if self.live_since_late <= horizon else float("inf")
        stale |= live & self.late_born & (self.last_t < late_clock - horizon)
        if not stale.any():
            return
        slots = np.flatnonzero(stale)
        self._close_zone(slots, tr)
        self.kf.reset(slots)
        for sj in slots.tolist():
            self._release(sj, tr)

    def close(self) -> Transitions:
        """End of data: every device is gone, every open visit closed at its last observation."""
        tr = Transitions(self.t)
        slots = np.flatnonzero(self.live)
        self._close_zone(slots, tr)
        for sj in slots.tolist():
            self._release(sj, tr)
        return tr
