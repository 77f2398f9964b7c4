"""grafana-foundation-sdk: every builder call dashboards/ makes, on a tiny dashboard, to JSON.

The calls below are the ones of dashboards/panels.py, operator.py, field.py, tenant.py,
canvas_floor.py and influxql.py, serialized the way dashboards/build.py does
(``json.dumps(builder.build(), cls=JSONEncoder)``). Two of our classes hook into SDK internals
and are used as they are: ``influxql.Query`` (a ``cog.builder.Builder`` of a ``Dataquery`` with
its own ``to_json``) and ``canvas_floor._Root`` (replaces the builder's ``_internal`` model to
add the canvas background the SDK's model lacks).
"""
from __future__ import annotations

import json

import pytest
from grafana_foundation_sdk.builders import bargauge, barchart
from grafana_foundation_sdk.builders import canvas as canvas_b, common as common_b
from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.builders import histogram, piechart, stat, table, timeseries, xychart
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import canvas as canvas_m, common, dashboard as dash_m
from grafana_foundation_sdk.models import xychart as xy_m

from dashboards.canvas_floor import _Root
from dashboards.influxql import DATASOURCE, InfluxQLQuery, Query

PANEL_BASE = ["title", "datasource", "span", "height", "with_target", "unit", "thresholds",
              "color_scheme", "with_transformation", "description", "time_from", "time_shift",
              "repeat", "repeat_direction", "build"]
# (builder class, the methods dashboards/ calls on it)
METHODS = [
    (dash_b.Dashboard, ["uid", "tags", "refresh", "time", "timezone", "editable", "variables",
                        "with_row", "with_panel", "build"]),
    (dash_b.Row, ["build"]),
    (dash_b.QueryVariable, ["label", "query", "datasource", "refresh", "sort", "multi",
                            "include_all", "all_value"]),
    (dash_b.ThresholdsConfig, ["mode", "steps"]),
    (dash_b.FieldColor, ["mode"]),
    (common_b.ReduceDataOptions, ["calcs", "values"]),
    (common_b.ColorDimensionConfig, ["field", "fixed"]),
    (common_b.ScaleDimensionConfig, ["fixed", "min", "max"]),
    (timeseries.Panel, PANEL_BASE + ["draw_style", "fill_opacity"]),
    (stat.Panel, PANEL_BASE + ["reduce_options"]),
    (bargauge.Panel, PANEL_BASE + ["reduce_options", "orientation", "display_mode"]),
    (barchart.Panel, PANEL_BASE + ["x_field"]),
    (table.Panel, PANEL_BASE),
    (histogram.Panel, PANEL_BASE + ["bucket_size"]),
    (piechart.Panel, PANEL_BASE + ["reduce_options"]),
    (xychart.Panel, PANEL_BASE + ["series_mapping", "series"]),
    (xychart.ScatterSeriesConfig, ["x", "y", "show", "point_color", "point_size"]),
    (canvas_b.Panel, PANEL_BASE + ["root", "inline_editing", "show_advanced_types"]),
    (canvas_b.CanvasOptionsRoot, ["name", "elements", "build"]),
    (canvas_b.CanvasElementOptions, ["name", "type", "config", "constraint", "placement",
                                     "background", "border"]),
    (canvas_b.Placement, ["top", "left", "right", "bottom"]),
    (canvas_b.Constraint, ["horizontal", "vertical"]),
    (canvas_b.BackgroundConfig, ["color"]),
    (canvas_b.LineConfig, ["width", "color"]),
]


@pytest.mark.parametrize("cls,methods", METHODS, ids=[f"{c.__module__.split('.')[-1]}.{c.__name__}"
                                                      for c, _ in METHODS])
def test_builder_methods_exist(cls, methods):
    missing = [m for m in methods if not callable(getattr(cls, m, None))]
    assert missing == [], f"{cls.__module__}.{cls.__name__} lost {missing}"


def test_enum_members_we_use():
    assert dash_m.ThresholdsMode.ABSOLUTE.value == "absolute"
    assert dash_m.VariableRefresh.ON_TIME_RANGE_CHANGED.value == 2
    assert dash_m.VariableSort.ALPHABETICAL_ASC.value == 1
    assert dash_m.FieldColorModeId.THRESHOLDS.value == "thresholds"
    assert dash_m.FieldColorModeId.CONTINUOUS_GR_YL_RD.value == "continuous-GrYlRd"
    assert common.GraphDrawStyle.BARS.value == "bars"
    assert common.VizOrientation.HORIZONTAL.value == "horizontal"
    assert common.BarGaugeDisplayMode.GRADIENT.value == "gradient"
    assert canvas_m.HorizontalConstraint.SCALE.value == "scale"
    assert canvas_m.VerticalConstraint.SCALE.value == "scale"
    assert xy_m.ScatterShow.POINTS.value == "points"
    assert xy_m.SeriesMapping.MANUAL.value == "manual"


