"""Shopper metrics as InfluxDB points (every measurement, tag and field: docs/metrics.md).

Two kinds of output:

- *Bucketed* metrics keyed by event time (footfall per entrance per 5 min; visitors,
  passers-by, capture rate, members, new/returning per hour; dwell and conversion per store per
  hour; the floor transition matrix per hour). A finished visitor adds to the buckets of its own
  event times; a changed bucket is written again with its new totals. InfluxDB keeps one value
  per series and timestamp, so the rewrite *replaces* the earlier one: late data (a replayed
  spool) lands in its own bucket and counts once.
- *Snapshots* written as they happen: live occupancy per floor and zone (every 10 s), the heat
  grid per floor (2 m cells, per minute), gateway health (each status message), ingest counters.

Raw per-device fixes are never written. Staff and fixed devices are excluded from every
shopper metric (counted only in ``excluded``).
"""
from __future__ import annotations

import logging
from collections import defaultdict

import numpy as np

from analytics.journey import VisitRecord
from analytics.sink.lineprotocol import Point

log = logging.getLogger(__name__)

FOOTFALL_BUCKET_S = 300
HOUR_S = 3600
DWELL_EDGES_S = (60, 180, 300, 600, 1200, 1800, 3600)   # histogram upper bounds ("le")
RETAIN_S = 48 * 3600


