"""Floor-plan images for the canvas panels, and where each zone sits on them.

The image spans exactly the floor's bounding box (no margins, no axes), so a point (x, y) in
metres maps linearly to a fraction of the image; the canvas panel places each zone's element
with the ``scale`` constraint, whose placement values are percentages of the panel, and the
background image is stretched to fill it. Zones are drawn as their bounding boxes on the canvas
(the canvas has no polygon element); the PNG underneath shows the true polygons.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Polygon as MplPolygon  # noqa: E402

log = logging.getLogger(__name__)

# Pixels per metre of the rendered plan: a 120 m floor is 960 px wide.
PX_PER_M = 8.0
ZONE_FILL = {
    "store": "#f4f1ea", "corridor": "#ffffff", "entrance": "#d9ead3", "escalator": "#cfe2f3",
    "lift": "#cfe2f3", "service": "#e6e6e6", "atrium": "#dde7f0", "outside": "#eeeeee",
}


@dataclass(frozen=True)
class Extent:
    """The floor's bounding box in metres (x east, y north)."""

    x0: float
    y0: float
    x1: float
    y1: float

    @classmethod
    def of(cls, points) -> "Extent":
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        return cls(min(xs), min(ys), max(xs), max(ys))

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    def percent_box(self, polygon) -> dict[str, float]:
        """Canvas placement (percent of the panel) of a polygon's bounding box.

        Canvas ``top`` counts from the top of the panel, while y grows northwards.
        """
        b = Extent.of(polygon)
        return {
            "left": round(100.0 * (b.x0 - self.x0) / self.width, 3),
            "right": round(100.0 * (self.x1 - b.x1) / self.width, 3),
            "top": round(100.0 * (self.y1 - b.y1) / self.height, 3),
            "bottom": round(100.0 * (b.y0 - self.y0) / self.height, 3),
        }


def floor_extent(site, floor_id: str) -> Extent:
    floor = site.floor(floor_id)
    pts = list(floor.outline)
    for z in site.zones_on(floor_id):
        pts.extend(z.polygon)
    return Extent.of(pts)


def image_name(site_id: str, floor_id: str) -> str:
    return f"{site_id}-{floor_id}.png"


def render_floor(site, floor_id: str, path: str | Path) -> Path:
    """Draw one floor (zones, names, gateways) as a PNG spanning its extent exactly."""
    ext = floor_extent(site, floor_id)
    fig = plt.figure(figsize=(ext.width * PX_PER_M / 100.0, ext.height * PX_PER_M / 100.0), dpi=100)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(ext.x0, ext.x1)
    ax.set_ylim(ext.y0, ext.y1)
    ax.set_axis_off()
    ax.add_patch(MplPolygon(site.floor(floor_id).outline, closed=True, facecolor="#fafafa",
                            edgecolor="#444444", linewidth=2.0))
    for z in site.zones_on(floor_id):
        ax.add_patch(MplPolygon(z.polygon, closed=True, facecolor=ZONE_FILL.get(z.kind, "#ffffff"),
                                edgecolor="#888888", linewidth=0.8))
        if z.kind in ("store", "entrance", "escalator", "lift"):
            xs = [p[0] for p in z.polygon]
            ys = [p[1] for p in z.polygon]
            ax.text(sum(xs) / len(xs), sum(ys) / len(ys), z.name[:18], ha="center", va="center",
                    fontsize=6, color="#333333")
    gws = site.gateways_on(floor_id)
    if gws:
        ax.scatter([g.x for g in gws], [g.y for g in gws], marker="^", s=18, c="#1f4e79")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    log.debug("floor plan %s -> %s", floor_id, path)
    return path
