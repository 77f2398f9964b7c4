"""Typed reading of the raw TOML tables: unknown keys, missing keys and wrong types.

Each reader returns the record (or None when it cannot be built) and reports every problem to a
`Reporter`, so one pass finds all of them. Geometry and cross-references are checked afterwards
in `gateway.site.validate`.
"""
from __future__ import annotations

import math
import re
import zoneinfo
from dataclasses import dataclass, field
from typing import Any, Callable

from gateway.site.errors import Problem
from gateway.site.lines import LineIndex, PathPart, key_path
from gateway.site.model import (
    RADIO_KINDS, VERTICAL_KINDS, ZONE_KINDS, Floor, Gateway, Polygon, RadioDefaults, Zone,
)

SCHEMA_VERSION = 1
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]*$")
_CATEGORY = re.compile(r"^[a-z][a-z0-9_-]*$")

# Used for any radio key the file leaves out (docs/site-model.md lists the same numbers).
RADIO_BUILTIN: dict[str, RadioDefaults] = {
    "ble": RadioDefaults(p0_dbm=-59.0, exponent=2.3, sigma_db=5.5, floor_atten_db=17.0,
                         sensitivity_dbm=-96.0),
    "wifi": RadioDefaults(p0_dbm=-47.0, exponent=2.8, sigma_db=6.5, floor_atten_db=15.0,
                          sensitivity_dbm=-95.0),
}


@dataclass
class Reporter:
    file: str
    lines: LineIndex
    problems: list[Problem] = field(default_factory=list)

    def add(self, path: tuple[PathPart, ...], why: str, item_id: str | None = None) -> None:
        self.problems.append(Problem(self.file, self.lines.line(path, item_id), key_path(path), why))


_MISSING = object()


def _type_name(v: Any) -> str:
    return {bool: "boolean", int: "integer", float: "float", str: "string", list: "array",
            dict: "table"}.get(type(v), type(v).__name__)


class Table:
    """Reads one TOML table: take() each known key, then finish() reports the unknown ones."""

    def __init__(self, raw: dict, path: tuple[PathPart, ...], rep: Reporter,
                 item_id: str | None = None) -> None:
        self.raw, self.path, self.rep, self.item_id = raw, path, rep, item_id
        self.seen: set[str] = set()
        self.ok = True

    def bad(self, key: str | tuple[PathPart, ...], why: str) -> None:
        sub = (key,) if isinstance(key, str) else key
        self.rep.add(self.path + sub, why, self.item_id)
        self.ok = False

    def take(self, key: str, conv: Callable[[Any, "Table", str], Any], default: Any = _MISSING):
        self.seen.add(key)
        if key not in self.raw:
            if default is _MISSING:
                self.bad(key, "missing required key")
                return None
            return default
        return conv(self.raw[key], self, key)

    def finish(self) -> None:
        for key in self.raw:
            if key not in self.seen:
                self.bad(key, f"unknown key (allowed: {', '.join(sorted(self.seen))})")


def as_str(v: Any, t: Table, key: str) -> str | None:
    if isinstance(v, str):
        return v
    t.bad(key, f"expected a string, got {_type_name(v)}")
    return None


def as_id(v: Any, t: Table, key: str) -> str | None:
    s = as_str(v, t, key)
    if s is not None and not _ID.match(s):
        t.bad(key, f"{s!r} is not a valid id (letters, digits, and _ . : @ -)")
        return None
    return s


def as_int(v: Any, t: Table, key: str) -> int | None:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    t.bad(key, f"expected an integer, got {_type_name(v)}")
    return None


def as_float(v: Any, t: Table, key: str) -> float | None:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if math.isfinite(v):
            return float(v)
        t.bad(key, "expected a finite number")
        return None
    t.bad(key, f"expected a number, got {_type_name(v)}")
    return None


def as_str_list(v: Any, t: Table, key: str) -> tuple[str, ...] | None:
    if not isinstance(v, list):
        t.bad(key, f"expected an array of strings, got {_type_name(v)}")
        return None
    out = []
    for i, item in enumerate(v):
        if not isinstance(item, str):
            t.bad((key, i), f"expected a string, got {_type_name(item)}")
            return None
        out.append(item)
    return tuple(out)


