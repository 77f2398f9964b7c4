"""Validation rules about floors, shafts and gateway placement (the rest: test_site_validate)."""
from __future__ import annotations

from gateway.site import parse_site
from tests.site.tiny import TINY, broken, line_of, one, problems

LIFT_L1 = 'id = "lift-1-L1"\nfloor = "L1"\nkind = "lift"\nshaft = "lift-1"\nconnects = ["L1", "L2"]'
LIFT_L2 = 'id = "lift-1-L2"\nfloor = "L2"\nkind = "lift"\nshaft = "lift-1"\nconnects = ["L1", "L2"]'


def test_duplicate_floor_level():
    text = broken(("level = 1", "level = 0"))
    p = one(text, "floors[1].level")
    assert "level 0 is also used by floor 'L1'" in p.why and p.line == line_of(text, "level = 0", 1)


def test_elevation_must_rise_with_level():
    text = broken(("elevation_m = 5.0", "elevation_m = -5.0"))
    p = one(text, "floors[1].elevation_m")
    assert "not above floor 'L1'" in p.why and p.line == line_of(text, "elevation_m = -5.0")


def test_floor_height_in_centimetres():
    text = broken(('id = "L2"\nlevel = 1\nelevation_m = 5.0\nheight_m = 5.0',
                   'id = "L2"\nlevel = 1\nelevation_m = 5.0\nheight_m = 500.0'))
    p = one(text, "floors[1].height_m")
    assert "cm or mm" in p.why and p.line == line_of(text, "height_m = 500.0")


def test_no_floors_at_all():
    head = TINY.split("[[floors]]")[0]
    text = head + '[[zones]]\nid = "e"\nfloor = "G"\nkind = "entrance"\n' \
                  'polygon = [[0, 0], [1, 0], [1, 1], [0, 1]]\n'
    keys = {p.key: p for p in problems(text)}
    assert "at least one" in keys["floors"].why
    assert "unknown floor 'G'" in keys["zones[0].floor"].why


def test_connects_names_an_unknown_floor():
    text = broken((LIFT_L1, LIFT_L1.replace('["L1", "L2"]', '["L1", "L2", "L7"]')),
                  (LIFT_L2, LIFT_L2.replace('["L1", "L2"]', '["L1", "L2", "L7"]')))
    found = [p for p in problems(text) if p.key == "zones[4].connects"]
    assert any("unknown floor(s) L7" in p.why for p in found)
    assert found[0].line == line_of(text, 'connects = ["L1", "L2", "L7"]')


def test_two_landings_on_one_floor_and_none_on_another():
    text = broken((LIFT_L1, LIFT_L1.replace('floor = "L1"', 'floor = "L2"')))
    keys = [(p.key, p.why) for p in problems(text)]
    assert any(k == "zones[6].shaft" and "already has a landing on floor 'L2'" in w
               for k, w in keys)
    assert any(k == "zones[4].shaft" and "no landing zone on L1" in w for k, w in keys)


def test_connects_order_is_free():
    text = broken((LIFT_L1, LIFT_L1.replace('["L1", "L2"]', '["L2", "L1"]')))
    assert parse_site(text).zone("lift-1-L1").connects == ("L2", "L1")


def test_zone_floor_not_in_its_connects():
    text = broken(('floor = "L2"\nkind = "corridor"',
                   'floor = "L2"\nkind = "escalator"\nshaft = "esc"\nconnects = ["L1", "L3"]'))
    found = [p for p in problems(text) if p.key == "zones[5].connects"]
    assert any("on floor 'L2' but connects does not include it" in p.why for p in found)
    assert any("unknown floor(s) L3" in p.why for p in found)
    assert all(p.line == line_of(text, 'connects = ["L1", "L3"]') for p in found)


def test_shaft_landings_disagree():
    text = broken((LIFT_L2, LIFT_L2.replace('kind = "lift"', 'kind = "escalator"')))
    p = one(text, "zones[6].connects")
    assert "landings of shaft 'lift-1' disagree" in p.why


def test_connects_and_shaft_only_on_vertical_zones():
    text = broken(('tenant = "Shop A"', 'tenant = "Shop A"\nconnects = ["L1", "L2"]\nshaft = "s"'))
    keys = {p.key: p for p in problems(text)}
    assert "only escalator and lift" in keys["zones[1].connects"].why
    assert "only escalator and lift" in keys["zones[1].shaft"].why


def test_lift_without_shaft_is_missing_a_required_key():
    text = broken((LIFT_L1, LIFT_L1.replace('shaft = "lift-1"\n', '')))
    p = one(text, "zones[4].shaft")
    assert p.why == "missing required key"


def test_gateway_outside_its_floor():
    text = broken(("x = 30.0", "x = 300.0"))
    p = one(text, "gateways[1].x")
    assert "outside the outline of floor 'L2'" in p.why and p.line == line_of(text, "x = 300.0")


def test_facade_gateway_just_outside_outline_is_accepted():
    site = parse_site(broken(("y = 10.0\nz = 3.5\nradios = [\"ble\"]",
                              "y = -0.8\nz = 3.5\nradios = [\"ble\"]")))
    assert site.gateway("gw-2").y == -0.8


def test_unsupported_schema_version():
    text = broken(("schema = 1", "schema = 2"))
    p = one(text, "schema")
    assert "unsupported schema version 2" in p.why and p.line == 1
