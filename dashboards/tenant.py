"""Tenant (one store): visits per hour and day, dwell, conversion, members, vs floor and mall."""
from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash_b

from dashboards import schema as s
from dashboards.influxql import SITE_IS, STORE_IS, Query, tag_variable, where
from dashboards.panels import bars, hist, pie, single_stat, ts

UID = "mallsense-tenant"
FLOOR_IS = "\"floor\" = '$floor'"


def variables() -> list:
    vis = s.STORE_VISIT.name
    return [
        tag_variable("site", "Site", vis, s.SITE),
        tag_variable("store", "Store", vis, s.STORE, where_clause=SITE_IS),
        # The store's own floor, for the comparison panels (one value once the store is chosen).
        tag_variable("floor", "Floor", vis, s.FLOOR, where_clause=f"{SITE_IS} AND {STORE_IS}"),
    ]


def _visits(*clauses: str, group: str) -> Query:
    return Query(f'SELECT count("dwell_s") AS "visits" FROM "{s.STORE_VISIT}" '
                 + where(*clauses) + f" GROUP BY {group}")


def _compare(title: str, select: str, unit: str) -> object:
    vis = s.STORE_VISIT
    return bars(title,
                Query(f'SELECT {select} FROM "{vis}" ' + where(SITE_IS, STORE_IS)).alias("store"),
                Query(f'SELECT {select} FROM "{vis}" ' + where(SITE_IS, FLOOR_IS)).alias("floor"),
                Query(f'SELECT {select} FROM "{vis}" ' + where(SITE_IS)).alias("mall"),
                w=8, h=6, unit=unit)


def build(site=None, image_base_url: str = "") -> dash_b.Dashboard:
    vis = s.STORE_VISIT
    d = (dash_b.Dashboard("MallSense tenant: $store").uid(UID).tags(["mallsense", "tenant"])
         .time("now-7d", "now").timezone("browser").refresh("5m").editable()
         .variables(variables()))
    d = d.with_row(dash_b.Row("Visits"))
    d = d.with_panel(ts("Visits per hour",
                        _visits(SITE_IS, STORE_IS, group="time(1h) fill(0)").alias("visits"),
                        w=12, bars=True))
    d = d.with_panel(ts(
        "Visits and distinct visitors per day",
        _visits(SITE_IS, STORE_IS, group="time(1d) fill(0)").alias("visits"),
        Query(f'SELECT count(distinct("visitor")) AS "visitors" FROM "{vis}" '
              + where(SITE_IS, STORE_IS) + " GROUP BY time(1d) fill(0)").alias("visitors"),
        w=12, bars=True))
    d = d.with_row(dash_b.Row("Behaviour"))
    d = d.with_panel(hist("Dwell distribution",
                          Query(f'SELECT "dwell_s" FROM "{vis}" ' + where(SITE_IS, STORE_IS)),
                          bucket=60, w=12, unit="s"))
    d = d.with_panel(single_stat(
        "Conversion (visits with a purchase)",
        Query(f'SELECT sum("purchase") / count("dwell_s") * 100 FROM "{vis}" '
              + where(SITE_IS, STORE_IS)).alias("conversion"), w=6, unit="percent"))
    d = d.with_panel(pie(
        "Members and anonymous visits",
        Query(f'SELECT sum("member") AS "members", count("dwell_s") - sum("member") AS "anonymous" '
              f'FROM "{vis}" ' + where(SITE_IS, STORE_IS)), w=6))
    d = d.with_row(dash_b.Row("Compared with the floor and the mall"))
    d = d.with_panel(_compare("Mean dwell: store, floor, mall", 'mean("dwell_s")', "s"))
    d = d.with_panel(_compare("Conversion: store, floor, mall",
                              'sum("purchase") / count("dwell_s") * 100', "percent"))
    d = d.with_panel(_compare("Members' share of visits: store, floor, mall",
                              'sum("member") / count("dwell_s") * 100', "percent"))
    return d
