"""A small valid site used by the validation tests, and helpers to break it on purpose."""
from __future__ import annotations

import pytest

from gateway.site import Problem, SiteError, parse_site

TINY = """\
schema = 1

[site]
id = "tiny"
name = "Tiny Mall"
timezone = "Europe/Berlin"

[radio.ble]
p0_dbm = -59.0

[[floors]]
id = "L1"
level = 0
elevation_m = 0.0
height_m = 5.0
outline = [[0, 0], [40, 0], [40, 20], [0, 20]]

[[floors]]
id = "L2"
level = 1
elevation_m = 5.0
height_m = 5.0
outline = [[0, 0], [40, 0], [40, 20], [0, 20]]

[[zones]]
id = "corridor-1"
floor = "L1"
kind = "corridor"
polygon = [[0, 8], [40, 8], [40, 12], [0, 12]]

[[zones]]
id = "shop-a"
floor = "L1"
kind = "store"
tenant = "Shop A"
category = "fashion"
polygon = [[0, 12], [20, 12], [20, 20], [0, 20]]

[[zones]]
id = "shop-b"
floor = "L1"
kind = "store"
tenant = "Shop B"
category = "food"
popularity = 2.0
polygon = [[20, 12], [40, 12], [40, 20], [20, 20], [20, 12]]

[[zones]]
id = "entrance-1"
floor = "L1"
kind = "entrance"
polygon = [[0, 0], [10, 0], [10, 8], [0, 8]]

[[zones]]
id = "lift-1-L1"
floor = "L1"
kind = "lift"
shaft = "lift-1"
connects = ["L1", "L2"]
polygon = [[30, 4], [34, 4], [34, 8], [30, 8]]

[[zones]]
id = "corridor-2"
floor = "L2"
kind = "corridor"
polygon = [[0, 8], [40, 8], [40, 12], [0, 12]]

[[zones]]
id = "lift-1-L2"
floor = "L2"
kind = "lift"
shaft = "lift-1"
connects = ["L1", "L2"]
polygon = [[30, 4], [34, 4], [34, 8], [30, 8]]

[[gateways]]
id = "gw-1"
floor = "L1"
x = 10.0
y = 10.0
z = 3.5
radios = ["ble", "wifi"]

[[gateways]]
id = "gw-2"
floor = "L2"
x = 30.0
y = 10.0
z = 3.5
radios = ["ble"]
p0_offset_db = -2.0
"""


def broken(*edits: tuple[str, str], text: str = TINY) -> str:
    """Apply (old, new) replacements; each old must occur exactly once, so a typo in a test
    cannot silently leave the file valid."""
    for old, new in edits:
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
        text = text.replace(old, new)
    return text


def line_of(text: str, needle: str, nth: int = 0) -> int:
    """1-based line of the nth line containing needle."""
    hits = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    assert len(hits) > nth, f"{needle!r} not found"
    return hits[nth]


def problems(text: str) -> list[Problem]:
    with pytest.raises(SiteError) as info:
        parse_site(text, file="tiny.toml")
    assert info.value.problems, "SiteError without problems"
    return info.value.problems


def one(text: str, key: str) -> Problem:
    """The problems for `key`; asserts there is exactly one and returns it."""
    found = [p for p in problems(text) if p.key == key]
    assert len(found) == 1, f"expected one problem at {key}, got {problems(text)}"
    return found[0]
