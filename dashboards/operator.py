"""Mall operator, live (refresh 10 s): floor heat views, occupancy, footfall, funnel, top stores."""
from __future__ import annotations

from grafana_foundation_sdk.builders import common as common_b, dashboard as dash_b, xychart
from grafana_foundation_sdk.models import dashboard as dash_m, xychart as xy_m

from dashboards import schema as s
from dashboards.canvas_floor import floor_canvas
from dashboards.influxql import FLOOR_IN, SITE_IS, Query, tag_variable, where
from dashboards.panels import OCCUPANCY_STEPS, panel_base, bars, ranked_table, single_stat, ts

UID = "mallsense-operator"
REFRESH = "10s"


def variables() -> list:
    return [
        tag_variable("site", "Site", s.FLOOR_OCCUPANCY.name, s.SITE),
        tag_variable("floor", "Floor", s.FLOOR_OCCUPANCY.name, s.FLOOR, where_clause=SITE_IS,
                     multi=True, include_all=True),
    ]


HEAT_WINDOW = "15m"


def heat_grid() -> xychart.Panel:
    """The 2 m heat grid of each selected floor (last 15 min) as an x/y scatter.

    visitor_s per cell and minute, averaged over the minutes: mean shoppers in the cell.
    """
    m = s.HEAT
    q = Query(f'SELECT last("x_m") AS "x_m", last("y_m") AS "y_m", '
              f'sum("visitor_s") / {seconds(HEAT_WINDOW)} AS "visitors" '
              f'FROM "{m}" ' + where(SITE_IS, FLOOR_IN) + ' GROUP BY "cell"').table()
    series = (xychart.ScatterSeriesConfig().x("x_m").y("y_m").show(xy_m.ScatterShow.POINTS)
              .point_color(common_b.ColorDimensionConfig().field("visitors"))
              .point_size(common_b.ScaleDimensionConfig().fixed(9).min(9).max(9)))
    p = panel_base(xychart.Panel(), "Heat grid (2 m cells, last 15 min), floor $floor", [q], 12, 12, None)
    return (p.series_mapping(xy_m.SeriesMapping.MANUAL).series([series]).time_from(HEAT_WINDOW)
            .repeat("floor").repeat_direction("h")
            .color_scheme(dash_b.FieldColor().mode(dash_m.FieldColorModeId.CONTINUOUS_GR_YL_RD)))


def seconds(duration: str) -> int:
    return int(duration[:-1]) * {"s": 1, "m": 60, "h": 3600}[duration[-1]]


def footfall_query() -> Query:
    return Query(f'SELECT sum("entries") FROM "{s.FOOTFALL}" ' + where(SITE_IS)
                 + ' GROUP BY time(15m) fill(0)').alias("entries")


def funnel_query() -> Query:
    sel = ", ".join(f'sum("{f}") AS "{f}"' for f in s.FUNNEL_STAGES)
    return Query(f'SELECT {sel} FROM "{s.FUNNEL}" ' + where(SITE_IS))


def build(site, image_base_url: str) -> dash_b.Dashboard:
    occ = s.FLOOR_OCCUPANCY
    d = (dash_b.Dashboard("MallSense operator (live)").uid(UID).tags(["mallsense", "operator"])
         .refresh(REFRESH).time("now-6h", "now").timezone("browser").editable()
         .variables(variables()))
    d = d.with_row(dash_b.Row("Now"))
    d = d.with_panel(ts(
        "Occupancy per floor",
        Query(f'SELECT last("visitors") FROM "{occ}" ' + where(SITE_IS, FLOOR_IN)
              + f' GROUP BY time($__interval), "{s.FLOOR}" fill(previous)').alias("$tag_floor"),
        w=16, unit="short"))
    d = d.with_panel(bars(
        "Shoppers on each floor now",
        Query(f'SELECT last("visitors") FROM "{occ}" ' + where(SITE_IS, FLOOR_IN)
              + f' GROUP BY "{s.FLOOR}"').alias("$tag_floor"),
        w=8, steps=OCCUPANCY_STEPS))
    d = d.with_row(dash_b.Row("Floor plans"))
    for f in site.floors:
        d = d.with_panel(floor_canvas(site, f.id, image_base_url))
    d = d.with_panel(heat_grid())
    d = d.with_row(dash_b.Row("Footfall and journey"))
    d = d.with_panel(ts("Footfall today (entries per 15 min)", footfall_query(), w=12, bars=True)
                     .time_from("now/d"))
    d = d.with_panel(ts("Same weekday last week", footfall_query(), w=12, bars=True)
                     .time_from("now/d").time_shift("7d"))
    d = d.with_panel(bars("Journey funnel: passby, entry, floor change, dwell, purchase, exit",
                          funnel_query(), w=16, calc="sum").description(
        "Visitors reaching each stage: passby = heard near the mall (entered or not), entry, "
        "floor = changed floor, dwell = visited a store, purchase, exit."))
    d = d.with_panel(single_stat(
        "Capture rate (entered / heard near the mall)",
        Query(f'SELECT sum("entry") / sum("passby") * 100 FROM "{s.FUNNEL}" ' + where(SITE_IS))
        .alias("capture rate"), w=8, unit="percent"))
    vis = s.STORE_VISIT
    d = d.with_row(dash_b.Row("Stores"))
    d = d.with_panel(ranked_table(
        "Top stores by mean dwell",
        Query(f'SELECT mean("dwell_s") AS "dwell", count("dwell_s") AS "visits" FROM "{vis}" '
              + where(SITE_IS, FLOOR_IN) + f' GROUP BY "{s.STORE}"'), "dwell", unit="s"))
    d = d.with_panel(ranked_table(
        "Top stores by conversion (visits with a purchase)",
        Query(f'SELECT sum("purchase") / count("dwell_s") * 100 AS "conversion", '
              f'count("dwell_s") AS "visits" FROM "{vis}" ' + where(SITE_IS, FLOOR_IN)
              + f' GROUP BY "{s.STORE}"'), "conversion", unit="percent"))
    return d
