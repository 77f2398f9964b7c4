"""Floor-plan PNGs of a site: zones coloured by kind, stores labelled, gateways marked.

Uses matplotlib's object API with the Agg canvas (no pyplot, no global backend state), so it
works headless and from threads.
"""
from __future__ import annotations

import logging
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.patches import Polygon as PolygonPatch

from gateway.site.model import Site

log = logging.getLogger(__name__)

KIND_COLOURS: dict[str, str] = {
    "store": "#9ecae1",
    "corridor": "#f0f0f0",
    "entrance": "#74c476",
    "escalator": "#fd8d3c",
    "lift": "#e6550d",
    "outside": "#d9d9d9",
    "service": "#bcbddc",
    "atrium": "#ffffff",
}


def draw_floor(site: Site, floor_id: str, path: str | Path, dpi: int = 110) -> Path:
    """Write one floor plan as PNG to `path` and return it."""
    floor = site.floor(floor_id)
    xs = [p[0] for p in floor.outline]
    ys = [p[1] for p in floor.outline]
    width, height = max(xs) - min(xs), max(ys) - min(ys)
    fig = Figure(figsize=(14, max(4.0, 14 * height / max(width, 1.0)) + 1.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.add_patch(PolygonPatch(floor.outline, closed=True, fill=False, lw=2.0, ec="black"))
    for z in site.zones_on(floor_id):
        ax.add_patch(PolygonPatch(z.polygon, closed=True, fc=KIND_COLOURS[z.kind], ec="#555555",
                                  lw=0.6, hatch="//" if z.kind == "atrium" else None))
        cx, cy = z.centroid
        if z.kind == "store":
            label = z.tenant or "(vacant)"
            zx = [p[0] for p in z.polygon]
            zy = [p[1] for p in z.polygon]
            tall = (max(zy) - min(zy)) > 1.5 * (max(zx) - min(zx))
            ax.text(cx, cy, label, ha="center", va="center", fontsize=5.5,
                    rotation=90 if tall else 0, clip_on=True)
        elif z.kind in ("entrance", "escalator", "lift", "atrium", "outside"):
            ax.text(cx, cy, z.name, ha="center", va="center", fontsize=5, style="italic",
                    rotation=90 if z.kind in ("escalator", "lift") else 0, clip_on=True)
    gws = site.gateways_on(floor_id)
    if gws:
        ax.scatter([g.x for g in gws], [g.y for g in gws], marker="^", s=40, c="#cb181d",
                   edgecolors="black", linewidths=0.5, zorder=5)
        for g in gws:
            ax.annotate(g.id, (g.x, g.y), xytext=(3, 3), textcoords="offset points",
                        fontsize=5.5, color="#67000d", zorder=6)
    handles = [Patch(fc=c, ec="#555555", label=k) for k, c in KIND_COLOURS.items()]
    handles.append(Patch(fc="#cb181d", label="gateway"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7)
    ax.set_xlim(min(xs) - 2, max(xs) + 2)
    ax.set_ylim(min(ys) - 2, max(ys) + 2)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m, east)")
    ax.set_ylabel("y (m, north)")
    ax.set_title(f"{site.name}: {floor.id} {floor.name} (level {floor.level})")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=dpi)
    log.debug("wrote %s", out)
    return out


def draw_site(site: Site, out_dir: str | Path, dpi: int = 110) -> list[Path]:
    """One PNG per floor, named `{site.id}_{floor.id}.png`, in `out_dir` (created)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return [draw_floor(site, f.id, out / f"{site.id}_{f.id}.png", dpi=dpi) for f in site.floors]
