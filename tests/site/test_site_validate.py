"""One test per validation rule: a small broken file, the exact key path and line reported."""
from __future__ import annotations

import pytest

from gateway.errors import GatewayError
from gateway.site import Problem, SiteError, parse_site
from tests.site.tiny import TINY, broken, line_of, one, problems


def test_tiny_site_is_valid_and_closing_vertex_is_optional():
    site = parse_site(TINY, file="tiny.toml")
    assert [f.id for f in site.floors] == ["L1", "L2"]
    # shop-b repeats its first vertex at the end; shop-a does not: both become 4 vertices.
    assert len(site.zone("shop-a").polygon) == 4
    assert len(site.zone("shop-b").polygon) == 4
    assert site.zone("shop-b").popularity == 2.0
    assert site.zone("shop-a").popularity == 1.0
    assert site.zone("shop-a").name == "Shop A"  # name defaults to the tenant
    assert site.zone("lift-1-L1").connects == ("L1", "L2")
    assert site.gateway("gw-2").p0_offset_db == -2.0
    assert site.gateway("gw-1").exponent is None
    # radio keys left out take the built-in defaults
    assert site.radio["ble"].p0_dbm == -59.0 and site.radio["wifi"].p0_dbm == -47.0


def test_site_error_is_a_gateway_error_and_formats_file_line_key_why():
    err = SiteError([Problem("a.toml", 7, "zones[1].kind", "bad"),
                     Problem("a.toml", None, "zones", "no entrance")])
    assert isinstance(err, GatewayError)
    assert str(err).splitlines() == ["a.toml:7: zones[1].kind: bad", "a.toml: zones: no entrance"]


def test_duplicate_zone_id():
    text = broken(('id = "shop-b"', 'id = "shop-a"'))
    p = one(text, "zones[2].id")
    assert "duplicate" in p.why and "zones[1]" in p.why
    assert p.line == line_of(text, 'id = "shop-a"', nth=1)


def test_duplicate_gateway_and_floor_ids():
    text = broken(('id = "gw-2"', 'id = "gw-1"'), ('id = "L2"', 'id = "L1"'))
    probs = problems(text)
    keys = {p.key: p for p in probs}
    assert keys["gateways[1].id"].line == line_of(text, 'id = "gw-1"', nth=1)
    assert keys["floors[1].id"].line == line_of(text, 'id = "L1"', nth=1)


def test_zone_on_unknown_floor():
    text = broken(('id = "shop-b"\nfloor = "L1"', 'id = "shop-b"\nfloor = "L9"'))
    p = one(text, "zones[2].floor")
    assert "unknown floor 'L9'" in p.why
    assert p.line == line_of(text, 'floor = "L9"')


def test_gateway_on_unknown_floor():
    text = broken(('id = "gw-2"\nfloor = "L2"', 'id = "gw-2"\nfloor = "B7"'))
    p = one(text, "gateways[1].floor")
    assert "B7" in p.why and p.line == line_of(text, 'floor = "B7"')


def test_polygon_not_closed_fewer_than_three_distinct_vertices():
    text = broken(("[[0, 12], [20, 12], [20, 20], [0, 20]]", "[[0, 12], [20, 12], [0, 12]]"))
    p = one(text, "zones[1].polygon")
    assert "not closed" in p.why and "2 distinct" in p.why
    assert p.line == line_of(text, "[[0, 12], [20, 12], [0, 12]]")


def test_degenerate_zero_area_polygon():
    text = broken(("[[0, 12], [20, 12], [20, 20], [0, 20]]", "[[0, 12], [10, 12], [20, 12]]"))
    p = one(text, "zones[1].polygon")
    assert "degenerate" in p.why and "zero" in p.why


def test_self_intersecting_polygon():
    bowtie = "[[0, 12], [20, 20], [20, 12], [0, 20]]"
    text = broken(("[[0, 12], [20, 12], [20, 20], [0, 20]]", bowtie))
    p = one(text, "zones[1].polygon")
    assert "self-intersecting" in p.why and p.line == line_of(text, bowtie)


def test_stores_overlapping_on_one_floor():
    moved = "[[15, 12], [40, 12], [40, 20], [15, 20]]"
    text = broken(("[[20, 12], [40, 12], [40, 20], [20, 20], [20, 12]]", moved))
    p = one(text, "zones[2].polygon")
    assert "overlaps store 'shop-a'" in p.why and "40.0 m^2" in p.why
    assert p.line == line_of(text, moved)


