"""People as agents: one plan per person, as knots (t, x, y, floor) of a piecewise-linear path.

A Python loop per person per trip plan; movement itself is vectorized (firmware_sim.motion).
Roles: shopper (enters, visits stores, leaves), passerby (walks the street, never enters),
staff (all day in one store), fixed (POS terminal, printer, signage, reference beacon: never
moves). Every agent carries exactly one device; device i belongs to agent i.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import numpy as np
import shapely

from firmware_sim import behaviour
from firmware_sim.walk import MARGIN, SiteGeometry

log = logging.getLogger(__name__)

ROLES = ("shopper", "passerby", "staff", "fixed")
SHOPPER, PASSERBY, STAFF, FIXED = range(4)
ESCALATOR_S_PER_FLOOR = 20.0
LIFT_WAIT_S = (15.0, 60.0)
LIFT_S_PER_FLOOR = 6.0
WARMUP_S = 5 * 3600.0  # plan arrivals this long before start so the mall is not empty
IN_STORE_SPEED = 0.6  # fraction of walking speed while browsing


@dataclass
class Crowd:
    role: np.ndarray  # (N,) int8, ROLES index
    kind: list[str]  # device kind: phone, pos, printer, signage, beacon
    home_zone: np.ndarray  # (N,) int: staff/fixed store or zone, -1 otherwise
    member: np.ndarray  # (N,) int32 member number, -1 = not a member
    portal: np.ndarray  # (N,) bool: member logged into the Wi-Fi portal
    offsets: np.ndarray  # (N+1,) knot offsets
    kt: np.ndarray  # knot times (unix s)
    kx: np.ndarray
    ky: np.ndarray
    kf: np.ndarray  # knot floor index (int8)
    visits: list = field(default_factory=list)  # (agent, zone idx, enter, exit)
    # (agent, t_in, entrance, floors (sorted set), t_out, exit, hops ((t, from, to, via), ...))
    journeys: list = field(default_factory=list)
    purchases: list = field(default_factory=list)  # (t, store zone idx, agent, member, amount)

    @property
    def n(self) -> int:
        return len(self.role)

    @property
    def t_in(self) -> np.ndarray:
        return self.kt[self.offsets[:-1]]

    @property
    def t_out(self) -> np.ndarray:
        return self.kt[self.offsets[1:] - 1]


class _Builder:
    """Accumulates knots for one agent."""

    def __init__(self, t: float, xy, f: int) -> None:
        self.t, self.x, self.y, self.f = [[t]], [[float(xy[0])]], [[float(xy[1])]], [[f]]
        self.now = t
        self.pos = (float(xy[0]), float(xy[1]))
        self.floor = f
        self.hops: list = []          # (t, from floor, to floor, via landing zone)

    def walk(self, xy: np.ndarray, f: int, speed: float) -> None:
        """Walk a polyline (M,2) on floor f starting at the current position."""
        n = len(xy)
        if n == 0:
            return
        if n <= 4:  # most walks inside stores: plain floats are faster than numpy here
            px, py = self.pos
            t = self.now
            ts, xs, ys = [], [], []
            for x, y in xy.tolist():
                t += math.hypot(x - px, y - py) / speed
                ts.append(t)
                xs.append(x)
                ys.append(y)
                px, py = x, y
            self.t.append(ts)
            self.x.append(xs)
            self.y.append(ys)
            self.f.append([f] * n)
            self.now, self.pos, self.floor = t, (px, py), f
            return
        d = np.empty((n, 2))
        d[0] = xy[0] - self.pos
        d[1:] = xy[1:] - xy[:-1]
        t = self.now + np.cumsum(np.sqrt((d * d).sum(axis=1))) / speed
        self.t.append(t)
        self.x.append(xy[:, 0])
        self.y.append(xy[:, 1])
        self.f.append([f] * n)
        self.now, self.pos, self.floor = float(t[-1]), (float(xy[-1, 0]), float(xy[-1, 1])), f

    def wait(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)
        self._knot(self.pos, self.floor)

    def hop(self, xy, f: int, seconds: float, via: int = -1) -> None:
        """Change floor (escalator/lift) in ``seconds``; position may be the same xy. ``via``:
        the zone of the landing left (-1 unknown). The change is noted half-way, where
        positions switch floor (motion.py)."""
        self.hops.append((self.now + 0.5 * seconds, self.floor, f, via))
        self.now += seconds
        self._knot(xy, f)

    def _knot(self, xy, f) -> None:
        self.t.append([self.now])
        self.x.append([float(xy[0])])
        self.y.append([float(xy[1])])
        self.f.append([f])
        self.pos, self.floor = (float(xy[0]), float(xy[1])), f

    def arrays(self):
        return (np.concatenate(self.t, dtype=float), np.concatenate(self.x, dtype=float),
                np.concatenate(self.y, dtype=float), np.concatenate(self.f, dtype=np.int64))


def _simplify(xy: np.ndarray) -> np.ndarray:
    """Drop lattice nodes that lie on a straight line between their neighbours."""
    if len(xy) < 3:
        return xy
    d = np.diff(xy, axis=0)
    cross = d[:-1, 0] * d[1:, 1] - d[:-1, 1] * d[1:, 0]
    keep = np.ones(len(xy), bool)
    keep[1:-1] = np.abs(cross) > 1e-9
    return xy[keep]


class Planner:
    def __init__(self, geo: SiteGeometry, cfg, rng: np.random.Generator) -> None:
        self.geo, self.cfg, self.rng = geo, cfg, rng
        self.stores = np.array(sorted(geo.doors))
        w = np.array([geo.polys[s].area * max(geo.zones[s].popularity, 0.0) for s in self.stores])
        self.store_w = w / w.sum()
        self.store_free = {int(s): geo.polys[s].buffer(-MARGIN) for s in self.stores}
        self.convex = {s: abs(p.convex_hull.area - p.area) < 1e-6 * max(p.area, 1)
                       for s, p in self.store_free.items()}
        self.entr = np.array(sorted(geo.entrances))
        ew = np.array([max(geo.zones[e].popularity, 0.0) for e in self.entr]) + 1e-9
        self.entr_w = ew / ew.sum()
        outside = np.isin(geo.node_zone, geo.zones_of("outside"))
        self.spawn = {}
        for e in self.entr:
            node = geo.entrances[e]
            d = np.hypot(*(geo.node_xy - geo.node_xy[node]).T)
            cand = np.flatnonzero(outside & (geo.node_floor == geo.node_floor[node])
                                  & (d > 3) & (d < 12))
            self.spawn[int(e)] = cand if cand.size else np.array([node])
        self._paths: dict = {}

    # -- helpers -----------------------------------------------------------------------------
    def _point_in(self, zi: int) -> tuple[float, float]:
        poly = self.store_free.get(zi)
        if poly is None or poly.is_empty:
            poly = self.geo.polys[zi].buffer(-MARGIN)
        minx, miny, maxx, maxy = poly.bounds
        if abs((maxx - minx) * (maxy - miny) - poly.area) < 1e-6:  # axis-aligned rectangle
            return (self.rng.uniform(minx, maxx), self.rng.uniform(miny, maxy))
        for _ in range(100):
            p = (self.rng.uniform(minx, maxx), self.rng.uniform(miny, maxy))
            if shapely.contains_xy(poly, *p):
                return p
        c = poly.representative_point()
        return (c.x, c.y)

    def _route(self, b: _Builder, key: int, node: int, speed: float, prefer: str,
               reverse: bool = False) -> list[int]:
        """Walk the graph path between key node and node (from key unless reverse)."""
        geo = self.geo
        nodes = geo.path(key, node, prefer)
        if reverse:
            nodes = nodes[::-1]
        floors = geo.node_floor[nodes]
        cuts = np.flatnonzero(np.diff(floors) != 0) + 1
        start = 0
        for c in list(cuts) + [len(nodes)]:
            piece = nodes[start:c]
            f = int(floors[start])
            xy = _simplify(geo.node_xy[piece])
            if abs(xy[0, 0] - b.pos[0]) < 1e-9 and abs(xy[0, 1] - b.pos[1]) < 1e-9 \
                    and b.floor == f:
                xy = xy[1:]
            b.walk(xy, f, speed)
            if c < len(nodes):
                a_node, z_node = int(nodes[c - 1]), int(nodes[c])
                df = abs(int(floors[c]) - int(floors[c - 1]))
                if geo.shaft_kind(a_node) == "lift":
                    b.wait(self.rng.uniform(*LIFT_WAIT_S))
                    secs = LIFT_S_PER_FLOOR * df + 4.0
                else:
                    secs = ESCALATOR_S_PER_FLOOR * df
                b.hop(tuple(geo.node_xy[z_node]), int(floors[c]), secs,
                      via=int(geo.node_zone[a_node]))
            start = c
        return np.unique(floors).tolist()

    # -- roles -------------------------------------------------------------------------------
    def shopper(self, agent: int, t0: float, member: int):
        """(knot arrays, visits, journey, purchases) of one shopper arriving at t0."""
        rng, geo, cfg = self.rng, self.geo, self.cfg
        visits, purchases = [], []
        speed = float(np.clip(rng.normal(*cfg.speed_mps), 0.8, 2 * MARGIN))
        prefer = "lift" if rng.random() < cfg.lift_share else "escalator"
        e_in = int(rng.choice(self.entr, p=self.entr_w))
        e_out = e_in if rng.random() < 0.6 else int(rng.choice(self.entr, p=self.entr_w))
        k = min(1 + rng.poisson(behaviour.STORES_EXTRA_MEAN), len(self.stores))
        picks = rng.choice(self.stores, size=k, replace=False, p=self.store_w)
        picks = sorted(picks, key=lambda s: (geo.zone_floor[s], rng.random()))
        spawn = int(rng.choice(self.spawn[e_in]))
        b = _Builder(t0, geo.node_xy[spawn], int(geo.node_floor[spawn]))
        floors = set(self._route(b, geo.entrances[e_in], spawn, speed, prefer, reverse=True))
        t_entry = b.now
        key = geo.entrances[e_in]
        for s in picks:
            s = int(s)
            door = geo.doors[s]
            floors |= set(self._route(b, key, door.node, speed, prefer))
            f = int(geo.zone_floor[s])
            b.walk(np.array([door.point, door.inner]), f, speed)
            enter = b.now - 1.0 / speed  # crossed the door line one DOOR_STEP ago
            cat = geo.zones[s].category
            dwell = behaviour.dwell_s(rng, cat)
            stop = b.now + dwell
            if self.convex.get(s, False):
                slow = speed * IN_STORE_SPEED
                for _ in range(1 + int(dwell // 180)):
                    b.walk(np.array([self._point_in(s)]), f, slow)
                    b.wait(rng.uniform(20, 120))
                    if b.now > stop:
                        break
                b.walk(np.array([door.inner]), f, slow)
            b.wait(stop - b.now)
            basket = behaviour.purchase(rng, cat, b.now - enter)
            if basket is not None:
                purchases.append((b.now - rng.uniform(5, 60), s, agent, member, basket))
            b.walk(np.array([door.point, door.outer]), f, speed)
            visits.append((agent, s, enter, b.now - 1.0 / speed))
            key = door.node
        floors |= set(self._route(b, key, geo.entrances[e_out], speed, prefer))
        t_exit = b.now
        despawn = int(rng.choice(self.spawn[e_out]))
        self._route(b, geo.entrances[e_out], despawn, speed, prefer)
        # The floor changes between entry and exit, in order (``floors`` is only the set).
        hops = tuple(h for h in b.hops if t_entry <= h[0] <= t_exit)
        journey = (agent, t_entry, e_in, tuple(sorted(floors)), t_exit, e_out, hops)
        return b.arrays(), visits, journey, purchases

    def passerby(self, t0: float):
        rng, geo = self.rng, self.geo
        speed = float(np.clip(rng.normal(*self.cfg.speed_mps), 0.8, 2 * MARGIN))
        zi = int(rng.choice(geo.zones_of("outside")))
        fi = int(geo.zone_floor[zi])
        nodes = geo.nodes_in_zone(zi)
        xy = geo.node_xy[nodes]
        axis = int(np.ptp(xy[:, 1]) > np.ptp(xy[:, 0]))
        lo, hi = np.quantile(xy[:, axis], [0.05, 0.95])
        a = xy[rng.choice(np.flatnonzero(xy[:, axis] <= lo))]
        z = xy[rng.choice(np.flatnonzero(xy[:, axis] >= hi))]
        if rng.random() < 0.5:
            a, z = z, a
        b = _Builder(t0, a, fi)
        if geo.free[fi].covers(shapely.LineString([a, z])):
            b.walk(np.array([z]), fi, speed)
        else:
            b.wait(1.0)
        return b.arrays()

    def resident(self, zi: int, t0: float, t1: float, moves: bool):
        """Staff (moves inside store zi) or a fixed device (never moves) present t0..t1."""
        rng = self.rng
        fi = int(self.geo.zone_floor[zi])
        p = self._point_in(zi)
        b = _Builder(t0, p, fi)
        if moves and self.convex.get(zi, False):
            while b.now < t1:
                b.wait(rng.uniform(120, 900))
                b.walk(np.array([self._point_in(zi)]), fi, 0.8)
        b.now = max(b.now, t1)
        b.wait(0.0)
        return b.arrays()

    def fixed_at(self, xy, fi: int, t0: float, t1: float):
        """A device that never moves, at xy on floor fi, present t0..t1."""
        b = _Builder(t0, xy, fi)
        b.now = t1
        b.wait(0.0)
        return b.arrays()

    def survey_points(self, fi: int, pitch: float) -> tuple[np.ndarray, np.ndarray]:
        """(points (M, 2), zone index (M,)): a grid of `pitch` over floor fi, each point
        jittered by up to pitch / 4 (neighbours stay >= pitch / 2 apart), kept where it falls
        in an indoor zone (not outside, not an atrium void)."""
        geo = self.geo
        xs = np.arange(geo.x0 + pitch / 2, geo.x1, pitch)
        ys = np.arange(geo.y0 + pitch / 2, geo.y1, pitch)
        gx, gy = (a.ravel() for a in np.meshgrid(xs, ys))
        gx = gx + self.rng.uniform(-pitch / 4, pitch / 4, gx.size)
        gy = gy + self.rng.uniform(-pitch / 4, pitch / 4, gy.size)
        zi = geo.zone_at(gx, gy, np.full(gx.size, fi))
        keep = (zi >= 0) & ~np.isin(geo.zone_kind[np.maximum(zi, 0)], ("outside", "atrium"))
        return np.column_stack([gx, gy])[keep], zi[keep]


def local_hour(site, t: float) -> float:
    dt = datetime.fromtimestamp(t, tz=timezone.utc).astimezone(ZoneInfo(site.timezone))
    return dt.hour + dt.minute / 60.0 + dt.second / 3600.0


def plan(geo: SiteGeometry, cfg, rng: np.random.Generator) -> Crowd:
    """Every agent of the run, with ground-truth trips."""
    planner = Planner(geo, cfg, rng)
    site = geo.site
    crowd = Crowd(np.empty(0, np.int8), [], np.empty(0, int), np.empty(0, np.int32),
                  np.empty(0, bool), np.zeros(1, np.int64), *(np.empty(0) for _ in range(4)))
    how, scale = cfg.arrival_scale()
    t0, t1 = cfg.start - WARMUP_S, cfg.end
    hour0 = local_hour(site, t0)
    if how == "concurrent":
        pilot = Planner(geo, cfg, np.random.default_rng(12345))
        durs = [np.ptp(pilot.shopper(0, 0.0, -1)[0][0]) for _ in range(200)]
        rate = scale / float(np.mean(durs)) * 3600.0
        arr = behaviour.arrivals(rng, t0, t1, hour0, rate, 0, 24, flat=True)
    else:
        if how == "per_day":
            scale = scale / (cfg.close_hour - cfg.open_hour)
        arr = behaviour.arrivals(rng, t0, t1, hour0, scale, cfg.open_hour, cfg.close_hour)
    pb = behaviour.arrivals(rng, cfg.start - 600.0, t1, hour0, cfg.passersby_per_hour, 0, 24,
                            flat=True)
    roles, kinds, homes, members, portals, parts = [], [], [], [], [], []
    n_members = 0

    def add(role, kind, home, member, portal, arrays):
        roles.append(role)
        kinds.append(kind)
        homes.append(home)
        members.append(member)
        portals.append(portal)
        parts.append(arrays)

    for ta in arr:
        member = -1
        if rng.random() < cfg.member_share:
            member, n_members = n_members, n_members + 1
        arrays, visits, journey, purchases = planner.shopper(len(roles), float(ta), member)
        if arrays[0][-1] < cfg.start:  # left before the run starts: forget them
            continue
        crowd.visits.extend(visits)
        crowd.journeys.append(journey)
        crowd.purchases.extend(purchases)
        add(SHOPPER, "phone", -1, member,
            bool(member >= 0 and rng.random() < cfg.portal_share), arrays)
    for ta in pb:
        add(PASSERBY, "phone", -1, -1, False, planner.passerby(float(ta)))
    s0, s1 = cfg.start - 1.0, cfg.end + 1.0
    for s in planner.stores:
        s = int(s)
        for _ in range(max(1, rng.poisson(cfg.staff_per_store))):
            add(STAFF, "phone", s, -1, False, planner.resident(s, s0, s1, moves=True))
        if cfg.fixed_devices:
            add(FIXED, "pos", s, -1, False, planner.resident(s, s0, s1, moves=False))
            if rng.random() < 0.3:
                add(FIXED, "printer", s, -1, False, planner.resident(s, s0, s1, moves=False))
    corridors = geo.zones_of("corridor")
    survey = cfg.survey_pitch_m > 0
    for fi in range(len(geo.floor_ids)):
        if survey:
            for xy, zi in zip(*planner.survey_points(fi, cfg.survey_pitch_m)):
                add(FIXED, "beacon", int(zi), -1, False, planner.fixed_at(xy, fi, s0, s1))
        on = corridors[geo.zone_floor[corridors] == fi]
        if not len(on):
            continue
        for kind, count in (("signage", 2 if cfg.fixed_devices else 0),
                            ("beacon", 0 if survey else cfg.reference_beacons_per_floor)):
            for _ in range(count):
                zi = int(rng.choice(on))
                add(FIXED, kind, zi, -1, False, planner.resident(zi, s0, s1, moves=False))
    lens = np.array([len(p[0]) for p in parts], np.int64)
    crowd.role = np.array(roles, np.int8)
    crowd.kind = kinds
    crowd.home_zone = np.array(homes, int)
    crowd.member = np.array(members, np.int32)
    crowd.portal = np.array(portals, bool)
    crowd.offsets = np.concatenate([[0], np.cumsum(lens)])
    crowd.kt = np.concatenate([p[0] for p in parts])
    crowd.kx = np.concatenate([p[1] for p in parts])
    crowd.ky = np.concatenate([p[2] for p in parts])
    crowd.kf = np.concatenate([p[3] for p in parts]).astype(np.int8)
    log.info("planned %d agents (%d shoppers, %d passers-by), %d knots", crowd.n,
             int((crowd.role == SHOPPER).sum()), int((crowd.role == PASSERBY).sum()),
             len(crowd.kt))
    return crowd
