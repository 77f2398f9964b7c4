"""Agents stay in walkable zones, never walk through walls; staff and fixed devices stay put."""
from __future__ import annotations

import itertools
from collections import defaultdict

import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, Polygon
from shapely.ops import unary_union

from .conftest import read_csv

WALKABLE = ("store", "corridor", "entrance", "escalator", "lift", "outside")
OPEN_ONTO = ("corridor", "entrance")  # a store's door is an edge shared with one of these


def _floor_geometry(site):
    """Per floor: walkable union and walls, built here from the site polygons directly."""
    out = {}
    for f in site.floors:
        zones = [z for z in site.zones_on(f.id) if z.kind in WALKABLE]
        polys = {z.id: Polygon(z.polygon) for z in zones}
        union = unary_union(list(polys.values())).buffer(1e-6)
        walls = []
        for z in zones:
            if z.kind not in ("store", "outside"):
                continue
            openings = [polys[o.id].boundary for o in zones
                        if (o.kind in OPEN_ONTO if z.kind == "store" else
                            o.kind in ("entrance", "outside")) and o.id != z.id]
            wall = polys[z.id].boundary
            if openings:
                shared = wall.intersection(unary_union(openings))
                wall = wall.difference(shared.buffer(1e-6))
            walls.append(wall)
        walls = unary_union(walls)
        shapely.prepare(union)
        shapely.prepare(walls)
        out[f.id] = (union, walls)
    return out


@pytest.fixture(scope="module")
def positions(frames_run):
    rows = read_csv(frames_run.truth_dir / "positions.csv")
    assert rows
    return rows


def test_every_position_in_a_walkable_zone(site, positions):
    geo = _floor_geometry(site)
    by_floor = defaultdict(list)
    for r in positions:
        by_floor[r["floor"]].append((float(r["x"]), float(r["y"])))
    for fid, pts in by_floor.items():
        xy = np.array(pts)
        inside = shapely.contains_xy(geo[fid][0], xy[:, 0], xy[:, 1])
        assert inside.all(), f"{(~inside).sum()} positions outside walkable zones on {fid}"