def test_stores_sharing_an_edge_do_not_overlap():
    # shop-a and shop-b share the edge x = 20: that is a wall, not an overlap
    assert parse_site(TINY).zone("shop-b").area_m2 == pytest.approx(160.0)


def test_zone_outside_floor_outline():
    outside = "[[20, 12], [45, 12], [45, 20], [20, 20]]"
    text = broken(("[[20, 12], [40, 12], [40, 20], [20, 20], [20, 12]]", outside))
    p = one(text, "zones[2].polygon")
    assert "outside the outline of floor 'L1'" in p.why and "40.0 m^2" in p.why


def test_no_entrance():
    text = broken(('kind = "entrance"', 'kind = "corridor"'))
    p = one(text, "zones")
    assert "entrance" in p.why
    assert p.line == line_of(text, "[[zones]]")


def test_lift_reaching_only_one_floor():
    text = broken(('id = "lift-1-L1"\nfloor = "L1"\nkind = "lift"\nshaft = "lift-1"\n'
                   'connects = ["L1", "L2"]',
                   'id = "lift-1-L1"\nfloor = "L1"\nkind = "lift"\nshaft = "lift-1"\n'
                   'connects = ["L1"]'))
    probs = problems(text)
    only = [p for p in probs if p.key == "zones[4].connects" and "only one floor" in p.why]
    assert len(only) == 1 and only[0].line == line_of(text, 'connects = ["L1"]')


def test_escalator_shaft_without_landing_on_a_connected_floor():
    text = broken(('id = "lift-1-L2"\nfloor = "L2"\nkind = "lift"\nshaft = "lift-1"',
                   'id = "lift-1-L2"\nfloor = "L2"\nkind = "lift"\nshaft = "lift-9"'),
                  ('connects = ["L1", "L2"]\npolygon = [[30, 4], [34, 4], [34, 8], [30, 8]]'
                   '\n\n[[zones]]\nid = "corridor-2"',
                   'connects = ["L1", "L2"]\npolygon = [[30, 4], [34, 4], [34, 8], [30, 8]]'
                   '\n\n[[zones]]\nid = "corridor-2"'))
    keys = {p.key: p for p in problems(text)}
    assert "no landing zone on L2" in keys["zones[4].shaft"].why
    assert keys["zones[4].shaft"].line == line_of(text, 'shaft = "lift-1"')
    assert "no landing zone on L1" in keys["zones[6].shaft"].why


def test_floor_outline_in_centimetres():
    cm = "[[0, 0], [4000, 0], [4000, 2000], [0, 2000]]"
    text = broken(("[[0, 0], [40, 0], [40, 20], [0, 20]]\n\n[[floors]]\nid = \"L2\"",
                   cm + "\n\n[[floors]]\nid = \"L2\""))
    p = one(text, "floors[0].outline")
    assert "4,000 m across" in p.why and "cm or mm" in p.why
    assert p.line == line_of(text, cm)


def test_gateway_z_in_centimetres():
    text = broken(('y = 10.0\nz = 3.5\nradios = ["ble", "wifi"]',
                   'y = 10.0\nz = 350\nradios = ["ble", "wifi"]'))
    p = one(text, "gateways[0].z")
    assert "implausible" in p.why and p.line == line_of(text, "z = 350")


def test_gateway_above_its_floor_height():
    text = broken(('y = 10.0\nz = 3.5\nradios = ["ble", "wifi"]',
                   'y = 10.0\nz = 8.5\nradios = ["ble", "wifi"]'))
    p = one(text, "gateways[0].z")
    assert "above floor 'L1'" in p.why


def test_store_smaller_than_one_square_metre():
    km = "[[0.0, 12.0], [0.02, 12.0], [0.02, 12.008], [0.0, 12.008]]"
    text = broken(("[[0, 12], [20, 12], [20, 20], [0, 20]]", km))
    p = one(text, "zones[1].polygon")
    assert "< 1 m^2" in p.why and "wrong unit" in p.why and p.line == line_of(text, km)


def test_unknown_key_names_its_path():
    text = broken(('tenant = "Shop A"', 'tenant = "Shop A"\ncolour = "red"'))
    p = one(text, "zones[1].colour")
    assert "unknown key" in p.why and p.line == line_of(text, "colour")


