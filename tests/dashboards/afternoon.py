"""A simulated mall afternoon, written to InfluxDB through analytics' sink, for dashboard tests.

Fallback until analytics' metrics pipeline (docs/metrics.md) can fill a database from
firmware_sim: shoppers arrive through the sample mall's entrances, walk corridors, change floor
by escalator, visit stores (dwell, purchase, member), leave; the aggregates the dashboards read
are derived from those journeys tick by tick, and gateway heartbeats and the CRLB per floor come
from the site model and locate. Points go through ``analytics.sink`` (line protocol + v1 HTTP),
the same write path as the ingest service. Deterministic for a seed; time is an input.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from analytics.sink import InfluxSink, Point, V1HttpTransport
from dashboards import schema as s
from locate import PathLoss, crlb

TICK_S = 60
CELL_M = 2.0


@dataclass
class Visit:
    store: str
    floor: str
    t0: float
    t1: float
    purchase: int
    member: int
    visitor: str


@dataclass
class Afternoon:
    site_id: str
    start: int
    end: int
    points: list[Point] = field(default_factory=list)
    visits: list[Visit] = field(default_factory=list)
    offline_gateways: tuple[str, ...] = ()


def _point_in(rng, polygon) -> tuple[float, float]:
    xs = [p[0] for p in polygon]
    ys = [p[1] for p in polygon]
    return float(rng.uniform(min(xs) + 0.5, max(xs) - 0.5)), float(rng.uniform(min(ys) + 0.5, max(ys) - 0.5))


def _journeys(site, rng, start: int, end: int, n_shoppers: int):
    """Per shopper: list of (zone, t0, t1, x, y) segments, plus store visits."""
    entrances = [z for z in site.zones if z.kind == "entrance"]
    stores_by_floor = {f.id: [z for z in site.zones_on(f.id) if z.kind == "store"] for f in site.floors}
    corridors = {f.id: [z for z in site.zones_on(f.id) if z.kind == "corridor"] for f in site.floors}
    escal = {f.id: [z for z in site.zones_on(f.id) if z.kind == "escalator"] for f in site.floors}
    floors = [f.id for f in site.floors]
    shoppers, visits, floor_changes = [], [], []
    for i in range(n_shoppers):
        visitor = f"v{rng.integers(1 << 40):010x}"
        member = int(rng.random() < 0.3)
        ent = entrances[rng.integers(len(entrances))]
        t = float(rng.uniform(start, end - 1800))
        segs = [(ent, t, t + 20.0)]
        t += 20.0
        floor = ent.floor
        for _ in range(int(rng.integers(1, 5))):
            if rng.random() < 0.4 and escal[floor]:
                new = floors[rng.integers(len(floors))]
                if new != floor:
                    segs.append((escal[floor][0], t, t + 30.0))
                    floor_changes.append(t + 30.0)
                    t += 30.0
                    floor = new
            c = corridors[floor][rng.integers(len(corridors[floor]))]
            walk = float(rng.uniform(40, 180))
            segs.append((c, t, t + walk))
            t += walk
            pool = stores_by_floor[floor]
            pop = np.array([max(z.popularity, 0.1) for z in pool])
            z = pool[rng.choice(len(pool), p=pop / pop.sum())]
            dwell = float(np.clip(rng.lognormal(np.log(420), 0.7), 45, 3600))
            purchase = int(rng.random() < 0.25)
            segs.append((z, t, t + dwell))
            if t + dwell < end:
                visits.append(Visit(z.id, floor, t, t + dwell, purchase, member, visitor))
            t += dwell
        # Back to an entrance on the floor we are on (or the first one) and out.
        out = next((e for e in entrances if e.floor == floor), entrances[0])
        segs.append((out, t, t + 20.0))
        shoppers.append([(z, a, b, *_point_in(rng, z.polygon)) for z, a, b in segs])
    return shoppers, visits, floor_changes


def simulate(site, end: int, hours: float = 3.0, seed: int = 1, n_shoppers: int = 500,
             offline: int = 2) -> Afternoon:
    """One afternoon of metrics for the window ``[end - hours, end]``, unix seconds."""
    rng = np.random.default_rng(seed)
    start = int(end - hours * 3600) // TICK_S * TICK_S
    aft = Afternoon(site.id, start, end)
    sid = site.id
    shoppers, visits, floor_changes = _journeys(site, rng, start, end, n_shoppers)
    aft.visits = visits
    ticks = np.arange(start, end, TICK_S)
    occ_zones = [z for z in site.zones if z.kind in ("store", "corridor")]
    P = aft.points.append
    flat = [seg for sh in shoppers for seg in sh]
    z_idx = {z.id: i for i, z in enumerate(occ_zones)}
    for t in ticks:
        here = [seg for seg in flat if seg[1] <= t < seg[2]]
        per_zone = np.zeros(len(occ_zones), dtype=int)
        per_floor = {f.id: 0 for f in site.floors}
        cells: dict[tuple[str, int, int], int] = {}
        for z, a, b, x, y in here:
            per_floor[z.floor] += 1
            if z.id in z_idx:
                per_zone[z_idx[z.id]] += 1
            key = (z.floor, int(x // CELL_M), int(y // CELL_M))
            cells[key] = cells.get(key, 0) + 1
        for z, n in zip(occ_zones, per_zone):
            P(Point(s.ZONE_OCCUPANCY.name, {"site": sid, "floor": z.floor, "zone": z.id, "kind": z.kind},
                    {"devices": int(n)}, int(t)))
        for f, n in per_floor.items():
            P(Point(s.FLOOR_OCCUPANCY.name, {"site": sid, "floor": f}, {"devices": int(n)}, int(t)))
        for (f, ix, iy), n in cells.items():
            P(Point(s.HEAT.name, {"site": sid, "floor": f, "cell": f"{ix}_{iy}"},
                    {"x_m": (ix + 0.5) * CELL_M, "y_m": (iy + 0.5) * CELL_M, "devices": n}, int(t)))
        t1 = t + TICK_S
        entries: dict[tuple[str, str], list[int]] = {}
        for sh in shoppers:
            first, last = sh[0], sh[-1]
            if t <= first[1] < t1:
                entries.setdefault((first[0].id, first[0].floor), [0, 0])[0] += 1
            if t <= last[2] < t1:
                entries.setdefault((last[0].id, last[0].floor), [0, 0])[1] += 1
        for (e, f), (n_in, n_out) in entries.items():
            P(Point(s.FOOTFALL.name, {"site": sid, "floor": f, "entrance": e},
                    {"entries": n_in, "exits": n_out}, int(t)))
        n_entry = sum(n for n, _ in entries.values())
        n_exit = sum(n for _, n in entries.values())
        n_visits = [v for v in visits if t <= v.t0 < t1]
        P(Point(s.FUNNEL.name, {"site": sid}, {
            "passby": n_entry + int(rng.poisson(2.5 * max(n_entry, 1))), "entry": n_entry,
            "floor": int(sum(1 for fc in floor_changes if t <= fc < t1)),
            "dwell": len(n_visits), "purchase": sum(v.purchase for v in n_visits), "exit": n_exit},
            int(t)))
    for v in visits:
        P(Point(s.STORE_VISIT.name, {"site": sid, "floor": v.floor, "store": v.store},
                {"dwell_s": round(v.t1 - v.t0, 1), "purchase": v.purchase, "member": v.member,
                 "visitor": v.visitor}, round(v.t1, 3)))
    aft.offline_gateways = _gateways(site, rng, ticks, end, offline, P)
    _accuracy(site, end, P)
    return aft


def _gateways(site, rng, ticks, end, offline: int, P) -> tuple[str, ...]:
    gone = tuple(g.id for g in site.gateways[:offline])
    for k, g in enumerate(site.gateways):
        errors = 0
        stop = end - 1200 if g.id in gone else end + 1
        for j, t in enumerate(ticks):
            if t >= stop:
                P(Point(s.GATEWAY_STATUS.name, {"site": site.id, "floor": g.floor, "gw": g.id},
                        {"online": 0, "uptime_s": float(j * TICK_S)}, int(stop)))
                break
            errors += int(rng.poisson(0.3))
            P(Point(s.GATEWAY_STATUS.name, {"site": site.id, "floor": g.floor, "gw": g.id},
                    {"online": 1, "uptime_s": float(86400 + j * TICK_S), "parse_errors": errors,
                     "spool_depth": int(rng.poisson(0.2)),
                     "cpu_temp_c": round(float(48 + 8 * rng.random() + (k % 5)), 1)}, int(t)))
            for radio in g.radios:
                P(Point(s.GATEWAY_RADIO.name, {"site": site.id, "floor": g.floor, "gw": g.id,
                                               "radio": radio},
                        {"frames_per_s": round(float(rng.gamma(4.0, 12.0)), 2)}, int(t)))
    return gone


def _accuracy(site, end: int, P) -> None:
    """CRLB percentiles per floor over a 2 m grid of the floor outline (floor's own gateways)."""
    ble = site.radio["ble"]
    model = PathLoss(ble.p0_dbm, ble.exponent, ble.sigma_db)
    for f in site.floors:
        xs = [p[0] for p in f.outline]
        ys = [p[1] for p in f.outline]
        gx, gy = np.meshgrid(np.arange(min(xs) + 1, max(xs), CELL_M), np.arange(min(ys) + 1, max(ys), CELL_M))
        xy = np.column_stack([gx.ravel(), gy.ravel()])
        gws = site.gateways_on(f.id)
        anchors = np.array([[g.x, g.y, g.z] for g in gws])
        b = crlb(anchors, xy, model, z=1.2)
        b = b[np.isfinite(b)]
        P(Point(s.ACCURACY.name, {"site": site.id, "floor": f.id},
                {"crlb_p50_m": round(float(np.percentile(b, 50)), 3),
                 "crlb_p90_m": round(float(np.percentile(b, 90)), 3)}, int(end)))


def write(aft: Afternoon, url: str, db: str) -> int:
    # Millisecond precision: two visits to one store ending in the same second are two points.
    sink = InfluxSink(V1HttpTransport(url, db), precision="ms", batch_lines=5000)
    sink.write(aft.points)
    res = sink.close()
    assert res.spooled_lines == 0 and res.rejected_batches == 0, res
    return sink.sent_lines