def _bucket(t: float, size: int) -> int:
    return int(t // size) * size


class MetricsAggregator:
    def __init__(self, site, *, retain_s: float = RETAIN_S, tier_of=None) -> None:
        self.tier_of = tier_of
        self.site = site.id
        self.zone_floor = {z.id: z.floor for z in site.zones}
        self.zone_tenant = {z.id: (z.tenant or z.name) for z in site.zones}
        self.zone_kind = {z.id: z.kind for z in site.zones}
        self.gw_floor = {g.id: g.floor for g in site.gateways}
        self._visit_ts: dict = {}                                     # (store, ms) -> n used
        self.retain_s = retain_s
        self._footfall: dict = defaultdict(lambda: [0, 0])            # (t, entrance) -> [in, out]
        self._visitors: dict = defaultdict(lambda: defaultdict(int))  # t -> counters
        self._store: dict = defaultdict(lambda: {"dwell": [], "bought": 0, "revenue": 0.0,
                                                 "purchases": 0})    # (t, zone) -> ...
        self._floors: dict = defaultdict(int)                         # (t, from, to, via_kind) -> n
        self._tiers: dict = defaultdict(lambda: [0, 0])               # (t, tier) -> [visitors, buyers]
        self._dirty: set = set()
        self._points: list[Point] = []
        self.max_t = float("-inf")

    # -- finished visitors -----------------------------------------------------------------
    def add_visit(self, rec: VisitRecord) -> None:
        self.max_t = max(self.max_t, rec.last_t)
        if rec.excluded:
            h = _bucket(rec.first_t, HOUR_S)
            self._visitors[h]["excluded"] += 1
            self._dirty.add(("v", h))
            return
        if rec.entered:
            h = _bucket(rec.entry_t, HOUR_S)
            c = self._visitors[h]
            c["visitors"] += 1
            c["members" if rec.member else "anonymous"] += 1
            tier = self.tier_of(rec.member) if (self.tier_of and rec.member) else None
            if tier:
                self._tiers[(h, tier)][0] += 1
                self._tiers[(h, tier)][1] += int(any(sv.purchases for sv in rec.visits))
                self._dirty.add(("t", (h, tier)))
            c["returning" if rec.returning else "new"] += 1
            c["visit_s_sum"] += max((rec.exit_t or rec.last_t) - rec.entry_t, 0.0)
            self._dirty.add(("v", h))
            if rec.entrance:
                k = (_bucket(rec.entry_t, FOOTFALL_BUCKET_S), rec.entrance)
                self._footfall[k][0] += 1
                self._dirty.add(("f", k))
            if rec.exit_entrance and rec.exit_t is not None:
                k = (_bucket(rec.exit_t, FOOTFALL_BUCKET_S), rec.exit_entrance)
                self._footfall[k][1] += 1
                self._dirty.add(("f", k))
            c["funnel_floor"] += int(bool(rec.floor_changes))
            c["funnel_dwell"] += int(bool(rec.visits))
            c["funnel_purchase"] += int(any(sv.purchases for sv in rec.visits))
            c["funnel_exit"] += int(rec.exit_t is not None)
            self._count_store_visits(rec)
            for (t, f_from, f_to, via) in rec.floor_changes:
                k = (_bucket(t, HOUR_S), f_from, f_to, via or "")
                self._floors[k] += 1
                self._dirty.add(("x", k))
        elif rec.passby_entrance:
            h = _bucket(rec.last_t, HOUR_S)
            self._visitors[h]["passersby"] += 1
            self._dirty.add(("v", h))
        if not rec.entered:
            # A fragment (address rotated unnoticed) still tells about store visits.
            self._count_store_visits(rec)

    def _count_store_visits(self, rec: VisitRecord) -> None:
        for sv in rec.visits:
            self._store_visit_point(rec, sv)
            k = (_bucket(sv.enter_t, HOUR_S), sv.zone)
            s = self._store[k]
            s["dwell"].append(sv.exit_t - sv.enter_t)
            if sv.purchases:
                s["bought"] += 1
                s["purchases"] += len(sv.purchases)
                s["revenue"] += float(sum(p[1] for p in sv.purchases))
            self._dirty.add(("s", k))

    def _store_visit_point(self, rec: VisitRecord, sv) -> None:
        # One point per store visit (the tenant report's raw material). Two visits of a store
        # can start in the same millisecond: each gets its own microsecond slot.
        ms = int(round(sv.enter_t * 1000))
        n = self._visit_ts.get((sv.zone, ms), 0)
        self._visit_ts[(sv.zone, ms)] = n + 1
        tags = {"site": self.site, "floor": self.zone_floor.get(sv.zone, ""), "store": sv.zone}
        fields = {"dwell_s": float(sv.exit_t - sv.enter_t), "purchase": 1 if sv.purchases else 0,
                  "member": 1 if rec.member else 0, "visitor": rec.visitor}
        self._points.append(Point("store_visit", tags, fields, ms / 1000 + n * 1e-6))

    # -- snapshots -------------------------------------------------------------------------
    def occupancy(self, t: float, floors: dict[str, int], zones: dict[str, int]) -> None:
        ts = int(t)
        for f, n in floors.items():
            self._points.append(Point("floor_occupancy", {"site": self.site, "floor": f},
                                      {"visitors": int(n)}, ts))
        for z, n in zones.items():
            self._points.append(Point("zone_occupancy",
                                      {"site": self.site, "floor": self.zone_floor.get(z, ""), "zone": z,
                                       "kind": self.zone_kind.get(z, "")},
                                      {"visitors": int(n)}, ts))

    def heat(self, t: float, floor: str, cell_m: float, counts: np.ndarray,
             origin: tuple[float, float] = (0.0, 0.0)) -> None:
        """counts: (nx, ny) visitor-seconds per cell over the minute starting at t."""
        ts = int(t)
        x0, y0 = origin
        for ix, iy in zip(*np.nonzero(counts)):
            self._points.append(Point("heat_cell", {"site": self.site, "floor": floor,
                                                    "cell": f"{int(ix)}_{int(iy)}"},
                                      {"visitor_s": int(counts[ix, iy]),
                                       "x_m": float(x0 + (ix + 0.5) * cell_m),
                                       "y_m": float(y0 + (iy + 0.5) * cell_m)}, ts))

    def gateway_status(self, st) -> None:
        tags = {"site": self.site, "floor": self.gw_floor.get(st.gw, ""), "gw": st.gw}
        fields = {"online": 1 if st.state == "online" else 0, "uptime_s": float(st.uptime_s),
                  "parse_errors": int(st.parse_errors), "spool_depth": int(st.spool_depth),
                  "spool_dropped": int(st.spool_dropped), "version": st.version}
        if st.cpu_temp_c is not None:
            fields["cpu_temp_c"] = float(st.cpu_temp_c)
        self._points.append(Point("gateway_status", tags, fields, st.t))
        for radio, rate in st.frames_per_s.items():
            self._points.append(Point("gateway_radio", {**tags, "radio": radio},
                                      {"frames_per_s": float(rate)}, st.t))

    def ingest_stats(self, t: float, fields: dict) -> None:
        self._points.append(Point("ingest", {"site": self.site}, fields, int(t)))

    # -- output ----------------------------------------------------------------------------
    def take_points(self) -> list[Point]:
        out, self._points = self._points, []
        site = self.site
        for kind, k in sorted(self._dirty, key=repr):
            if kind == "f":
                t, ent = k
                n_in, n_out = self._footfall[k]
                out.append(Point("footfall", {"site": site, "entrance": ent},
                                 {"entries": n_in, "exits": n_out}, t))
            elif kind == "v":
                c = self._visitors[k]
                v, p = c["visitors"], c["passersby"]
                fields = {"visitors": v, "passersby": p, "members": c["members"],
                          "anonymous": c["anonymous"], "new": c["new"], "returning": c["returning"],
                          "excluded": c["excluded"]}
                if v + p:
                    fields["capture_rate"] = v / (v + p)
                if v:
                    fields["mean_visit_s"] = c["visit_s_sum"] / v
                out.append(Point("visitors", {"site": site}, fields, k))
                out.append(Point("funnel", {"site": site}, {
                    "passby": v + p, "entry": v, "floor": c["funnel_floor"], "dwell": c["funnel_dwell"],
                    "purchase": c["funnel_purchase"], "exit": c["funnel_exit"]}, k))
            elif kind == "s":
                t, zone = k
                s = self._store[k]
                d = np.asarray(s["dwell"], float)
                tags = {"site": site, "floor": self.zone_floor.get(zone, ""), "store": zone,
                        "tenant": self.zone_tenant.get(zone, "")}
                out.append(Point("store_visits", tags, {
                    "visits": len(d), "median_dwell_s": float(np.median(d)),
                    "mean_dwell_s": float(d.mean()), "p25_dwell_s": float(np.percentile(d, 25)),
                    "p75_dwell_s": float(np.percentile(d, 75)), "buyers": s["bought"],
                    "purchases": s["purchases"], "revenue": s["revenue"],
                    "conversion": s["bought"] / len(d)}, t))
                prev = 0
                for edge in DWELL_EDGES_S + (None,):
                    n = int(np.sum(d > prev) if edge is None else np.sum((d > prev) & (d <= edge)))
                    out.append(Point("store_dwell_hist", {**tags, "le": "inf" if edge is None else str(edge)},
                                     {"visits": n}, t))
                    prev = edge if edge is not None else prev
            elif kind == "t":
                t, tier = k
                n, b = self._tiers[k]
                out.append(Point("member_visitors", {"site": site, "tier": tier},
                                 {"visitors": n, "buyers": b}, t))
            elif kind == "x":
                t, f_from, f_to, via = k
                out.append(Point("floor_transitions", {"site": site, "from": f_from, "to": f_to,
                                                        "via": via}, {"count": self._floors[k]}, t))
        self._dirty.clear()
        self._prune()
        return out

    def _prune(self) -> None:
        horizon = self.max_t - self.retain_s
        if len(self._visit_ts) > 100_000:
            self._visit_ts = {k: v for k, v in self._visit_ts.items() if k[1] / 1000 >= self.max_t - 7200}
        for table, tkey in ((self._footfall, lambda k: k[0]), (self._visitors, lambda k: k),
                            (self._store, lambda k: k[0]), (self._floors, lambda k: k[0]),
                            (self._tiers, lambda k: k[0])):
            for k in [k for k in table if tkey(k) < horizon]:
                del table[k]
