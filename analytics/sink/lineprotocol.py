"""InfluxDB line protocol, written by hand so every byte is ours and tested as exact strings.

Escaping follows the InfluxDB reference (line protocol, "Special characters"), the same table
influxdb-client's ``Point`` uses:

- measurement: comma, space (and \\n \\t \\r as escapes);
- tag keys, tag values, field keys: comma, equals sign, space (and \\n \\t \\r);
- string field values: double quote and backslash, inside double quotes.

Integers carry the ``i`` suffix, booleans are ``true``/``false``, floats are written with
``repr`` (shortest round-trip form). NaN and infinities cannot be stored: such fields are
dropped, and a point left without fields is refused (InfluxDB would reject the line).
Tags are sorted by key (the order InfluxDB stores them; it makes writes cheaper). Empty tag
values are dropped because the protocol has no way to write them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Union

from analytics.errors import LineProtocolError

FieldValue = Union[float, int, bool, str]

_ESCAPE_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"})
_ESCAPE_KEY = str.maketrans(
    {",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"})
_ESCAPE_STRING = str.maketrans({'"': r"\"", "\\": "\\\\"})

# Multiplier from seconds to each precision InfluxDB accepts in `precision=`.
PRECISIONS: dict[str, int] = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


@dataclass(frozen=True)
class Point:
    """One line: measurement, tags, fields and a timestamp in unix seconds.

    ``t`` may be an ``int`` (exact at every precision) or a ``float`` (rounded to the
    precision; a float cannot carry nanoseconds at today's epoch, so use ints for ns).
    """

    measurement: str
    tags: Mapping[str, str] = field(default_factory=dict)
    fields: Mapping[str, FieldValue] = field(default_factory=dict)
    t: float | int | None = None

    def to_line(self, precision: str = "s") -> str:
        return encode_point(self, precision)


def escape_measurement(name: str) -> str:
    return name.translate(_ESCAPE_MEASUREMENT)


def escape_key(key: str) -> str:
    return key.translate(_ESCAPE_KEY)


def escape_string(value: str) -> str:
    return value.translate(_ESCAPE_STRING)


def format_field(value: FieldValue) -> str | None:
    """The field value as written, or None when it cannot be stored (NaN, inf)."""
    # bool before int: bool is a subclass of int.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return repr(value)
    if isinstance(value, str):
        return f'"{escape_string(value)}"'
    # numpy scalars: integer kinds as ints, floating kinds as floats.
    kind = getattr(getattr(value, "dtype", None), "kind", None)
    if kind in ("i", "u"):
        return f"{int(value)}i"
    if kind == "f":
        return format_field(float(value))
    if kind == "b":
        return format_field(bool(value))
    raise TypeError(f"unsupported field type {type(value).__name__}")


def format_time(t: float | int, precision: str) -> str:
    try:
        mult = PRECISIONS[precision]
    except KeyError:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}") from None
    if isinstance(t, int):
        return str(t * mult)
    # Split so nanoseconds are not lost: t * 1e9 alone overflows a double's 53-bit mantissa.
    whole = math.floor(t)
    return str(int(whole) * mult + int(round((t - whole) * mult)))


def encode_point(p: Point, precision: str = "s") -> str:
    if not p.measurement:
        raise LineProtocolError(p.measurement, "empty measurement name")
    if p.measurement.startswith("#"):
        raise LineProtocolError(p.measurement, "a measurement starting with # is read as a comment")
    parts = [escape_measurement(p.measurement)]
    for key in sorted(p.tags):
        value = p.tags[key]
        if value is None or value == "":
            continue
        parts.append(f",{escape_key(key)}={escape_key(str(value))}")
    fields = []
    for key in sorted(p.fields):
        text = format_field(p.fields[key])
        if text is not None:
            fields.append(f"{escape_key(key)}={text}")
    if not fields:
        raise LineProtocolError(p.measurement, "no storable fields")
    line = "".join(parts) + " " + ",".join(fields)
    if p.t is not None:
        line += " " + format_time(p.t, precision)
    return line


def encode_points(points: Iterable[Point], precision: str = "s") -> list[str]:
    return [encode_point(p, precision) for p in points]
