"""Small constructors for the panel kinds the dashboards use, so each dashboard reads as a list.

Every constructor takes the panel's InfluxQL targets (``dashboards.influxql.Query``) first and
sets the data source on the panel; sizes are Grafana grid units (24 columns wide).
"""
from __future__ import annotations

from grafana_foundation_sdk.builders import bargauge, barchart, common as common_b, dashboard as dash_b
from grafana_foundation_sdk.builders import histogram, piechart, stat, table, timeseries
from grafana_foundation_sdk.models import common, dashboard as dash_m

from dashboards.influxql import DATASOURCE, Query


def thresholds(*steps: tuple[float | None, str]) -> dash_b.ThresholdsConfig:
    return (dash_b.ThresholdsConfig().mode(dash_m.ThresholdsMode.ABSOLUTE)
            .steps([dash_m.Threshold(value=v, color=c) for v, c in steps]))


OCCUPANCY_STEPS = thresholds((None, "green"), (15, "yellow"), (40, "orange"), (80, "red"))


def panel_base(p, title: str, queries: list[Query], w: int, h: int, unit: str | None):
    p = p.title(title).datasource(DATASOURCE).span(w).height(h)
    for i, q in enumerate(queries):
        p = p.with_target(q.ref_id(chr(ord("A") + i)))
    if unit:
        p = p.unit(unit)
    return p


def ts(title: str, *queries: Query, w: int = 12, h: int = 8, unit: str | None = None,
       bars: bool = False) -> timeseries.Panel:
    p = panel_base(timeseries.Panel(), title, list(queries), w, h, unit)
    if bars:
        p = p.draw_style(common.GraphDrawStyle.BARS).fill_opacity(60)
    return p


def single_stat(title: str, *queries: Query, w: int = 6, h: int = 5, unit: str | None = None,
                calc: str = "lastNotNull", steps: dash_b.ThresholdsConfig | None = None) -> stat.Panel:
    p = panel_base(stat.Panel(), title, list(queries), w, h, unit)
    p = p.reduce_options(common_b.ReduceDataOptions().calcs([calc]).values(False))
    return p.thresholds(steps) if steps is not None else p


def bars(title: str, *queries: Query, w: int = 12, h: int = 8, unit: str | None = None,
         calc: str = "lastNotNull", steps: dash_b.ThresholdsConfig | None = None) -> bargauge.Panel:
    p = panel_base(bargauge.Panel(), title, list(queries), w, h, unit)
    p = (p.reduce_options(common_b.ReduceDataOptions().calcs([calc]).values(False))
         .orientation(common.VizOrientation.HORIZONTAL)
         .display_mode(common.BarGaugeDisplayMode.GRADIENT))
    return p.thresholds(steps) if steps is not None else p


def ranked_table(title: str, query: Query, sort_field: str, *, limit: int = 10, w: int = 12,
                 h: int = 8, unit: str | None = None, desc: bool = True,
                 numeric: str | None = None, chart_x: str | None = None):
    """A table sorted by one field, cut to ``limit`` rows (top-N stores).

    ``numeric`` names a string column (a tag) to convert to a number first, so it sorts as one;
    with ``chart_x`` the rows are drawn as a bar chart over that column instead of a table.
    """
    panel = barchart.Panel().x_field(chart_x) if chart_x else table.Panel()
    p = panel_base(panel, title, [query.table()], w, h, unit)
    if numeric:
        p = p.with_transformation(dash_m.DataTransformerConfig(id_val="convertFieldType", options={
            "conversions": [{"targetField": numeric, "destinationType": "number"}]}))
    return (p.with_transformation(dash_m.DataTransformerConfig(
                id_val="sortBy", options={"sort": [{"field": sort_field, "desc": desc}]}))
            .with_transformation(dash_m.DataTransformerConfig(
                id_val="limit", options={"limitField": limit})))


def plain_table(title: str, *queries: Query, w: int = 12, h: int = 8,
                unit: str | None = None) -> table.Panel:
    p = panel_base(table.Panel(), title, [q.table() for q in queries], w, h, unit)
    if len(queries) > 1:
        p = p.with_transformation(dash_m.DataTransformerConfig(id_val="merge", options={}))
    return p


def hist(title: str, query: Query, *, bucket: float, w: int = 12, h: int = 8,
         unit: str | None = None) -> histogram.Panel:
    return panel_base(histogram.Panel(), title, [query.table()], w, h, unit).bucket_size(bucket)


def pie(title: str, *queries: Query, w: int = 6, h: int = 8) -> piechart.Panel:
    p = panel_base(piechart.Panel(), title, list(queries), w, h, None)
    return p.reduce_options(common_b.ReduceDataOptions().calcs(["sum"]).values(False))
