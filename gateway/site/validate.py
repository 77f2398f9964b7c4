"""Cross-reference, geometry and plausibility checks on the typed records.

Runs after `gateway.site.schema` and reports to the same Reporter. Geometry uses shapely.
Tolerances: overlaps and spill-over outside an outline smaller than AREA_TOL_M2 are drawing
noise, not errors (shared edges between adjacent zones are how doors are drawn).
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import shapely
from shapely.geometry import LinearRing, Point
from shapely.geometry import Polygon as ShapelyPolygon

from gateway.site.model import Floor, Gateway, Polygon, Zone
from gateway.site.schema import Reporter

AREA_TOL_M2 = 0.01
MAX_EXTENT_M = 2000.0  # a mall wider than 2 km means the file is in cm or mm
MIN_STORE_M2 = 1.0  # a store smaller than 1 m^2 means the file is in km (or a typo)
GATEWAY_OUTSIDE_TOL_M = 1.0  # facade-mounted units may sit just outside the outline


def check_polygon(rep: Reporter, path: tuple, poly: Polygon, item_id: str | None) -> bool:
    """Report a polygon that is not closed (fewer than 3 distinct vertices), has zero area,
    self-intersects or is far too large. Returns True when it is usable for geometry."""
    distinct = set(poly)
    if len(distinct) < 3:
        rep.add(path, f"polygon is not closed: it has {len(distinct)} distinct vertices, "
                      "needs at least 3", item_id)
        return False
    xy = np.asarray(poly, dtype=float)
    d = xy - xy[0]
    if np.abs(d[:, 0, None] * d[None, :, 1] - d[:, 1, None] * d[None, :, 0]).max() <= 1e-9:
        rep.add(path, "polygon is degenerate: its area is zero (all vertices on one line)",
                item_id)
        return False
    if not LinearRing(poly).is_simple:
        rep.add(path, "polygon is self-intersecting (edges cross or touch)", item_id)
        return False
    shape = ShapelyPolygon(poly)
    minx, miny, maxx, maxy = shape.bounds
    extent = max(maxx - minx, maxy - miny)
    if extent > MAX_EXTENT_M:
        rep.add(path, f"polygon is {extent:,.0f} m across; coordinates look like cm or mm, "
                      "expected metres", item_id)
        return False
    return True


def _dupes(rep: Reporter, name: str, items: list[tuple[int, object]]) -> None:
    first: dict[str, int] = {}
    for i, item in items:
        if item.id in first:
            rep.add((name, i, "id"), f"duplicate id {item.id!r} (first used by "
                                     f"{name}[{first[item.id]}])", item.id)
        else:
            first[item.id] = i


def validate(rep: Reporter, floors: list[tuple[int, Floor]], zones: list[tuple[int, Zone]],
             gateways: list[tuple[int, Gateway]]) -> None:
    _dupes(rep, "floors", floors)
    _dupes(rep, "zones", zones)
    _dupes(rep, "gateways", gateways)

    if not floors and not any(p.key.startswith("floors") for p in rep.problems):
        rep.add(("floors",), "no floors: at least one [[floors]] table is required")
    levels: dict[int, str] = {}
    outlines: dict[str, ShapelyPolygon] = {}
    floor_by_id = {f.id: f for _, f in floors}
    for i, f in floors:
        if f.level in levels:
            rep.add(("floors", i, "level"), f"level {f.level} is also used by floor "
                                            f"{levels[f.level]!r}", f.id)
        levels.setdefault(f.level, f.id)
        if check_polygon(rep, ("floors", i, "outline"), f.outline, f.id):
            outlines.setdefault(f.id, ShapelyPolygon(f.outline))
    by_level = sorted(floor_by_id.values(), key=lambda f: f.level)
    for lo, hi in zip(by_level, by_level[1:]):
        if hi.elevation_m < lo.elevation_m + 2.0:
            i = next(i for i, f in floors if f is hi)
            rep.add(("floors", i, "elevation_m"), f"floor {hi.id!r} (level {hi.level}) is at "
                    f"{hi.elevation_m:g} m, not above floor {lo.id!r} at {lo.elevation_m:g} m",
                    hi.id)

    shapes: dict[str, list[tuple[int, Zone, ShapelyPolygon]]] = defaultdict(list)
    for i, z in zones:
        if z.floor not in floor_by_id:
            rep.add(("zones", i, "floor"), f"unknown floor {z.floor!r} (floors: "
                                           f"{', '.join(sorted(floor_by_id))})", z.id)
        if not check_polygon(rep, ("zones", i, "polygon"), z.polygon, z.id):
            continue
        shape = ShapelyPolygon(z.polygon)
        if z.kind == "store" and shape.area < MIN_STORE_M2:
            rep.add(("zones", i, "polygon"), f"store area is {shape.area:.3g} m^2 (< 1 m^2); "
                    "coordinates look like the wrong unit, expected metres", z.id)
        outline = outlines.get(z.floor)
        if outline is not None:
            spill = shape.difference(outline).area
            if spill > AREA_TOL_M2:
                rep.add(("zones", i, "polygon"), f"zone lies {spill:.1f} m^2 outside the "
                                                 f"outline of floor {z.floor!r}", z.id)
        shapes[z.floor].append((i, z, shape))

    for floor_id, items in shapes.items():
        tree = shapely.STRtree([s for _, _, s in items])
        for a, (i, zi, si) in enumerate(items):
            for b in tree.query(si):
                b = int(b)
                if b <= a:
                    continue
                j, zj, sj = items[b]
                if "store" not in (zi.kind, zj.kind):
                    continue
                overlap = si.intersection(sj).area
                if overlap > AREA_TOL_M2:
                    rep.add(("zones", j, "polygon"), f"{zj.kind} {zj.id!r} overlaps {zi.kind} "
                            f"{zi.id!r} (zones[{i}]) by {overlap:.1f} m^2 on floor "
                            f"{floor_id!r}", zj.id)

    if zones and not any(z.kind == "entrance" for _, z in zones):
        rep.add(("zones",), "no zone of kind 'entrance': the mall needs at least one")
    elif not zones and floors:
        rep.add(("zones",), "no zones: at least one entrance and the walkable areas are needed")

    _check_vertical(rep, zones, floor_by_id)

    for i, g in gateways:
        floor = floor_by_id.get(g.floor)
        if floor is None:
            rep.add(("gateways", i, "floor"), f"unknown floor {g.floor!r} (floors: "
                                              f"{', '.join(sorted(floor_by_id))})", g.id)
            continue
        if g.z > floor.height_m:
            rep.add(("gateways", i, "z"), f"{g.z:g} m is above floor {floor.id!r}'s height "
                    f"({floor.height_m:g} m); z is the height above the gateway's own floor",
                    g.id)
        outline = outlines.get(g.floor)
        if outline is not None:
            d = outline.distance(Point(g.x, g.y))
            if d > GATEWAY_OUTSIDE_TOL_M:
                rep.add(("gateways", i, "x"), f"gateway at ({g.x:g}, {g.y:g}) is {d:.1f} m "
                        f"outside the outline of floor {g.floor!r}", g.id)


def _check_vertical(rep: Reporter, zones: list[tuple[int, Zone]],
                    floor_by_id: dict[str, Floor]) -> None:
    """Escalators and lifts: connects names >= 2 known floors including the zone's own, and
    the shaft has exactly one landing on every floor it connects."""
    shafts: dict[str, list[tuple[int, Zone]]] = defaultdict(list)
    for i, z in zones:
        if z.connects is None or z.shaft is None:
            continue
        shafts[z.shaft].append((i, z))
        distinct = set(z.connects)
        if len(distinct) < 2:
            rep.add(("zones", i, "connects"), f"{z.kind} reaches only one floor "
                    f"({', '.join(sorted(distinct)) or 'none'}); it must connect at least 2",
                    z.id)
        unknown = [f for f in z.connects if f not in floor_by_id]
        if unknown:
            rep.add(("zones", i, "connects"), f"unknown floor(s) {', '.join(unknown)}", z.id)
        if len(distinct) != len(z.connects):
            rep.add(("zones", i, "connects"), "a floor is listed twice", z.id)
        if z.floor not in distinct:
            rep.add(("zones", i, "connects"), f"the zone is on floor {z.floor!r} but connects "
                    f"does not include it", z.id)
    for shaft, landings in shafts.items():
        i0, z0 = landings[0]
        on: dict[str, int] = {}
        for i, z in landings:
            if set(z.connects) != set(z0.connects) or z.kind != z0.kind:
                rep.add(("zones", i, "connects"), f"landings of shaft {shaft!r} disagree: "
                        f"{z.kind} connects {list(z.connects)}, zones[{i0}] is a {z0.kind} "
                        f"connecting {list(z0.connects)}", z.id)
            if z.floor in on:
                rep.add(("zones", i, "shaft"), f"shaft {shaft!r} already has a landing on "
                        f"floor {z.floor!r} (zones[{on[z.floor]}])", z.id)
            on.setdefault(z.floor, i)
        missing = [f for f in z0.connects if f in floor_by_id and f not in on]
        if missing:
            rep.add(("zones", i0, "shaft"), f"{z0.kind} shaft {shaft!r} connects "
                    f"{', '.join(z0.connects)} but has no landing zone on "
                    f"{', '.join(missing)}", z0.id)
        if len(on) < 2 and len(set(z0.connects)) >= 2 and not missing:
            rep.add(("zones", i0, "shaft"), f"{z0.kind} shaft {shaft!r} reaches only one "
                    "floor", z0.id)
