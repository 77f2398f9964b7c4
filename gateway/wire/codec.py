"""Canonical JSON in and out, and the value checks every record shares.

Decoding is strict and never raises anything but :class:`WireError`: the size is checked before
a byte is parsed, the text must be UTF-8 JSON (RFC 8259: no NaN/Infinity), and every value is
type- and range-checked by the ``check_*`` helpers below, which the record constructors call so
that a producer cannot build what a consumer would reject.

Encoding is canonical: fixed key order, ``separators=(",", ":")``, ASCII only, optional keys
omitted when None, floats rounded at construction, so equal records give equal bytes.
"""
from __future__ import annotations

import json
import math
import numbers
import re
from typing import Any

import numpy as np

from gateway.wire.errors import WireError

VERSION = 1
# A typical sighting is ~60 bytes, so MAX_SIGHTINGS (5000) of them are ~300 kB; a busy 1 s window
# in a mall is a few hundred (~25 kB). 1 MiB leaves room for optional keys and bounds what one
# message can cost us to parse (~10 ms).
MAX_PAYLOAD_BYTES = 1024 * 1024

# Site, gateway, zone, floor ids: they appear in topics and Influx tags, so no '/', '+', '#'.
ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Pseudonyms, member tokens, transaction ids, fingerprints: hex, base64, base64url and uuids fit.
TOKEN_RE = re.compile(r"[A-Za-z0-9_.:=+/-]{1,128}")
# Largest integer a float64 (and so every JSON consumer) holds exactly.
INT_MAX = 2**53 - 1
# Unix seconds; 4102444800 is 2100-01-01T00:00:00Z.
T_MAX = 4_102_444_800.0


def load_object(data: bytes | bytearray | memoryview) -> dict[str, Any]:
    """Parse an untrusted payload into a JSON object, checking its size first."""
    if isinstance(data, memoryview):
        size = data.nbytes
    elif isinstance(data, (bytes, bytearray)):
        size = len(data)
    else:
        raise WireError("wrong_type", None, f"payload must be bytes, got {type(data).__name__}")
    if size > MAX_PAYLOAD_BYTES:
        raise WireError("oversize", None, f"{size} bytes > {MAX_PAYLOAD_BYTES}")
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WireError("bad_json", None, f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except WireError:
        raise
    except RecursionError:
        raise WireError("bad_json", None, "nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, and int() refusing > 4300 digits
        raise WireError("bad_json", None, str(exc)[:200]) from None
    if not isinstance(obj, dict):
        raise WireError("not_object", None, f"top-level JSON value is {_tname(obj)}")
    return obj


def dump(obj: dict[str, Any]) -> bytes:
    """Canonical compact bytes of an already ordered, already validated dict."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return text.encode("ascii")


def _reject_constant(name: str) -> Any:
    raise WireError("bad_json", None, f"{name} is not JSON (RFC 8259)")


def _tname(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    return type(value).__name__


def short(value: Any, limit: int = 40) -> str:
    """A bounded description of an untrusted value for error details (never a deep repr)."""
    if isinstance(value, str):
        return repr(value[:limit]) + ("..." if len(value) > limit else "")
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        if value.bit_length() > 64:
            return f"an integer of {value.bit_length()} bits"
        return str(value)
    return _tname(value)


def require(obj: dict[str, Any], key: str) -> Any:
    """``obj[key]`` or a missing_field error."""
    try:
        return obj[key]
    except KeyError:
        raise WireError("missing_field", key, f"{key!r} is required") from None


def check_version(obj: dict[str, Any]) -> None:
    """Reject anything but ``"v": 1`` before looking at the rest of the payload."""
    v = require(obj, "v")
    if type(v) is not int or v != VERSION:
        raise WireError("wrong_version", "v", f"this decoder reads v{VERSION}, got {short(v)}")


def check_int(value: Any, field: str, lo: int = 0, hi: int = INT_MAX) -> int:
    """An integer (not a bool, not a float) in ``lo..hi``."""
    if type(value) is not int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise WireError("wrong_type", field, f"expected an integer, got {_tname(value)}")
        value = int(value)
    if not lo <= value <= hi:
        raise WireError("out_of_range", field, f"{short(value)} not in {lo}..{hi}")
    return value


def check_float(
    value: Any,
    field: str,
    lo: float,
    hi: float,
    ndigits: int,
    reason: str = "out_of_range",
    lo_open: bool = False,
) -> float:
    """A finite number rounded to ``ndigits`` decimals, then checked against ``lo..hi``.

    Integers are accepted and become floats, so ``-70`` and ``-70.0`` are the same RSSI.
    """
    if type(value) is not float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise WireError("wrong_type", field, f"expected a number, got {_tname(value)}")
        try:
            value = float(value)
        except OverflowError:
            raise WireError(reason, field, "number too large") from None
    if not math.isfinite(value):
        raise WireError(reason, field, f"{value} is not finite")
    value = round(value, ndigits) + 0.0  # + 0.0 turns -0.0 into 0.0
    if value < lo or value > hi or (lo_open and value == lo):
        opening = "(" if lo_open else "["
        raise WireError(reason, field, f"{value:.6g} not in {opening}{lo:g}, {hi:g}]")
    return value


def check_time(value: Any, field: str = "t") -> float:
    """Unix seconds, rounded to the millisecond."""
    return check_float(value, field, 0.0, T_MAX, 3)


def check_bool(value: Any, field: str) -> bool:
    """true/false; numpy's bool_ (from a boolean array) is accepted and becomes a bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise WireError("wrong_type", field, f"expected true/false, got {_tname(value)}")
    return bool(value)


def check_str(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise WireError("wrong_type", field, f"expected a string, got {_tname(value)}")
    return value


def check_id(value: Any, field: str) -> str:
    """A site/gateway/zone/floor id: ``[A-Za-z0-9_-]{1,64}``."""
    if ID_RE.fullmatch(check_str(value, field)) is None:
        raise WireError("bad_id", field, f"{value[:70]!r} is not [A-Za-z0-9_-]{{1,64}}")
    return value


def check_token(value: Any, field: str, max_len: int = 64) -> str:
    """An opaque token: ``[A-Za-z0-9_.:=+/-]``, 1..max_len characters."""
    if TOKEN_RE.fullmatch(check_str(value, field)) is None or len(value) > max_len:
        raise WireError(
            "bad_id", field, f"{value[:70]!r} is not [A-Za-z0-9_.:=+/-]{{1,{max_len}}}"
        )
    return value


def check_text(value: Any, field: str, max_len: int) -> str:
    """Free text of at most ``max_len`` characters."""
    if len(check_str(value, field)) > max_len:
        raise WireError("too_long", field, f"{len(value)} characters > {max_len}")
    return value


def check_choice(
    value: Any, field: str, choices: tuple[str, ...], reason: str = "bad_value"
) -> str:
    """One of ``choices``; anything else is ``reason`` (or wrong_type if not a string)."""
    if check_str(value, field) not in choices:
        raise WireError(reason, field, f"{value[:40]!r} not one of {', '.join(choices)}")
    return value