def test_wrong_type_names_its_path():
    text = broken(("x = 30.0", 'x = "30"'))
    p = one(text, "gateways[1].x")
    assert "expected a number, got string" in p.why and p.line == line_of(text, 'x = "30"')


def test_missing_required_key_points_at_the_table():
    text = broken(('id = "entrance-1"\nfloor = "L1"\nkind = "entrance"\n',
                   'id = "entrance-1"\nfloor = "L1"\n'))
    probs = problems(text)
    missing = [p for p in probs if p.key == "zones[3].kind"]
    assert missing and missing[0].why == "missing required key"
    assert missing[0].line == line_of(text, 'id = "entrance-1"') - 1  # its [[zones]] header


def test_unknown_zone_kind_and_bad_radio_list():
    text = broken(('kind = "entrance"', 'kind = "door"'), ('radios = ["ble"]', 'radios = ["lora"]'))
    keys = {p.key: p for p in problems(text)}
    assert "unknown zone kind 'door'" in keys["zones[3].kind"].why
    assert "lora" in keys["gateways[1].radios"].why


def test_unknown_timezone_and_radio_kind():
    text = broken(('timezone = "Europe/Berlin"', 'timezone = "Mars/Olympus"'),
                  ("[radio.ble]", "[radio.zigbee]"))
    keys = {p.key: p for p in problems(text)}
    assert keys["site.timezone"].line == line_of(text, "Mars/Olympus")
    assert keys["radio.zigbee"].line == line_of(text, "[radio.zigbee]")


def test_radio_value_out_of_range_names_the_key():
    text = broken(("p0_dbm = -59.0", "p0_dbm = 59.0"))
    p = one(text, "radio.ble.p0_dbm")
    assert p.line == line_of(text, "p0_dbm = 59.0")


def test_inline_tables_are_located_by_id():
    inline = ('schema = 1\nsite = { id = "x", timezone = "UTC" }\n'
              'floors = [\n  { id = "G", level = 0, elevation_m = 0.0, height_m = 5.0, '
              'outline = [[0, 0], [10, 0], [10, 10], [0, 10]] },\n]\n'
              'zones = [\n  { id = "door", floor = "G", kind = "entrance", '
              'polygon = [[0, 0], [2, 0], [2, 2], [0, 2]] },\n'
              '  { id = "shop", floor = "X", kind = "store", '
              'polygon = [[2, 0], [6, 0], [6, 4], [2, 4]] },\n]\n')
    p = one(inline, "zones[1].floor")
    assert p.line == line_of(inline, 'id = "shop"')


def test_unknown_top_level_table():
    text = TINY + "\n[extra]\nanswer = 42\n"
    p = one(text, "extra")
    assert "unknown top-level key" in p.why and p.line == line_of(text, "[extra]")


def test_toml_syntax_error_has_a_line():
    text = broken(('name = "Tiny Mall"', 'name = "Tiny Mall'))
    (p,) = problems(text)
    assert p.key == "<toml>" and p.line == line_of(text, 'name = "Tiny Mall')


def test_every_problem_is_listed_not_just_the_first():
    text = broken(
        ('id = "shop-b"', 'id = "shop-a"'),                                    # duplicate id
        ('timezone = "Europe/Berlin"', 'timezone = 1'),                        # wrong type
        ('kind = "entrance"', 'kind = "corridor"'),                            # no entrance
        ("x = 30.0", 'x = 30.0\nmounting = "pole"'),                           # unknown key
        ("[[0, 12], [20, 12], [20, 20], [0, 20]]", "[[0, 12], [20, 20], [20, 12], [0, 20]]"),
        ('y = 10.0\nz = 3.5\nradios = ["ble", "wifi"]', 'y = 10.0\nz = 350\nradios = ["ble"]'),
    )
    with pytest.raises(SiteError) as info:
        parse_site(text, file="multi.toml")
    keys = [p.key for p in info.value.problems]
    for key in ("zones[2].id", "site.timezone", "zones", "gateways[1].mounting",
                "zones[1].polygon", "gateways[0].z"):
        assert key in keys, (key, keys)
    lines = str(info.value).splitlines()
    assert len(lines) == len(info.value.problems) >= 6
    assert all(line.startswith("multi.toml:") for line in lines)
    assert f"multi.toml:{line_of(text, 'mounting')}: gateways[1].mounting: unknown key" in str(
        info.value)
