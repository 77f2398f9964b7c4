"""The InfluxDB names the dashboards and the tenant report query, in one place.

The source of truth is docs/metrics.md (written with analytics/metrics): every measurement, tag
and field below must appear there with the same spelling, and tests/dashboards checks that each
panel's query returns data from a database filled by the analytics pipeline. When metrics.md
changes, this file is the only one to edit.
"""
from __future__ import annotations

from dataclasses import dataclass

# Tags shared by every measurement.
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


# Live occupancy per zone (store, corridor...), sampled every tick: devices present now.
ZONE_OCCUPANCY = Measurement("zone_occupancy", (SITE, FLOOR, ZONE, "kind"), ("devices",))
# Live occupancy per floor: shoppers on the floor now.
FLOOR_OCCUPANCY = Measurement("floor_occupancy", (SITE, FLOOR), ("devices",))
# Heat grid: devices per 2 m cell per tick; x_m/y_m are the cell centre in the site frame.
HEAT = Measurement("heat_cell", (SITE, FLOOR, "cell"), ("x_m", "y_m", "devices"))
# Footfall: entries and exits per entrance per tick, and unique visitors.
FOOTFALL = Measurement("footfall", (SITE, FLOOR, "entrance"), ("entries", "exits"))
# Journey funnel counts per tick, one field per stage.
FUNNEL = Measurement(
    "funnel", (SITE,), ("passby", "entry", "floor", "dwell", "purchase", "exit"))
FUNNEL_STAGES = FUNNEL.fields
# One point per finished store visit (zone_exit of a store); the report's raw material.
# visitor is the rotating pseudonym (string field, counted with COUNT(DISTINCT)); purchase and
# member are 0/1 integers so that sum()/count() gives conversion and members' share.
STORE_VISIT = Measurement(
    "store_visit", (SITE, FLOOR, STORE), ("dwell_s", "purchase", "member", "visitor"))
# Gateway heartbeat (status topic) as stored by ingest.
GATEWAY_STATUS = Measurement(
    "gateway_status", (SITE, FLOOR, "gw"),
    ("online", "uptime_s", "spool_depth", "cpu_temp_c", "parse_errors"))
# Frames per second per gateway and radio.
GATEWAY_RADIO = Measurement("gateway_radio", (SITE, FLOOR, "gw", "radio"), ("frames_per_s",))
# Expected accuracy per floor: CRLB percentiles over the floor's cells, metres.
ACCURACY = Measurement("accuracy", (SITE, FLOOR), ("crlb_p50_m", "crlb_p90_m"))

ALL: tuple[Measurement, ...] = (
    ZONE_OCCUPANCY, FLOOR_OCCUPANCY, HEAT, FOOTFALL, FUNNEL, STORE_VISIT,
    GATEWAY_STATUS, GATEWAY_RADIO, ACCURACY,
)
