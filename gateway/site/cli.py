"""`mallsense site check FILE` and `mallsense site draw FILE --out DIR`."""
from __future__ import annotations

import argparse
import sys
from collections import Counter

from gateway.site.errors import SiteError
from gateway.site.load import load_site
from gateway.site.model import ZONE_KINDS, Site

EXIT_PROBLEMS = 2


def summary(site: Site) -> str:
    """Human-readable summary: floors, zones by kind, gateways and density per floor."""
    lines = [f"site {site.id}: {site.name} ({site.timezone})", f"floors: {len(site.floors)}"]
    total_area = 0.0
    for f in site.floors:
        area = site.walkable_area_m2(f.id)
        total_area += area
        n = len(site.gateways_on(f.id))
        density = 1000.0 * n / area if area > 0 else 0.0
        lines.append(
            f"  {f.id:<4} level {f.level:>2}  elevation {f.elevation_m:6.1f} m  "
            f"height {f.height_m:4.1f} m  zones {len(site.zones_on(f.id)):3d}  "
            f"walkable {area:8,.0f} m^2  gateways {n:3d}  "
            f"density {density:.2f} per 1000 m^2")
    kinds = Counter(z.kind for z in site.zones)
    lines.append(f"zones: {len(site.zones)} ("
                 + ", ".join(f"{k} {kinds[k]}" for k in ZONE_KINDS if kinds[k]) + ")")
    radios = Counter(r for g in site.gateways for r in g.radios)
    density = 1000.0 * len(site.gateways) / total_area if total_area > 0 else 0.0
    lines.append(f"gateways: {len(site.gateways)} ("
                 + ", ".join(f"{r} {radios[r]}" for r in sorted(radios)) + ")")
    lines.append(f"walkable area: {total_area:,.0f} m^2; gateway density "
                 f"{density:.2f} per 1000 m^2")
    return "\n".join(lines)


def _load(path: str) -> Site | None:
    try:
        return load_site(path)
    except SiteError as exc:
        print(f"{path}: {len(exc.problems)} problem(s)", file=sys.stderr)
        print(str(exc), file=sys.stderr)
        return None


def cmd_check(args: argparse.Namespace) -> int:
    site = _load(args.file)
    if site is None:
        return EXIT_PROBLEMS
    print(summary(site))
    return 0


def cmd_draw(args: argparse.Namespace) -> int:
    site = _load(args.file)
    if site is None:
        return EXIT_PROBLEMS
    from gateway.site.draw import draw_site  # matplotlib only when drawing

    for path in draw_site(site, args.out, dpi=args.dpi):
        print(path)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("site", help="check or draw a site (mall) TOML file",
                              description="Site model tools; schema in docs/site-model.md.")
    sub = p.add_subparsers(dest="site_command", metavar="ACTION")
    sub.required = True
    check = sub.add_parser("check", help="validate a site file and print a summary "
                                         "(exit 2 on problems)")
    check.add_argument("file", help="site TOML file")
    check.set_defaults(func=cmd_check)
    draw = sub.add_parser("draw", help="draw one floor-plan PNG per floor")
    draw.add_argument("file", help="site TOML file")
    draw.add_argument("--out", required=True, help="output directory (created)")
    draw.add_argument("--dpi", type=int, default=110, help="image resolution (default 110)")
    draw.set_defaults(func=cmd_draw)
