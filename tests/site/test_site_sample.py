"""The packaged sample mall: it loads, and it is realistic enough for the simulator and
positioning tests that build on it (counts, geometry, walkability, radio numbers)."""
from __future__ import annotations

import dataclasses
import statistics
from collections import defaultdict, deque

import numpy as np
import pytest
from shapely.geometry import Point
from shapely.geometry import Polygon as ShapelyPolygon

from gateway.site import Site, load_site, sample_site_path
from gateway.sites import make_sample

DOOR_M = 1.0  # a shared edge at least this long is a door


@pytest.fixture(scope="module")
def site() -> Site:
    return load_site(sample_site_path())


def _shape(z) -> ShapelyPolygon:
    return ShapelyPolygon(z.polygon)


def _shared_edge(a, b) -> float:
    return _shape(a).intersection(_shape(b)).length


def test_sample_path_is_packaged_toml():
    p = sample_site_path()
    assert p.name == "sample_mall.toml" and p.parent.name == "sites" and p.is_file()


def test_committed_toml_matches_its_generator():
    assert sample_site_path().read_text(encoding="utf-8") == make_sample.render()


def test_floors_levels_and_heights(site):
    assert [f.id for f in site.floors] == ["B1", "L1", "L2", "L3"]
    assert [f.level for f in site.floors] == [-1, 0, 1, 2]
    for lower, upper in zip(site.floors, site.floors[1:]):
        assert upper.elevation_m == pytest.approx(lower.elevation_m + lower.height_m)
    assert all(4.5 <= f.height_m <= 6.0 for f in site.floors)
    # footprint about 120 m x 70 m (L1 also holds the street strips)
    xs = [x for x, _ in site.floor("L2").outline]
    ys = [y for _, y in site.floor("L2").outline]
    assert (max(xs) - min(xs), max(ys) - min(ys)) == (120.0, 70.0)


def test_store_counts_and_anchors(site):
    stores = [z for z in site.zones if z.kind == "store"]
    assert len(stores) >= 60
    assert all(z.tenant and z.category for z in stores)
    assert len({z.tenant for z in stores}) >= 60
    median = statistics.median(z.area_m2 for z in stores)
    anchors = [z for z in stores if z.category in ("department", "grocery", "home")
               and z.area_m2 > 4 * median]
    assert {z.floor for z in anchors} == {"B1", "L1", "L2", "L3"}
    assert any(z.category == "grocery" and z.floor == "B1" for z in anchors)  # supermarket
    food_l3 = [z for z in site.zones_on("L3") if z.kind == "store" and z.category == "food"]
    assert len(food_l3) >= 10  # food court stalls plus restaurants
    assert any(z.kind == "corridor" and "Food court" in z.name for z in site.zones_on("L3"))


def test_atrium_stacked_on_l1_to_l3(site):
    atria = {z.floor: z for z in site.zones if z.kind == "atrium"}
    assert set(atria) == {"L1", "L2", "L3"}
    assert len({z.polygon for z in atria.values()}) == 1


def test_entrances_open_onto_street_or_metro(site):
    entrances = [z for z in site.zones if z.kind == "entrance"]
    assert len([z for z in entrances if z.floor == "L1"]) >= 2
    assert any(z.floor == "B1" and "Metro" in z.name for z in entrances)
    for e in entrances:
        out = [z for z in site.zones_on(e.floor) if z.kind == "outside"]
        corridors = [z for z in site.zones_on(e.floor) if z.kind == "corridor"]
        assert max(_shared_edge(e, o) for o in out) >= DOOR_M, e.id
        assert max(_shared_edge(e, c) for c in corridors) >= DOOR_M, e.id


def test_every_store_and_vertical_landing_has_a_door_to_a_corridor(site):
    for z in site.zones:
        if z.kind in ("store", "escalator", "lift"):
            corridors = [c for c in site.zones_on(z.floor) if c.kind == "corridor"]
            assert max(_shared_edge(z, c) for c in corridors) >= DOOR_M, z.id


def test_corridors_form_one_connected_network_per_floor(site):
    for f in site.floors:
        corridors = [z for z in site.zones_on(f.id) if z.kind == "corridor"]
        assert len(corridors) >= 4
        seen, todo = {corridors[0].id}, deque([corridors[0]])
        while todo:
            a = todo.popleft()
            for b in corridors:
                if b.id not in seen and _shared_edge(a, b) >= DOOR_M:
                    seen.add(b.id)
                    todo.append(b)
        assert seen == {c.id for c in corridors}, f.id


