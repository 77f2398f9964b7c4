"""The InfluxDB names the dashboards and the tenant report query, in one place.

Source of truth: docs/metrics.md and analytics/metrics.py (``MetricsAggregator``), which writes
every measurement below except ``coverage`` (written by ``mallsense plan --influx``, see
gateway/plan_cli.py). tests/dashboards fills a real InfluxDB through ``MetricsAggregator`` and runs
every panel's query against it, so a rename on either side fails there. When the metrics
change, this file is the only one to edit.
"""
from __future__ import annotations

from dataclasses import dataclass

# Tags.
SITE = "site"
FLOOR = "floor"
ZONE = "zone"
STORE = "store"


@dataclass(frozen=True)
class Measurement:
    """A measurement with the tags it carries and the fields the dashboards read."""

    name: str
    tags: tuple[str, ...]
    fields: tuple[str, ...]

    def __str__(self) -> str:
        return self.name


# Snapshots every 10 s: shoppers present per floor and per zone (zones with nobody: no point).
FLOOR_OCCUPANCY = Measurement("floor_occupancy", (SITE, FLOOR), ("visitors",))
ZONE_OCCUPANCY = Measurement("zone_occupancy", (SITE, FLOOR, ZONE, "kind"), ("visitors",))
# Per minute and floor, one point per occupied 2 m cell: visitor-seconds; x_m/y_m = cell centre.
HEAT = Measurement("heat_cell", (SITE, FLOOR, "cell"), ("visitor_s", "x_m", "y_m"))
# 5-min buckets per entrance.
FOOTFALL = Measurement("footfall", (SITE, "entrance"), ("entries", "exits"))
# Hourly buckets, whole site: entered visitors, passers-by (heard, never entered), members...
VISITORS = Measurement(
    "visitors", (SITE,),
    ("visitors", "passersby", "members", "anonymous", "new", "returning", "capture_rate"))
# Hourly journey funnel: visitors reaching each stage (passby = everyone heard near the mall).
FUNNEL = Measurement("funnel", (SITE,), ("passby", "entry", "floor", "dwell", "purchase", "exit"))
FUNNEL_STAGES = FUNNEL.fields
# One point per store visit, at its start: the tenant report's raw material. visitor is the
# opaque visitor id (COUNT(DISTINCT) counts visitors); purchase and member are 0/1.
STORE_VISIT = Measurement(
    "store_visit", (SITE, FLOOR, STORE), ("dwell_s", "purchase", "member", "visitor"))
# Hourly buckets per store (by the hour the visit began).
STORE_VISITS = Measurement(
    "store_visits", (SITE, FLOOR, STORE, "tenant"),
    ("visits", "mean_dwell_s", "median_dwell_s", "buyers", "purchases", "conversion"))
# Hourly dwell histogram per store: visits with dwell in (previous le, le] seconds; le="inf".
STORE_DWELL_HIST = Measurement("store_dwell_hist", (SITE, FLOOR, STORE, "tenant", "le"), ("visits",))
FLOOR_TRANSITIONS = Measurement("floor_transitions", (SITE, "from", "to", "via"), ("count",))
# One point per gateway status message; online is 1, or 0 for the last will (offline).
GATEWAY_STATUS = Measurement(
    "gateway_status", (SITE, FLOOR, "gw"),
    ("online", "uptime_s", "parse_errors", "spool_depth", "spool_dropped", "cpu_temp_c", "version"))
GATEWAY_RADIO = Measurement("gateway_radio", (SITE, FLOOR, "gw", "radio"), ("frames_per_s",))
# Expected accuracy per floor (CRLB over the floor's 2 m grid), from the coverage planner.
COVERAGE = Measurement("coverage", (SITE, FLOOR),
                       ("crlb_p50_m", "crlb_p90_m", "crlb_max_m", "floor_margin_p10_nats"))

ALL: tuple[Measurement, ...] = (
    FLOOR_OCCUPANCY, ZONE_OCCUPANCY, HEAT, FOOTFALL, VISITORS, FUNNEL, STORE_VISIT, STORE_VISITS,
    STORE_DWELL_HIST, FLOOR_TRANSITIONS, GATEWAY_STATUS, GATEWAY_RADIO, COVERAGE,
)