def as_polygon(v: Any, t: Table, key: str) -> Polygon | None:
    """An array of [x, y] pairs in metres; a repeated first vertex at the end is dropped."""
    if not isinstance(v, list):
        t.bad(key, f"expected an array of [x, y] points, got {_type_name(v)}")
        return None
    pts = []
    for i, p in enumerate(v):
        if (not isinstance(p, list) or len(p) != 2
                or not all(isinstance(c, (int, float)) and not isinstance(c, bool)
                           and math.isfinite(c) for c in p)):
            t.bad((key, i), "expected a point [x, y] of two numbers (metres)")
            return None
        pts.append((float(p[0]), float(p[1])))
    if len(pts) > 1 and pts[0] == pts[-1]:
        pts.pop()
    return tuple(pts)


def _bounded(t: Table, key: str, value: float | None, lo: float, hi: float, unit: str) -> None:
    if value is not None and not lo <= value <= hi:
        t.bad(key, f"{value:g} {unit} is outside the plausible range {lo:g}..{hi:g} {unit}")


def read_site_table(raw: Any, rep: Reporter) -> tuple[str, str, str] | None:
    if not isinstance(raw, dict):
        rep.add(("site",), "missing [site] table" if raw is None else "expected a table")
        return None
    t = Table(raw, ("site",), rep)
    sid = t.take("id", as_id)
    name = t.take("name", as_str, default=sid)
    tz = t.take("timezone", as_str)
    if tz is not None:
        try:
            zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            t.bad("timezone", f"unknown IANA time zone {tz!r}")
    t.finish()
    return (sid, name, tz) if t.ok else None


def read_radio(raw: Any, rep: Reporter) -> dict[str, RadioDefaults]:
    out = dict(RADIO_BUILTIN)
    if raw is None:
        return out
    if not isinstance(raw, dict):
        rep.add(("radio",), f"expected a table, got {_type_name(raw)}")
        return out
    for kind, sub in raw.items():
        if kind not in RADIO_KINDS:
            rep.add(("radio", kind), f"unknown radio kind (allowed: {', '.join(RADIO_KINDS)})")
            continue
        if not isinstance(sub, dict):
            rep.add(("radio", kind), f"expected a table, got {_type_name(sub)}")
            continue
        t = Table(sub, ("radio", kind), rep)
        base = RADIO_BUILTIN[kind]
        vals = {k: t.take(k, as_float, default=getattr(base, k)) for k in
                ("p0_dbm", "exponent", "sigma_db", "floor_atten_db", "sensitivity_dbm")}
        _bounded(t, "p0_dbm", vals["p0_dbm"], -100.0, 0.0, "dBm")
        _bounded(t, "exponent", vals["exponent"], 1.0, 6.0, "")
        _bounded(t, "sigma_db", vals["sigma_db"], 0.0, 20.0, "dB")
        _bounded(t, "floor_atten_db", vals["floor_atten_db"], 0.0, 60.0, "dB")
        _bounded(t, "sensitivity_dbm", vals["sensitivity_dbm"], -130.0, -40.0, "dBm")
        t.finish()
        if t.ok:
            out[kind] = RadioDefaults(**vals)
    return out


