"""A simulated mall afternoon, turned into metrics by analytics' own aggregator, for dashboards.

Shoppers arrive through the sample mall's entrances (others only pass by), walk corridors,
change floor by escalator, visit stores (dwell, purchases), leave. Their journeys become
``analytics.journey.VisitRecord`` objects fed to ``analytics.metrics.MetricsAggregator``, the
same code the ingest pipeline runs; occupancy and heat snapshots and gateway ``Status``
messages go through the aggregator too, and the per-floor accuracy through the coverage
planner (``gateway.plan``). So every measurement, tag and field in the database is what
analytics writes, and the points reach InfluxDB through ``analytics.sink`` (line protocol over
v1 HTTP). Positions come from the journeys (no radio simulation): this fills the database in
seconds, where firmware_sim + locate would take minutes on the shared CI cores.
Deterministic for a seed; time is an input.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from analytics.journey import StoreVisit, VisitRecord
from analytics.metrics import MetricsAggregator
from analytics.sink import InfluxSink, Point, V1HttpTransport
from gateway.plan import coverage_points
from gateway.wire import Status

TICK_S = 60
CELL_M = 2.0


@dataclass
class Afternoon:
    site_id: str
    start: int
    end: int
    points: list[Point] = field(default_factory=list)
    records: list[VisitRecord] = field(default_factory=list)
    offline_gateways: tuple[str, ...] = ()

    @property
    def store_visits(self) -> list[StoreVisit]:
        return [v for r in self.records if r.entered for v in r.visits]


def _point_in(rng, polygon) -> tuple[float, float]:
    xs = [p[0] for p in polygon]
    ys = [p[1] for p in polygon]
    return (float(rng.uniform(min(xs) + 0.5, max(xs) - 0.5)),
            float(rng.uniform(min(ys) + 0.5, max(ys) - 0.5)))


def _shopper(site, rng, i: int, start: float, end: float, zones):
    """One shopper's segments [(zone, t0, t1, x, y)] and its VisitRecord."""
    entrances, stores, corridors, escal, floors = zones
    ent = entrances[rng.integers(len(entrances))]
    t = float(rng.uniform(start, end - 900))
    entry_t = t
    segs = [(ent, t, t + 20.0)]
    t += 20.0
    floor, changes, visits = ent.floor, [], []
    for _ in range(int(rng.integers(1, 5))):
        if rng.random() < 0.4 and escal[floor]:
            new = floors[rng.integers(len(floors))]
            if new != floor:
                segs.append((escal[floor][0], t, t + 30.0))
                t += 30.0
                changes.append((t, floor, new, "escalator"))
                floor = new
        c = corridors[floor][rng.integers(len(corridors[floor]))]
        walk = float(rng.uniform(40, 180))
        segs.append((c, t, t + walk))
        t += walk
        pool = stores[floor]
        pop = np.array([max(z.popularity, 0.1) for z in pool])
        z = pool[rng.choice(len(pool), p=pop / pop.sum())]
        dwell = float(np.clip(rng.lognormal(np.log(420), 0.7), 45, 3600))
        buys = [(f"txn-{i}-{len(visits)}", float(rng.uniform(5, 120)), "EUR", t + dwell - 30)] \
            if rng.random() < 0.25 else []
        segs.append((z, t, t + dwell))
        visits.append(StoreVisit(z.id, t, t + dwell, buys))
        t += dwell
    out = next((e for e in entrances if e.floor == floor), entrances[0])
    segs.append((out, t, t + 20.0))
    t += 20.0
    member = f"m{i:05d}" if rng.random() < 0.3 else None
    rec = VisitRecord(visitor=f"vis-{i}", member=member, first_t=entry_t - 30.0, last_t=t,
                      entered=True, entry_t=entry_t, entrance=ent.id, exit_t=t,
                      exit_entrance=out.id, passby_entrance=None, floor_changes=changes,
                      visits=visits, excluded=False, returning=bool(rng.random() < 0.2),
                      n_devices=1)
    return [(z, a, b, *_point_in(rng, z.polygon)) for z, a, b in segs], rec