def test_zone_column_names_the_zone_containing_the_point(site, positions):
    polys = {z.id: Polygon(z.polygon).buffer(0.5) for z in site.zones}
    sample = positions[:: max(1, len(positions) // 3000)]
    for r in sample:
        assert r["zone"], r
        assert polys[r["zone"]].contains(shapely.Point(float(r["x"]), float(r["y"])))
        assert site.zone(r["zone"]).floor == r["floor"]


def test_consecutive_positions_never_cross_a_wall(site, positions):
    geo = _floor_geometry(site)
    track = defaultdict(list)
    for r in positions:
        track[r["device"]].append((int(r["t"]), r["floor"], float(r["x"]), float(r["y"])))
    segs = defaultdict(list)
    for pts in track.values():
        for (t0, f0, x0, y0), (t1, f1, x1, y1) in zip(pts, pts[1:]):
            if t1 == t0 + 1 and f0 == f1 and (x0, y0) != (x1, y1):
                segs[f0].append(((x0, y0), (x1, y1)))
    n = 0
    for fid, ss in segs.items():
        union, walls = geo[fid]
        lines = shapely.linestrings(np.array(ss))
        assert shapely.covers(union, lines).all()
        crossing = shapely.intersects(lines, walls)
        assert not crossing.any(), [LineString(s).wkt for s, c in zip(ss, crossing) if c][:3]
        n += len(ss)
    assert n > 1000


def test_walking_speed_is_human(positions):
    track = defaultdict(list)
    for r in positions:
        track[r["device"]].append((int(r["t"]), r["floor"], float(r["x"]), float(r["y"])))
    steps = []
    for pts in track.values():
        for (t0, f0, x0, y0), (t1, f1, x1, y1) in zip(pts, pts[1:]):
            if t1 == t0 + 1 and f0 == f1:
                steps.append(np.hypot(x1 - x0, y1 - y0))
    steps = np.array(steps)
    assert steps.max() <= 1.6 + 1e-6
    walking = steps[steps > 0.9]
    assert 1.0 < np.median(walking) < 1.45


def test_wall_model_catches_a_walk_through_a_wall(site):
    """The wall set used above does flag a segment between two neighbouring stores."""
    geo = _floor_geometry(site)
    stores = [z for z in site.zones if z.kind == "store"]
    pairs = [(a, b) for a in stores for b in stores if a.id < b.id and a.floor == b.floor
             and Polygon(a.polygon).touches(Polygon(b.polygon))
             and Polygon(a.polygon).intersection(Polygon(b.polygon)).length > 1]
    assert pairs
    a, b = pairs[0]
    seg = LineString([Polygon(a.polygon).centroid, Polygon(b.polygon).centroid])
    assert seg.intersects(geo[a.floor][1])


def test_staff_stay_in_their_store_and_fixed_devices_never_move(frames_run, positions, site):
    roles = {r["devices"]: r for r in read_csv(frames_run.truth_dir / "roles.csv")}
    seen = defaultdict(set)
    for r in positions:
        role = roles[r["device"]]
        if role["role"] == "staff":
            assert r["zone"] == role["home"], r
        elif role["role"] == "fixed":
            seen[r["device"]].add((r["x"], r["y"], r["floor"]))
        elif role["role"] == "passerby":
            assert site.zone(r["zone"]).kind == "outside", r
    assert seen and all(len(v) == 1 for v in seen.values())
    kinds = {r["kind"] for r in roles.values() if r["role"] == "fixed"}
    assert {"pos", "beacon", "signage"} <= kinds


def test_visits_and_journeys_are_consistent(frames_run, site):
    visits = read_csv(frames_run.truth_dir / "visits.csv")
    journeys = read_csv(frames_run.truth_dir / "journeys.csv")
    assert visits and journeys
    entrances = {z.id for z in site.zones if z.kind == "entrance"}
    for v in visits:
        assert site.zone(v["zone"]).kind == "store"
        assert float(v["enter"]) < float(v["exit"])
    for j in journeys:
        assert j["entrance"] in entrances and j["exit_entrance"] in entrances
        assert float(j["entry"]) < float(j["exit"])
        assert set(j["floors"].split(";")) <= {f.id for f in site.floors}


def test_floor_changes_follow_the_positions(frames_run, site, positions):
    """floor_changes.csv: each change is where the person's positions change floor, the
    changes of one person chain (to -> next from), and all are floors of the journey."""
    changes = read_csv(frames_run.truth_dir / "floor_changes.csv")
    journeys = {j["person"]: j for j in read_csv(frames_run.truth_dir / "journeys.csv")}
    roles = {r["person"]: r for r in read_csv(frames_run.truth_dir / "roles.csv")}
    floor_at = {(r["device"], int(r["t"])): r["floor"] for r in positions}
    by_person = defaultdict(list)
    for c in changes:
        by_person[c["person"]].append(c)
    checked = 0
    for p, cs in by_person.items():
        assert roles[p]["role"] == "shopper"
        assert {c["from"] for c in cs} | {c["to"] for c in cs} <= set(journeys[p]["floors"].split(";"))
        for a, b in itertools.pairwise(cs):
            assert a["to"] == b["from"] and float(a["t"]) <= float(b["t"])
        dev = roles[p]["devices"].split(";")[0]
        for c in cs:
            assert c["from"] != c["to"]
            if c["via"]:
                assert site.zone(c["via"]).kind in ("escalator", "lift")
                assert site.zone(c["via"]).floor == c["from"]
            t = float(c["t"])
            before = [floor_at.get((dev, s)) for s in range(int(t) - 40, int(t) - 1)]
            after = [floor_at.get((dev, s)) for s in range(int(t) + 1, int(t) + 3)]
            before = [f for f in before if f is not None]
            after = [f for f in after if f is not None]
            if before and after:
                assert c["from"] in before and after[-1] == c["to"], (c, before, after)
                checked += 1
    assert checked >= 3, checked


def test_positions_inside_a_visit_are_in_that_store(frames_run, positions):
    visits = read_csv(frames_run.truth_dir / "visits.csv")
    where = {(r["device"], int(r["t"])): r["zone"] for r in positions}
    checked = 0
    for v in visits:
        for t in range(int(float(v["enter"])) + 2, int(float(v["exit"])) - 1, 7):
            z = where.get((v["device"], t))
            if z is not None:
                assert z == v["zone"]
                checked += 1
    assert checked > 100


def test_every_planned_path_segment_avoids_walls(site):
    """All knot-to-knot legs of every agent's whole plan (not just the simulated minute)."""
    from firmware_sim.crowd import plan
    from firmware_sim.walk import SiteGeometry

    from .conftest import small_config

    geo = SiteGeometry(site)
    crowd = plan(geo, small_config(concurrent=200), np.random.default_rng(9))
    same = np.ones(len(crowd.kt) - 1, bool)
    same[crowd.offsets[1:-1] - 1] = False  # no leg from one agent to the next
    a = np.arange(len(crowd.kt) - 1)[same & (crowd.kf[:-1] == crowd.kf[1:])]
    walls_by_floor = _floor_geometry(site)
    n = 0
    for fi, fid in enumerate(geo.floor_ids):
        m = a[crowd.kf[a] == fi]
        xy0 = np.column_stack([crowd.kx[m], crowd.ky[m]])
        xy1 = np.column_stack([crowd.kx[m + 1], crowd.ky[m + 1]])
        moving = (xy0 != xy1).any(axis=1)
        lines = shapely.linestrings(np.stack([xy0[moving], xy1[moving]], axis=1))
        union, walls = walls_by_floor[fid]
        assert shapely.covers(union, lines).all()
        assert not shapely.intersects(lines, walls).any()
        n += len(lines)
    assert n > 20000