def test_models_take_our_keywords():
    assert DATASOURCE.to_json() == {"type": "influxdb", "uid": "mallsense-influxql"}
    assert dash_m.DataSourceRef(type_val="influxdb", uid="x").to_json() == \
        {"type": "influxdb", "uid": "x"}
    t = dash_m.DataTransformerConfig(id_val="merge", options={}).to_json()
    assert t["id"] == "merge" and t["options"] == {}
    assert dash_m.Threshold(value=None, color="green").to_json() == \
        {"value": None, "color": "green"}
    # Our query type plugs into the SDK's variant and builder bases.
    assert issubclass(InfluxQLQuery, cogvariants.Dataquery)
    assert issubclass(Query, cogbuilder.Builder)


def _panel(p, title: str, *, w: int = 12, h: int = 8, unit: str | None = None,
           q: Query | None = None):
    # dashboards/panels.py:panel_base
    p = p.title(title).datasource(DATASOURCE).span(w).height(h).with_target(
        (q or Query('SELECT last("visitors") FROM "occ"')).ref_id("A"))
    return p.unit(unit) if unit else p


def _tiny_dashboard() -> dict:
    steps = (dash_b.ThresholdsConfig().mode(dash_m.ThresholdsMode.ABSOLUTE)
             .steps([dash_m.Threshold(value=None, color="green"),
                     dash_m.Threshold(value=15, color="red")]))
    var = (dash_b.QueryVariable("floor").label("Floor")
           .query('SHOW TAG VALUES FROM "occ" WITH KEY = "floor"').datasource(DATASOURCE)
           .refresh(dash_m.VariableRefresh.ON_TIME_RANGE_CHANGED)
           .sort(dash_m.VariableSort.ALPHABETICAL_ASC).multi(True).include_all(True)
           .all_value(".*"))
    reduce = common_b.ReduceDataOptions().calcs(["lastNotNull"]).values(False)
    ts = (_panel(timeseries.Panel(), "ts", w=16, unit="short")
          .draw_style(common.GraphDrawStyle.BARS).fill_opacity(60)
          .time_from("now/d").time_shift("7d").description("why"))
    st = _panel(stat.Panel(), "stat", w=6, h=5).reduce_options(reduce).thresholds(steps)
    bg = (_panel(bargauge.Panel(), "bg").reduce_options(reduce)
          .orientation(common.VizOrientation.HORIZONTAL)
          .display_mode(common.BarGaugeDisplayMode.GRADIENT))
    bc = (_panel(barchart.Panel().x_field("le"), "bc", q=Query("SELECT 2").table())
          .with_transformation(dash_m.DataTransformerConfig(
              id_val="sortBy", options={"sort": [{"field": "le", "desc": False}]})))
    tb = (_panel(table.Panel(), "tb", q=Query("SELECT 3").table())
          .with_transformation(dash_m.DataTransformerConfig(id_val="merge", options={})))
    hi = _panel(histogram.Panel(), "hi").bucket_size(60)
    pi = _panel(piechart.Panel(), "pi").reduce_options(
        common_b.ReduceDataOptions().calcs(["sum"]).values(False))
    series = (xychart.ScatterSeriesConfig().x("x_m").y("y_m").show(xy_m.ScatterShow.POINTS)
              .point_color(common_b.ColorDimensionConfig().field("visitors"))
              .point_size(common_b.ScaleDimensionConfig().fixed(9).min(9).max(9)))
    xy = (_panel(xychart.Panel(), "xy").series_mapping(xy_m.SeriesMapping.MANUAL)
          .series([series]).repeat("floor").repeat_direction("h")
          .color_scheme(dash_b.FieldColor().mode(dash_m.FieldColorModeId.CONTINUOUS_GR_YL_RD)))
    element = (canvas_b.CanvasElementOptions().name("z1").type("rectangle")
               .config({"text": {"mode": "field", "field": "z1", "fixed": ""}})
               .constraint(canvas_b.Constraint().horizontal(canvas_m.HorizontalConstraint.SCALE)
                           .vertical(canvas_m.VerticalConstraint.SCALE))
               .placement(canvas_b.Placement().top(1).left(2).right(3).bottom(4))
               .background(canvas_b.BackgroundConfig().color(
                   common_b.ColorDimensionConfig().field("z1").fixed("transparent")))
               .border(canvas_b.LineConfig().width(1)
                       .color(common_b.ColorDimensionConfig().fixed("#666666"))))
    cv = (_panel(canvas_b.Panel(), "cv", h=12)
          .root(_Root("/public/img/mallsense/p.png").name("plan").elements([element]))
          .inline_editing(False).show_advanced_types(False).thresholds(steps)
          .color_scheme(dash_b.FieldColor().mode(dash_m.FieldColorModeId.THRESHOLDS)))
    d = (dash_b.Dashboard("Tiny").uid("tiny").tags(["mallsense"]).refresh("10s")
         .time("now-6h", "now").timezone("browser").editable().variables([var])
         .with_row(dash_b.Row("Now")))
    for p in (ts, st, bg, bc, tb, hi, pi, xy, cv):
        d = d.with_panel(p)
    return json.loads(json.dumps(d.build(), cls=JSONEncoder))  # dashboards/build.py:dashboard_json


@pytest.fixture(scope="module")
def model() -> dict:
    return _tiny_dashboard()