def simulate(site, end: int, hours: float = 3.0, seed: int = 1, n_shoppers: int = 500,
             offline: int = 2) -> Afternoon:
    """One afternoon of metrics for ``[end - hours, end]``, unix seconds."""
    rng = np.random.default_rng(seed)
    start = int(end - hours * 3600) // TICK_S * TICK_S
    aft = Afternoon(site.id, start, end)
    agg = MetricsAggregator(site)
    entrances = [z for z in site.zones if z.kind == "entrance"]
    floors = [f.id for f in site.floors]
    zones = (entrances,
             {f: [z for z in site.zones_on(f) if z.kind == "store"] for f in floors},
             {f: [z for z in site.zones_on(f) if z.kind == "corridor"] for f in floors},
             {f: [z for z in site.zones_on(f) if z.kind == "escalator"] for f in floors}, floors)
    segments = []
    for i in range(n_shoppers):
        segs, rec = _shopper(site, rng, i, start, end, zones)
        if rec.last_t >= end:  # still inside at the end: not finished, not yet counted
            segments.extend(s for s in segs if s[1] < end)
            continue
        segments.extend(segs)
        aft.records.append(rec)
    for j in range(int(2.5 * n_shoppers)):  # heard at an entrance, never came in
        t = float(rng.uniform(start, end - 60))
        ent = entrances[rng.integers(len(entrances))]
        aft.records.append(VisitRecord(f"pass-{j}", None, t, t + 40.0, False, None, None, None,
                                       None, ent.id, [], [], False, False, 1))
    for rec in aft.records:
        agg.add_visit(rec)
    _snapshots(site, agg, segments, start, end)
    aft.offline_gateways = _gateways(site, rng, agg, start, end, offline)
    aft.points = agg.take_points() + coverage_points(site, t=end)
    return aft


def _snapshots(site, agg: MetricsAggregator, segments, start: int, end: int) -> None:
    bounds = {}
    for f in site.floors:
        xs = [p[0] for p in f.outline]
        ys = [p[1] for p in f.outline]
        bounds[f.id] = (min(xs), min(ys), max(xs), max(ys))
    seg = np.array([(a, b) for _, a, b, _, _ in segments])
    for t in range(start, end, TICK_S):
        here = np.flatnonzero((seg[:, 0] <= t) & (t < seg[:, 1]))
        per_floor = {f.id: 0 for f in site.floors}
        per_zone: dict[str, int] = {}
        grids = {}
        for k in here.tolist():
            z, _, _, x, y = segments[k]
            per_floor[z.floor] += 1
            per_zone[z.id] = per_zone.get(z.id, 0) + 1
            b = bounds[z.floor]
            nx, ny = int(np.ceil((b[2] - b[0]) / CELL_M)) + 1, int(np.ceil((b[3] - b[1]) / CELL_M)) + 1
            g = grids.setdefault(z.floor, np.zeros((nx, ny), np.int64))
            g[min(int((x - b[0]) // CELL_M), nx - 1), min(int((y - b[1]) // CELL_M), ny - 1)] += TICK_S
        agg.occupancy(t, per_floor, per_zone)
        for f, g in grids.items():
            agg.heat(t, f, CELL_M, g, origin=bounds[f][:2])


def _gateways(site, rng, agg: MetricsAggregator, start: int, end: int, offline: int):
    gone = tuple(g.id for g in site.gateways[:offline])
    for k, g in enumerate(site.gateways):
        errors = 0
        stop = end - 1200 if g.id in gone else end + 1
        for j, t in enumerate(range(start, end, TICK_S)):
            if t >= stop:  # the broker publishes the last will: offline
                agg.gateway_status(Status(site.id, g.id, float(stop), "offline", "1.0.0",
                                          uptime_s=float(86400 + j * TICK_S)))
                break
            errors += int(rng.poisson(0.3))
            agg.gateway_status(Status(
                site.id, g.id, float(t), "online", "1.0.0", uptime_s=float(86400 + j * TICK_S),
                frames_per_s={r: round(float(rng.gamma(4.0, 12.0)), 2) for r in g.radios},
                parse_errors=errors, spool_depth=int(rng.poisson(0.2)),
                cpu_temp_c=round(float(48 + 8 * rng.random() + (k % 5)), 1)))
    return gone


def write(aft: Afternoon, url: str, db: str) -> int:
    # Nanoseconds, as `mallsense ingest` writes: two visits of a store starting in the same
    # millisecond get microsecond slots from the aggregator, which coarser precision would merge.
    sink = InfluxSink(V1HttpTransport(url, db), precision="ns", batch_lines=5000)
    sink.write(aft.points)
    res = sink.close()
    assert res.spooled_lines == 0 and res.rejected_batches == 0, res
    return sink.sent_lines