def _items(raw: Any, name: str, rep: Reporter) -> list[tuple[int, dict]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        rep.add((name,), f"expected an array of tables ([[{name}]]), got {_type_name(raw)}")
        return []
    out = []
    for i, item in enumerate(raw):
        if isinstance(item, dict):
            out.append((i, item))
        else:
            rep.add((name, i), f"expected a table, got {_type_name(item)}")
    return out


def _item_id(item: dict) -> str | None:
    v = item.get("id")
    return v if isinstance(v, str) else None


def read_floors(raw: Any, rep: Reporter) -> list[tuple[int, Floor]]:
    out = []
    for i, item in _items(raw, "floors", rep):
        t = Table(item, ("floors", i), rep, _item_id(item))
        fid = t.take("id", as_id)
        name = t.take("name", as_str, default=fid)
        level = t.take("level", as_int)
        elevation = t.take("elevation_m", as_float)
        height = t.take("height_m", as_float)
        outline = t.take("outline", as_polygon)
        _bounded(t, "elevation_m", elevation, -100.0, 500.0, "m")
        if height is not None and not 2.0 <= height <= 20.0:
            t.bad("height_m", f"{height:g} m is not a plausible floor-to-floor height "
                              "(2..20 m); is it in cm or mm?")
        t.finish()
        if t.ok:
            out.append((i, Floor(fid, name, level, elevation, height, outline)))
    return out


def read_zones(raw: Any, rep: Reporter) -> list[tuple[int, Zone]]:
    out = []
    for i, item in _items(raw, "zones", rep):
        t = Table(item, ("zones", i), rep, _item_id(item))
        zid = t.take("id", as_id)
        floor = t.take("floor", as_str)
        kind = t.take("kind", as_str)
        if kind is not None and kind not in ZONE_KINDS:
            t.bad("kind", f"unknown zone kind {kind!r} (allowed: {', '.join(ZONE_KINDS)})")
        name = t.take("name", as_str, default=None)
        tenant = t.take("tenant", as_str, default=None)
        category = t.take("category", as_str, default=None)
        if category is not None and not _CATEGORY.match(category):
            t.bad("category", f"{category!r}: use a lowercase word such as fashion or food")
        popularity = t.take("popularity", as_float, default=1.0)
        if popularity is not None and not 0.0 <= popularity <= 100.0:
            t.bad("popularity", f"{popularity:g} is outside 0..100")
        polygon = t.take("polygon", as_polygon)
        vertical = kind in VERTICAL_KINDS
        connects = t.take("connects", as_str_list, default=_MISSING if vertical else ())
        shaft = t.take("shaft", as_id, default=_MISSING if vertical else None)
        if not vertical:
            if "connects" in item:
                t.bad("connects", f"only escalator and lift zones connect floors, not {kind}")
            if "shaft" in item:
                t.bad("shaft", f"only escalator and lift zones have a shaft, not {kind}")
        t.finish()
        if t.ok:
            out.append((i, Zone(zid, floor, kind, name if name is not None else (tenant or zid),
                                tenant, category, polygon, connects, popularity, shaft)))
    return out


def read_gateways(raw: Any, rep: Reporter) -> list[tuple[int, Gateway]]:
    out = []
    for i, item in _items(raw, "gateways", rep):
        t = Table(item, ("gateways", i), rep, _item_id(item))
        gid = t.take("id", as_id)
        floor = t.take("floor", as_str)
        x = t.take("x", as_float)
        y = t.take("y", as_float)
        z = t.take("z", as_float)
        radios = t.take("radios", as_str_list)
        if radios is not None:
            bad = [r for r in radios if r not in RADIO_KINDS]
            if bad or not radios or len(set(radios)) != len(radios):
                t.bad("radios", f"expected a non-empty list of distinct radio kinds from "
                                f"{', '.join(RADIO_KINDS)}, got {list(radios)}")
        p0_offset = t.take("p0_offset_db", as_float, default=0.0)
        exponent = t.take("exponent", as_float, default=None)
        sensitivity = t.take("sensitivity_dbm", as_float, default=None)
        _bounded(t, "p0_offset_db", p0_offset, -30.0, 30.0, "dB")
        _bounded(t, "exponent", exponent, 1.0, 6.0, "")
        _bounded(t, "sensitivity_dbm", sensitivity, -130.0, -40.0, "dBm")
        if z is not None and z < 0:
            t.bad("z", f"{z:g} m is below the floor; z is the height above the gateway's floor")
        elif z is not None and z > 20.0:
            t.bad("z", f"{z:g} m above the floor is implausible; z is metres above the "
                       "gateway's own floor (cm or absolute height by mistake?)")
        t.finish()
        if t.ok:
            out.append((i, Gateway(gid, floor, x, y, z, radios, p0_offset, exponent,
                                   sensitivity)))
    return out


def read_schema_version(raw: Any, rep: Reporter) -> None:
    if raw is None:
        return
    if isinstance(raw, bool) or raw != SCHEMA_VERSION:
        rep.add(("schema",), f"unsupported schema version {raw!r}; this reader knows "
                             f"{SCHEMA_VERSION}")
