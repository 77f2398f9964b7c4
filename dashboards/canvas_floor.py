"""The per-floor canvas panel: the floor-plan PNG as background, stores coloured by occupancy.

Each store zone becomes a rectangle element whose background colour is driven by the field
named after the zone id (the query aliases each series ``$tag_zone``), through the panel's
occupancy thresholds. The SDK's ``CanvasOptionsRoot`` has no background, although Grafana's root
frame takes one (panel editor: "Background (canvas)"), so ``_Root`` adds it.
"""
from __future__ import annotations

from grafana_foundation_sdk.builders import canvas as canvas_b, common as common_b
from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.models import canvas as canvas_m, dashboard as dash_m

from dashboards import schema as s
from dashboards.floorplan import floor_extent, image_name
from dashboards.influxql import SITE_IS, Query, where
from dashboards.panels import OCCUPANCY_STEPS, panel_base


class _RootModel(canvas_m.CanvasOptionsRoot):
    def __init__(self, image_url: str) -> None:
        super().__init__()
        self.image_url = image_url

    def to_json(self) -> dict[str, object]:
        out = super().to_json()
        out["background"] = {"color": {"fixed": "transparent"},
                             "image": {"mode": "fixed", "fixed": self.image_url}, "size": "fill"}
        return out


class _Root(canvas_b.CanvasOptionsRoot):
    def __init__(self, image_url: str) -> None:
        super().__init__()
        self._internal = _RootModel(image_url)


def zone_element(zone, extent) -> canvas_b.CanvasElementOptions:
    box = extent.percent_box(zone.polygon)
    placement = (canvas_b.Placement().top(box["top"]).left(box["left"])
                 .right(box["right"]).bottom(box["bottom"]))
    constraint = (canvas_b.Constraint().horizontal(canvas_m.HorizontalConstraint.SCALE)
                  .vertical(canvas_m.VerticalConstraint.SCALE))
    background = canvas_b.BackgroundConfig().color(
        common_b.ColorDimensionConfig().field(zone.id).fixed("transparent"))
    text = {"mode": "field", "field": zone.id, "fixed": ""}
    return (canvas_b.CanvasElementOptions().name(zone.id).type("rectangle")
            .config({"text": text, "align": "center", "valign": "middle",
                     "color": {"fixed": "#000000"}, "size": 10})
            .constraint(constraint).placement(placement).background(background)
            .border(canvas_b.LineConfig().width(1).color(common_b.ColorDimensionConfig().fixed("#666666"))))


def occupancy_query(floor_id: str) -> Query:
    m = s.ZONE_OCCUPANCY
    return Query(
        f'SELECT last("visitors") FROM "{m}" '
        + where(SITE_IS, f"\"{s.FLOOR}\" = '{floor_id}'", "\"kind\" = 'store'")
        + f' GROUP BY "{s.ZONE}"').alias(f"$tag_{s.ZONE}")


def floor_canvas(site, floor_id: str, image_base_url: str, *, w: int = 12, h: int = 12):
    extent = floor_extent(site, floor_id)
    stores = [z for z in site.zones_on(floor_id) if z.kind == "store"]
    root = _Root(f"{image_base_url.rstrip('/')}/{image_name(site.id, floor_id)}").name(
        f"{floor_id} plan").elements([zone_element(z, extent) for z in stores])
    title = f"{site.floor(floor_id).name}: stores by occupancy"
    p = panel_base(canvas_b.Panel(), title, [occupancy_query(floor_id)], w, h, None)
    return (p.root(root).inline_editing(False).show_advanced_types(False)
            .thresholds(OCCUPANCY_STEPS)
            .color_scheme(dash_b.FieldColor().mode(dash_m.FieldColorModeId.THRESHOLDS)))
