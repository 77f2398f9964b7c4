"""Tenant (one store): visits per hour and day, dwell, conversion, members, vs floor and mall."""
from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash_b

from dashboards import schema as s
from dashboards.influxql import SITE_IS, STORE_IS, Query, tag_variable, where
from dashboards.panels import bars, pie, ranked_table, single_stat, ts

UID = "mallsense-tenant"
FLOOR_IS = "\"floor\" = '$floor'"
CONVERSION = 'sum("purchase") / count("dwell_s") * 100'


def variables() -> list:
    vis = s.STORE_VISITS.name
    return [
        tag_variable("site", "Site", vis, s.SITE),
        tag_variable("store", "Store", vis, s.STORE, where_clause=SITE_IS),
        # The store's own floor, for the comparison panels (one value once the store is chosen).
        tag_variable("floor", "Floor", vis, s.FLOOR, where_clause=f"{SITE_IS} AND {STORE_IS}"),
    ]


def _visits(group: str) -> Query:
    return Query(f'SELECT sum("visits") AS "visits" FROM "{s.STORE_VISITS}" '
                 + where(SITE_IS, STORE_IS) + f" GROUP BY {group}").alias("visits")


def _compare(title: str, select: str, unit: str):
    vis = s.STORE_VISIT
    return bars(title,
                Query(f'SELECT {select} FROM "{vis}" ' + where(SITE_IS, STORE_IS)).alias("store"),
                Query(f'SELECT {select} FROM "{vis}" ' + where(SITE_IS, FLOOR_IS)).alias("floor"),
                Query(f'SELECT {select} FROM "{vis}" ' + where(SITE_IS)).alias("mall"),
                w=8, h=6, unit=unit)


def dwell_histogram():
    """Visits per dwell bin; ``le`` is a tag (string), so it is made numeric to sort the bins."""
    q = Query(f'SELECT sum("visits") AS "visits" FROM "{s.STORE_DWELL_HIST}" '
              + where(SITE_IS, STORE_IS) + ' GROUP BY "le"')
    return ranked_table("Dwell distribution (visits per dwell bin, le = upper bound in s)", q, "le",
                        limit=20, w=12, desc=False, numeric="le", chart_x="le")


def build(site=None, image_base_url: str = "") -> dash_b.Dashboard:
    d = (dash_b.Dashboard("MallSense tenant: $store").uid(UID).tags(["mallsense", "tenant"])
         .time("now-7d", "now").timezone("browser").refresh("5m").editable()
         .variables(variables()))
    d = d.with_row(dash_b.Row("Visits"))
    d = d.with_panel(ts("Visits per hour", _visits("time(1h) fill(0)"), w=12, bars=True))
    d = d.with_panel(ts(
        "Visits and distinct visitors per day", _visits("time(1d) fill(0)"),
        Query(f'SELECT count(distinct("visitor")) AS "visitors" FROM "{s.STORE_VISIT}" '
              + where(SITE_IS, STORE_IS) + " GROUP BY time(1d) fill(0)").alias("visitors"),
        w=12, bars=True))
    d = d.with_row(dash_b.Row("Behaviour"))
    d = d.with_panel(dwell_histogram())
    d = d.with_panel(single_stat(
        "Conversion (visits with a purchase)",
        Query(f'SELECT {CONVERSION} FROM "{s.STORE_VISIT}" ' + where(SITE_IS, STORE_IS))
        .alias("conversion"), w=6, unit="percent"))
    d = d.with_panel(pie(
        "Visits by members and anonymous shoppers",
        Query(f'SELECT sum("member") AS "members", count("dwell_s") - sum("member") AS "anonymous" '
              f'FROM "{s.STORE_VISIT}" ' + where(SITE_IS, STORE_IS)), w=6))
    d = d.with_row(dash_b.Row("Compared with the floor and the mall"))
    d = d.with_panel(_compare("Mean dwell: store, floor, mall", 'mean("dwell_s")', "s"))
    d = d.with_panel(_compare("Conversion: store, floor, mall", CONVERSION, "percent"))
    d = d.with_panel(_compare("Members' share of visits: store, floor, mall",
                              'sum("member") / count("dwell_s") * 100', "percent"))
    return d
