"""Field engineers: gateway fleet health and the expected positioning accuracy per floor."""
from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.models import dashboard as dash_m

from dashboards import schema as s
from dashboards.influxql import FLOOR_IN, SITE_IS, Query, tag_variable, where
from dashboards.panels import bars, plain_table, single_stat, thresholds, ts

UID = "mallsense-field"
# No heartbeat for this long means offline even without a last will (edge heartbeat: 30 s).
ONLINE_WINDOW = "5m"
TEMP_STEPS = thresholds((None, "green"), (70, "orange"), (80, "red"))
ACCURACY_STEPS = thresholds((None, "green"), (3, "yellow"), (5, "red"))


def variables() -> list:
    st = s.GATEWAY_STATUS.name
    return [
        tag_variable("site", "Site", st, s.SITE),
        tag_variable("floor", "Floor", st, s.FLOOR, where_clause=SITE_IS, multi=True,
                     include_all=True),
    ]


def build(site=None, image_base_url: str = "") -> dash_b.Dashboard:
    gh, radio, cov = s.GATEWAY_STATUS, s.GATEWAY_RADIO, s.COVERAGE
    recent = f"time > now() - {ONLINE_WINDOW}"
    # The latest status of each gateway heard recently; online is 1 (or 0 for the last will).
    online_now = (f'SELECT sum("online") FROM (SELECT last("online") AS "online" FROM "{gh}" '
                  + where(SITE_IS, FLOOR_IN, recent, time=False) + ' GROUP BY "gw")')
    heard = (f'SELECT count("uptime_s") FROM (SELECT last("uptime_s") AS "uptime_s" FROM "{gh}" '
             + where(SITE_IS, FLOOR_IN) + ' GROUP BY "gw")')
    d = (dash_b.Dashboard("MallSense field: gateways").uid(UID).tags(["mallsense", "field"])
         .time("now-3h", "now").timezone("browser").refresh("30s").editable()
         .variables(variables()))
    d = d.with_row(dash_b.Row("Fleet"))
    d = d.with_panel(single_stat(f"Gateways online (status online within {ONLINE_WINDOW})",
                                 Query(online_now).alias("online"), w=4))
    d = d.with_panel(single_stat("Gateways heard in the time range", Query(heard).alias("heard"), w=4))
    # Offline = heard in the range but not online now (last will received, or silent > 5 min):
    # both counts, joined on their common timestamp, then subtracted in Grafana.
    d = d.with_panel(single_stat(
        f"Gateways offline (heard, but no online status within {ONLINE_WINDOW})",
        Query(heard).alias("heard"), Query(online_now).alias("online"), w=4,
        steps=thresholds((None, "green"), (1, "red")))
        .with_transformation(dash_m.DataTransformerConfig(
            id_val="joinByField", options={"mode": "outer"}))
        .with_transformation(dash_m.DataTransformerConfig(id_val="calculateField", options={
            "mode": "binary", "alias": "offline", "replaceFields": True,
            "binary": {"left": "heard", "operator": "-", "right": "online"}})))
    d = d.with_panel(plain_table(
        "Last seen (time of the latest status) per gateway",
        Query(f'SELECT last("uptime_s") AS "uptime_s" FROM "{gh}" ' + where(SITE_IS, FLOOR_IN)
              + ' GROUP BY "gw", "floor"'),
        w=12))
    d = d.with_panel(plain_table(
        "Latest status per gateway",
        Query(f'SELECT last("online") AS "online", last("version") AS "version", '
              f'last("spool_depth") AS "spool_depth", last("cpu_temp_c") AS "cpu_temp_c", '
              f'last("parse_errors") AS "parse_errors" '
              f'FROM "{gh}" ' + where(SITE_IS, FLOOR_IN) + ' GROUP BY "gw"'),
        w=24))
    d = d.with_row(dash_b.Row("Radios and pipeline"))
    d = d.with_panel(ts(
        "Frames per second per radio",
        Query(f'SELECT mean("frames_per_s") FROM "{radio}" ' + where(SITE_IS, FLOOR_IN)
              + ' GROUP BY time($__interval), "gw", "radio" fill(null)').alias("$tag_gw $tag_radio"),
        w=12, unit="short"))
    d = d.with_panel(ts(
        "Parse errors per minute",
        Query(f'SELECT non_negative_derivative(max("parse_errors"), 1m) FROM "{gh}" '
              + where(SITE_IS, FLOOR_IN) + ' GROUP BY time(1m), "gw" fill(none)')
        .alias("$tag_gw"), w=12))
    d = d.with_panel(ts(
        "Spool depth (batches waiting on the gateway)",
        Query(f'SELECT max("spool_depth") FROM "{gh}" ' + where(SITE_IS, FLOOR_IN)
              + ' GROUP BY time($__interval), "gw" fill(none)').alias("$tag_gw"), w=12))
    d = d.with_panel(ts(
        "CPU temperature",
        Query(f'SELECT max("cpu_temp_c") FROM "{gh}" ' + where(SITE_IS, FLOOR_IN)
              + ' GROUP BY time($__interval), "gw" fill(none)').alias("$tag_gw"),
        w=12, unit="celsius").thresholds(TEMP_STEPS))
    d = d.with_row(dash_b.Row("Coverage"))
    d = d.with_panel(bars(
        "Expected accuracy per floor (CRLB median and 90th percentile, from the coverage plan)",
        Query(f'SELECT last("crlb_p50_m") AS "p50", last("crlb_p90_m") AS "p90" FROM "{cov}" '
              + where(SITE_IS, FLOOR_IN, time=False) + f' GROUP BY "{s.FLOOR}"')
        .alias("$tag_floor $col"),
        w=24, unit="lengthm", steps=ACCURACY_STEPS))
    return d
