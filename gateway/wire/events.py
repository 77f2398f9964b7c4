"""Journey events (topic ``events/{type}``), published by analytics for real-time consumers.

Each type has a fixed set of required and allowed fields (:data:`EVENT_FIELDS`); the constructor
refuses a field its type does not allow, the decoder ignores one (forward compatibility, see
docs/wire-v1.md "Versioning").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from gateway.wire.codec import (
    short,
    check_float,
    check_id,
    check_text,
    check_time,
    check_token,
    dump,
    load_object,
    require,
    check_version,
    check_choice,
)
from gateway.wire.errors import WireError
from gateway.wire.topics import EVENT_TYPES

# A staff phone left in a store overnight is a "visit" of days; 30 days bounds the absurd.
DURATION_MAX_S = 30 * 86_400.0
MONEY_MAX = 1e9  # currency major units; a mall till never rings up a billion
CURRENCY_LEN = 3


def check_money(value: Any, field: str) -> float:
    """Amount in currency major units, 3 decimals (ISO 4217 has at most 3 minor digits here)."""
    return check_float(value, field, -MONEY_MAX, MONEY_MAX, 3)


def check_currency(value: Any, field: str) -> str:
    """ISO 4217 alphabetic code, three upper-case letters."""
    check_text(value, field, CURRENCY_LEN)
    if len(value) != CURRENCY_LEN or not (value.isascii() and value.isalpha() and value.isupper()):
        raise WireError("bad_value", field, f"{short(value)} is not an ISO 4217 code like 'EUR'")
    return value


# Field -> (check, meaning with unit). Order here is the order on the wire.
_FIELD_CHECKS: dict[str, Callable[[Any, str], Any]] = {
    "entrance": check_id,  # entrance zone id
    "floor_from": check_id,  # floor id left
    "floor_to": check_id,  # floor id reached
    "via": check_id,  # escalator / lift zone id used
    "zone": check_id,  # zone id (store zone for purchase)
    "dwell_s": lambda v, f: check_float(v, f, 0.0, DURATION_MAX_S, 3),  # s spent in the zone
    "duration_s": lambda v, f: check_float(v, f, 0.0, DURATION_MAX_S, 3),  # s from entry to exit
    "amount": check_money,  # currency major units
    "currency": check_currency,  # ISO 4217
    "txn_id": lambda v, f: check_token(v, f, 64),  # POS transaction id the purchase matched
    "member": lambda v, f: check_token(v, f, 128),  # consented member token
}
OPTIONAL_FIELDS: tuple[str, ...] = tuple(_FIELD_CHECKS)

# type -> (required fields, optional fields)
EVENT_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "passby": (("entrance",), ("member",)),
    "entry": (("entrance",), ("member",)),
    "exit": (("entrance", "duration_s"), ("member",)),
    "floor_change": (("floor_from", "floor_to"), ("via", "member")),
    "zone_enter": (("zone",), ("member",)),
    "zone_exit": (("zone", "dwell_s"), ("member",)),
    "purchase": (("zone", "amount", "currency"), ("txn_id", "member")),
}
assert set(EVENT_FIELDS) == set(EVENT_TYPES)


@dataclass(frozen=True, slots=True)
class Event:
    """One journey event of one visitor.

    site: id. type: one of EVENT_TYPES. t: when it happened, unix s, ms. visitor: track
    pseudonym, token. The remaining fields are set per type as EVENT_FIELDS says.
    """

    site: str
    type: str
    t: float
    visitor: str
    entrance: str | None = None
    floor_from: str | None = None
    floor_to: str | None = None
    via: str | None = None
    zone: str | None = None
    dwell_s: float | None = None
    duration_s: float | None = None
    amount: float | None = None
    currency: str | None = None
    txn_id: str | None = None
    member: str | None = None
    v: int = 1

    def __post_init__(self) -> None:
        put = object.__setattr__
        if type(self.v) is not int or self.v != 1:
            raise WireError("wrong_version", "v", f"only v1 is defined, got {short(self.v)}")
        check_id(self.site, "site")
        check_choice(self.type, "type", EVENT_TYPES, "unknown_event")
        put(self, "t", check_time(self.t))
        check_token(self.visitor, "visitor", 64)
        required, allowed = EVENT_FIELDS[self.type]
        for key, check in _FIELD_CHECKS.items():
            value = getattr(self, key)
            if value is None:
                if key in required:
                    raise WireError("missing_field", key, f"a {self.type} event needs {key!r}")
                continue
            if key not in required and key not in allowed:
                raise WireError("unexpected_field", key, f"a {self.type} event has no {key!r}")
            put(self, key, check(value, key))
        if self.type == "floor_change" and self.floor_from == self.floor_to:
            raise WireError("bad_value", "floor_to", "floor_change to the same floor")

    def encode(self) -> bytes:
        out: dict[str, Any] = {
            "v": self.v,
            "site": self.site,
            "type": self.type,
            "t": self.t,
            "visitor": self.visitor,
        }
        for key in OPTIONAL_FIELDS:
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return dump(out)

    @classmethod
    def decode(cls, data: bytes) -> Event:
        obj = load_object(data)
        check_version(obj)
        kind = check_choice(require(obj, "type"), "type", EVENT_TYPES, "unknown_event")
        required, allowed = EVENT_FIELDS[kind]
        extra = {key: obj.get(key) for key in required + allowed}
        for key in required:
            require(obj, key)
        return cls(require(obj, "site"), kind, require(obj, "t"), require(obj, "visitor"), **extra)
