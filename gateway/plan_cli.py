"""`mallsense plan`: coverage maps per floor, weak cells and zones, where to add gateways.

Writes to ``--out``: ``coverage_<floor>.png`` (expected accuracy and floor margin),
``weak_cells.csv`` (cells worse than ``--threshold-m``), ``zones.csv`` (every scored zone's mean
bound), ``suggestions.csv`` (greedy new gateways, ``--add`` per floor). With ``--influx`` the
per-floor percentiles also go to InfluxDB as the ``coverage`` measurement, which the field
dashboard shows.
"""
from __future__ import annotations

import csv
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gateway.plan import FloorCoverage, Suggestion, coverage_points, floor_coverage, suggest_gateway

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlanResult:
    images: list[Path]
    weak_cells: Path
    zones: Path
    suggestions: Path
    suggested: list[Suggestion]
    coverage: dict[str, FloorCoverage]


def draw_floor(site, cov: FloorCoverage, threshold_m: float, path: Path,
               suggestions: list[Suggestion] = ()) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon as MplPolygon

    gx, gy = cov.grid_x, cov.grid_y
    dx = (gx[1] - gx[0]) / 2 if len(gx) > 1 else 1.0
    extent = (gx[0] - dx, gx[-1] + dx, gy[0] - dx, gy[-1] + dx)
    fig, axes = plt.subplots(1, 2, figsize=(14, 5), dpi=90)
    crlb = np.ma.masked_invalid(np.where(np.isinf(cov.crlb_m), 99.0, cov.crlb_m))
    im = axes[0].imshow(crlb, origin="lower", extent=extent, cmap="viridis_r",
                        vmin=0, vmax=max(3 * threshold_m, 10.0))
    fig.colorbar(im, ax=axes[0], label="expected error bound (CRLB), m")
    finite = np.where(np.isnan(cov.crlb_m), 0.0, np.minimum(cov.crlb_m, 99.0))
    axes[0].contour(gx, gy, finite, levels=[threshold_m], colors="red", linewidths=1.0)
    margin = np.ma.masked_invalid(cov.margin_nats)
    im2 = axes[1].imshow(margin, origin="lower", extent=extent, cmap="magma",
                         vmin=0, vmax=max(float(np.nanpercentile(cov.margin_nats, 95)), 1.0)
                         if np.isfinite(np.nanmax(cov.margin_nats)) else 1.0)
    fig.colorbar(im2, ax=axes[1], label="floor margin, nats")
    gws = site.gateways_on(cov.floor)
    for ax in axes:
        for z in site.zones_on(cov.floor):
            ax.add_patch(MplPolygon(z.polygon, closed=True, fill=False, edgecolor="#555555",
                                    linewidth=0.5))
        ax.scatter([g.x for g in gws], [g.y for g in gws], marker="^", c="white",
                   edgecolors="black", s=40, label="gateway")
        for s in suggestions:
            ax.scatter([s.x], [s.y], marker="*", c="red", edgecolors="black", s=200,
                       label="suggested gateway")
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.set_aspect("equal")
        ax.set_xlabel("x, m (east)")
    axes[0].set_ylabel("y, m (north)")
    axes[0].set_title(f"{cov.floor}: expected accuracy; red line = {threshold_m:g} m")
    axes[1].set_title(f"{cov.floor}: floor classification margin")
    axes[0].legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def run_plan(site, out_dir: str | Path, *, threshold_m: float = 3.0, cell_m: float = 2.0,
             radio: str = "ble", add: int = 1) -> PlanResult:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images, suggested, covs = [], [], {}
    weak_rows, zone_rows = [], []
    for f in site.floors:
        cov = floor_coverage(site, f.id, cell_m=cell_m, radio=radio)
        covs[f.id] = cov
        extra: list[tuple[float, float, float]] = []
        mine = []
        for _ in range(add):
            s = suggest_gateway(site, f.id, cell_m=cell_m, radio=radio, extra=tuple(extra))
            extra.append((s.x, s.y, s.z))
            mine.append(s)
        suggested += mine
        images.append(draw_floor(site, cov, threshold_m, out / f"coverage_{f.id}.png", mine))
        yy, xx = np.meshgrid(cov.grid_y, cov.grid_x, indexing="ij")
        bad = ~np.isnan(cov.crlb_m) & (cov.crlb_m > threshold_m)
        for iy, ix in zip(*np.nonzero(bad)):
            weak_rows.append([f.id, f"{xx[iy, ix]:.1f}", f"{yy[iy, ix]:.1f}", cov.zone_of[iy, ix],
                              _m(cov.crlb_m[iy, ix]), f"{cov.margin_nats[iy, ix]:.2f}"])
        for zid, score in sorted(cov.zone_scores().items(), key=lambda kv: -kv[1]):
            z = site.zone(zid)
            zone_rows.append([f.id, zid, z.kind, z.name, _m(score), "yes" if score > threshold_m else "no"])
    weak = _csv(out / "weak_cells.csv", ["floor", "x_m", "y_m", "zone", "crlb_m", "floor_margin_nats"],
                weak_rows)
    zones = _csv(out / "zones.csv", ["floor", "zone", "kind", "name", "mean_crlb_m",
                                     f"worse_than_{threshold_m:g}_m"], zone_rows)
    sugg = _csv(out / "suggestions.csv",
                ["floor", "x_m", "y_m", "z_above_floor_m", "target_zone", "target_before_m",
                 "target_after_m", "floor_mean_before_m", "floor_mean_after_m",
                 "worst_zone_after", "worst_after_m"],
                [[s.floor, f"{s.x:.1f}", f"{s.y:.1f}", f"{s.z:.1f}", s.worst_zone,
                  _m(s.worst_before_m), _m(s.worst_after_m), _m(s.mean_before_m),
                  _m(s.mean_after_m), s.max_after_zone, _m(s.max_after_m)] for s in suggested])
    return PlanResult(images, weak, zones, sugg, suggested, covs)


def _m(v: float) -> str:
    return "inf" if np.isinf(v) else f"{v:.2f}"


def _csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def register(subparsers) -> None:
    p = subparsers.add_parser("plan", help="coverage maps, weak spots and where to add gateways")
    p.add_argument("--site", required=True, help="site TOML")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--threshold-m", type=float, default=3.0,
                   help="list cells and zones whose expected error exceeds this (m)")
    p.add_argument("--cell-m", type=float, default=2.0, help="grid cell size (m)")
    p.add_argument("--radio", choices=("ble", "wifi"), default="ble")
    p.add_argument("--add", type=int, default=1, help="gateways to suggest per floor (greedy)")
    p.add_argument("--influx", default=None, help="also write the coverage measurement here (v1)")
    p.add_argument("--db", default="mallsense", help="database for --influx")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from gateway.site import load_site

    site = load_site(args.site)
    res = run_plan(site, args.out, threshold_m=args.threshold_m, cell_m=args.cell_m,
                   radio=args.radio, add=args.add)
    for s in res.suggested:
        print(f"{s.floor}: add a gateway at x={s.x:.1f} y={s.y:.1f} (z {s.z:.1f} m): "
              f"{s.worst_zone} {s.worst_before_m:.1f} -> {s.worst_after_m:.1f} m, "
              f"floor mean {s.mean_before_m:.1f} -> {s.mean_after_m:.1f} m")
    if args.influx:
        from analytics.sink import InfluxSink, V1HttpTransport

        sink = InfluxSink(V1HttpTransport(args.influx, args.db))
        sink.write(coverage_points(site, time.time(), cell_m=args.cell_m, radio=args.radio))
        sink.close()
    print(args.out)
    return 0