def test_zones_tile_without_overlap(site):
    for f in site.floors:
        zones = site.zones_on(f.id)
        total = sum(z.area_m2 for z in zones)
        assert total == pytest.approx(ShapelyPolygon(f.outline).area)  # no gaps, no overlaps


def test_escalators_and_lifts_reach_at_least_two_floors(site):
    shafts = defaultdict(list)
    for z in site.zones:
        if z.kind in ("escalator", "lift"):
            assert len(set(z.connects)) >= 2 and z.floor in z.connects
            shafts[z.shaft].append(z)
    assert {s for s in shafts if s.startswith("esc")} and {s for s in shafts if "lift" in s}
    for shaft, landings in shafts.items():
        assert sorted(z.floor for z in landings) == sorted(landings[0].connects), shaft
        assert [z.floor for z in site.shaft(shaft)] == [
            f.id for f in site.floors if f.id in landings[0].connects]
    # B1 (metro) is reachable by escalator and lift
    assert any("B1" in z.connects for z in site.zones if z.kind == "escalator")
    assert any("B1" in z.connects for z in site.zones if z.kind == "lift")


def test_gateways_count_height_and_placement(site):
    assert len(site.gateways) >= 48
    assert len({g.id for g in site.gateways}) == len(site.gateways)
    for f in site.floors:
        gws = site.gateways_on(f.id)
        assert len(gws) >= 12
        assert all(2.5 <= g.z <= f.height_m for g in gws)
    ceiling = [g for g in site.gateways if g.z >= 3.5]
    assert len(ceiling) >= 48
    # every corridor zone has a gateway within 15 m of its centroid
    for z in site.zones:
        if z.kind == "corridor":
            c = np.array(z.centroid)
            d = min(np.hypot(*(c - (g.x, g.y))) for g in site.gateways_on(z.floor))
            assert d <= 15.0, z.id
    # some gateways sit inside large stores
    big = [z for z in site.zones if z.kind == "store" and z.area_m2 > 1000]
    assert sum(_shape(z).contains(Point(g.x, g.y)) for z in big
               for g in site.gateways_on(z.floor)) >= 8


def test_each_gateway_is_inside_exactly_one_zone_not_on_a_wall(site):
    for g in site.gateways:
        inside = [z.id for z in site.zones_on(g.floor) if _shape(z).contains(Point(g.x, g.y))]
        assert len(inside) == 1, (g.id, inside)


def test_street_gateways_for_passers_by(site):
    street = [z for z in site.zones_on("L1") if z.kind == "outside"]
    on_street = [g for g in site.gateways_on("L1")
                 if any(_shape(z).contains(Point(g.x, g.y)) for z in street)]
    assert len(on_street) >= 2
    assert all("wifi" in g.radios and "ble" in g.radios for g in on_street)


def test_radio_defaults_are_realistic(site):
    ble, wifi = site.radio["ble"], site.radio["wifi"]
    assert ble.p0_dbm == -59.0 and 2.2 <= ble.exponent <= 2.5 and 5 <= ble.sigma_db <= 6
    assert 15 <= ble.floor_atten_db <= 20
    assert -50 <= wifi.p0_dbm <= -45 and 2.5 <= wifi.exponent <= 3.0
    assert -100 <= wifi.sensitivity_dbm <= -95
    assert any(g.p0_offset_db != 0.0 for g in site.gateways)
    assert any(g.exponent is not None for g in site.gateways)
    assert any(g.sensitivity_dbm is not None for g in site.gateways)


def test_gateway_xyz_is_absolute(site):
    xyz = site.gateway_xyz()
    assert xyz.shape == (len(site.gateways), 3) and xyz.dtype == float
    for k, g in enumerate(site.gateways):
        assert xyz[k, 2] == pytest.approx(site.floor(g.floor).elevation_m + g.z)
    assert xyz[:, 2].min() < 0 < xyz[:, 2].max()  # B1 below street level


def test_lookups_and_immutability(site):
    assert site.floor("L3").name.startswith("Second floor")
    assert site.zone("l1-entrance-s").kind == "entrance"
    assert site.gateway("gw-l1-13").floor == "L1"
    assert all(z.floor == "L2" for z in site.zones_on("L2"))
    assert len(site.gateways_on("L1")) == 14
    with pytest.raises(KeyError):
        site.zone("no-such-zone")
    assert isinstance(site.zones, tuple) and isinstance(site.zones[0].polygon, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        site.zones[0].kind = "store"  # type: ignore[misc]
    with pytest.raises(TypeError):
        site.radio["ble"] = site.radio["wifi"]  # type: ignore[index]
    assert load_site(sample_site_path()) == site