def _by_title(model: dict) -> dict[str, dict]:
    return {p["title"]: p for p in model["panels"]}


def test_dashboard_level_fields(model):
    assert (model["title"], model["uid"], model["tags"], model["refresh"]) == \
        ("Tiny", "tiny", ["mallsense"], "10s")
    assert model["time"] == {"from": "now-6h", "to": "now"} and model["timezone"] == "browser"
    assert model["editable"] is True
    (var,) = model["templating"]["list"]
    assert {k: var[k] for k in ("type", "name", "label", "query", "datasource", "refresh", "sort",
                                "multi", "includeAll", "allValue")} == {
        "type": "query", "name": "floor", "label": "Floor",
        "query": 'SHOW TAG VALUES FROM "occ" WITH KEY = "floor"',
        "datasource": {"type": "influxdb", "uid": "mallsense-influxql"},
        "refresh": 2, "sort": 1, "multi": True, "includeAll": True, "allValue": ".*"}


def test_panels_types_layout_and_our_influxql_targets(model):
    panels = model["panels"]
    assert [p["type"] for p in panels] == ["row", "timeseries", "stat", "bargauge", "barchart",
                                           "table", "histogram", "piechart", "xychart", "canvas"]
    assert panels[0]["title"] == "Now"
    p = _by_title(model)
    assert (p["ts"]["gridPos"]["w"], p["ts"]["gridPos"]["h"]) == (16, 8)
    assert (p["stat"]["gridPos"]["w"], p["stat"]["gridPos"]["h"]) == (6, 5)
    assert p["ts"]["datasource"] == {"type": "influxdb", "uid": "mallsense-influxql"}
    assert p["ts"]["targets"] == [{
        "refId": "A", "datasource": {"type": "influxdb", "uid": "mallsense-influxql"},
        "query": 'SELECT last("visitors") FROM "occ"', "rawQuery": True,
        "resultFormat": "time_series"}]
    assert p["tb"]["targets"][0]["resultFormat"] == "table"


def test_panel_options_and_field_config(model):
    p = _by_title(model)
    ts = p["ts"]
    assert ts["fieldConfig"]["defaults"]["unit"] == "short"
    assert ts["fieldConfig"]["defaults"]["custom"] == {"drawStyle": "bars", "fillOpacity": 60}
    assert (ts["timeFrom"], ts["timeShift"], ts["description"]) == ("now/d", "7d", "why")
    thresholds = {"mode": "absolute", "steps": [{"value": None, "color": "green"},
                                                {"value": 15, "color": "red"}]}
    assert p["stat"]["options"]["reduceOptions"] == {"calcs": ["lastNotNull"], "values": False}
    assert p["stat"]["fieldConfig"]["defaults"]["thresholds"] == thresholds
    assert (p["bg"]["options"]["orientation"], p["bg"]["options"]["displayMode"]) == \
        ("horizontal", "gradient")
    assert p["bc"]["options"]["xField"] == "le"
    assert p["bc"]["transformations"] == [
        {"id": "sortBy", "options": {"sort": [{"field": "le", "desc": False}]}}]
    assert p["tb"]["transformations"] == [{"id": "merge", "options": {}}]
    assert p["hi"]["options"]["bucketSize"] == 60
    assert p["pi"]["options"]["reduceOptions"]["calcs"] == ["sum"]
    xy = p["xy"]
    assert xy["options"]["seriesMapping"] == "manual"
    (series,) = xy["options"]["series"]
    assert {k: series[k] for k in ("x", "y", "show", "pointColor", "pointSize")} == {
        "x": "x_m", "y": "y_m", "show": "points", "pointColor": {"field": "visitors"},
        "pointSize": {"fixed": 9, "min": 9, "max": 9}}
    assert (xy["repeat"], xy["repeatDirection"]) == ("floor", "h")
    assert xy["fieldConfig"]["defaults"]["color"] == {"mode": "continuous-GrYlRd"}
    assert p["cv"]["fieldConfig"]["defaults"]["thresholds"] == thresholds
    assert p["cv"]["fieldConfig"]["defaults"]["color"] == {"mode": "thresholds"}


def test_canvas_root_keeps_our_background_hook(model):
    cv = _by_title(model)["cv"]
    assert (cv["options"]["inlineEditing"], cv["options"]["showAdvancedTypes"]) == (False, False)
    root = cv["options"]["root"]
    # The builder's name()/elements() wrote into our replaced _internal model, and the SDK
    # serialized it through our to_json override.
    assert (root["name"], root["type"]) == ("plan", "frame")
    assert root["background"]["image"] == {"mode": "fixed", "fixed": "/public/img/mallsense/p.png"}
    (el,) = root["elements"]
    assert (el["name"], el["type"]) == ("z1", "rectangle")
    assert el["config"]["text"] == {"mode": "field", "field": "z1", "fixed": ""}
    assert el["constraint"] == {"horizontal": "scale", "vertical": "scale"}
    assert el["placement"] == {"top": 1, "left": 2, "right": 3, "bottom": 4}
    assert el["background"] == {"color": {"field": "z1", "fixed": "transparent"}}
    assert el["border"] == {"width": 1, "color": {"fixed": "#666666"}}
