"""Gateway status heartbeats, POS transactions and dead letters."""
from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from gateway.wire.codec import (
    short,
    INT_MAX,
    check_choice,
    check_float,
    check_id,
    check_int,
    check_str,
    check_text,
    check_time,
    check_token,
    check_version,
    dump,
    load_object,
    require,
)
from gateway.wire.errors import WireError
from gateway.wire.events import check_currency, check_money
from gateway.wire.sightings import KINDS

STATES: tuple[str, ...] = ("online", "offline")
VERSION_RE = re.compile(r"[\x21-\x7e]{1,64}")  # printable ASCII, no spaces: "0.3.1+g1a2b3c"
UPTIME_MAX_S = 10 * 365 * 86_400.0
FRAMES_MAX = 1e6  # frames/s per radio; a saturated 2.4 GHz channel is a few thousand
CPU_TEMP_MIN, CPU_TEMP_MAX = -55.0, 150.0  # BCM2711 sensor range, degC
DEADLETTER_PAYLOAD_MAX = 4096  # bytes of the rejected payload we keep
TEXT_MAX = 512  # characters of topic / detail we keep
REASON_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")


def _check_v(v: Any) -> None:
    if type(v) is not int or v != 1:
        raise WireError("wrong_version", "v", f"only v1 is defined, got {short(v)}")


@dataclass(frozen=True)
class Status:
    """Gateway heartbeat (topic ``gw/{gateway}/status``, retained; the last will is offline).

    t: when measured, unix s, ms. state: "online" | "offline". version: edge software version.
    uptime_s: s since the edge process started, ms. frames_per_s: radio ("ble"/"wifi") -> frames
    parsed per second over the last heartbeat interval, 0.01. parse_errors: frames rejected since
    start. spool_depth: batches waiting in the on-disk spool. spool_dropped: batches the full
    spool discarded since start. cpu_temp_c: SoC temperature, degC, 0.1, optional.
    """

    site: str
    gw: str
    t: float
    state: str
    version: str
    uptime_s: float = 0.0
    frames_per_s: Mapping[str, float] = field(default_factory=dict)
    parse_errors: int = 0
    spool_depth: int = 0
    spool_dropped: int = 0
    cpu_temp_c: float | None = None
    v: int = 1

    def __post_init__(self) -> None:
        put = object.__setattr__
        _check_v(self.v)
        check_id(self.site, "site")
        check_id(self.gw, "gw")
        put(self, "t", check_time(self.t))
        check_choice(self.state, "state", STATES)
        if VERSION_RE.fullmatch(check_str(self.version, "version")) is None:
            raise WireError("bad_value", "version", "1..64 printable ASCII characters, no spaces")
        put(self, "uptime_s", check_float(self.uptime_s, "uptime_s", 0.0, UPTIME_MAX_S, 3))
        if not isinstance(self.frames_per_s, Mapping):
            raise WireError("wrong_type", "frames_per_s", "expected an object radio -> frames/s")
        rates = {}
        for radio in sorted(self.frames_per_s, key=str):
            where = f"frames_per_s.{str(radio)[:10]}"
            check_choice(radio, where, KINDS, "unknown_kind")
            rates[radio] = check_float(self.frames_per_s[radio], where, 0.0, FRAMES_MAX, 2)
        put(self, "frames_per_s", rates)
        for key in ("parse_errors", "spool_depth", "spool_dropped"):
            put(self, key, check_int(getattr(self, key), key, 0, INT_MAX))
        if self.cpu_temp_c is not None:
            put(self, "cpu_temp_c", check_float(self.cpu_temp_c, "cpu_temp_c", CPU_TEMP_MIN,
                                                CPU_TEMP_MAX, 1))

    @classmethod
    def last_will(cls, site: str, gw: str, t: float, version: str) -> Status:
        """The offline status a gateway registers as its MQTT last will when it connects.

        The broker publishes it (retained) when the connection drops; ``t`` is therefore the
        connect time, the last moment the gateway is known to have been alive.
        """
        return cls(site, gw, t, "offline", version)

    def encode(self) -> bytes:
        out: dict[str, Any] = {
            "v": self.v,
            "site": self.site,
            "gw": self.gw,
            "t": self.t,
            "state": self.state,
            "version": self.version,
            "uptime_s": self.uptime_s,
            "frames_per_s": dict(self.frames_per_s),
            "parse_errors": self.parse_errors,
            "spool_depth": self.spool_depth,
            "spool_dropped": self.spool_dropped,
        }
        if self.cpu_temp_c is not None:
            out["cpu_temp_c"] = self.cpu_temp_c
        return dump(out)

    @classmethod
    def decode(cls, data: bytes) -> Status:
        obj = load_object(data)
        check_version(obj)
        return cls(
            require(obj, "site"),
            require(obj, "gw"),
            require(obj, "t"),
            require(obj, "state"),
            require(obj, "version"),
            require(obj, "uptime_s"),
            require(obj, "frames_per_s"),
            require(obj, "parse_errors"),
            require(obj, "spool_depth"),
            require(obj, "spool_dropped"),
            obj.get("cpu_temp_c"),
        )


@dataclass(frozen=True, slots=True)
class PosTransaction:
    """A point-of-sale transaction pushed in by a tenant's till integration (topic ``pos``).

    t: when paid, unix s, ms. store: the store's zone id. amount: currency major units, 0.001,
    negative for refunds. currency: ISO 4217. txn_id: the till's transaction id, token, unique
    per site (dedup key). member: consented member token, optional.
    """

    site: str
    t: float
    store: str
    amount: float
    currency: str
    txn_id: str
    member: str | None = None
    v: int = 1

    def __post_init__(self) -> None:
        _check_v(self.v)
        check_id(self.site, "site")
        object.__setattr__(self, "t", check_time(self.t))
        check_id(self.store, "store")
        object.__setattr__(self, "amount", check_money(self.amount, "amount"))
        check_currency(self.currency, "currency")
        check_token(self.txn_id, "txn_id", 64)
        if self.member is not None:
            check_token(self.member, "member", 128)

    def encode(self) -> bytes:
        out: dict[str, Any] = {
            "v": self.v,
            "site": self.site,
            "t": self.t,
            "store": self.store,
            "amount": self.amount,
            "currency": self.currency,
            "txn_id": self.txn_id,
        }
        if self.member is not None:
            out["member"] = self.member
        return dump(out)

    @classmethod
    def decode(cls, data: bytes) -> PosTransaction:
        obj = load_object(data)
        check_version(obj)
        return cls(
            require(obj, "site"),
            require(obj, "t"),
            require(obj, "store"),
            require(obj, "amount"),
            require(obj, "currency"),
            require(obj, "txn_id"),
            obj.get("member"),
        )


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A rejected input and why (topic ``deadletter``).

    t: when rejected, unix s, ms. topic: the topic it arrived on, as received, <= 512 chars.
    reason: the WireError reason (or another consumer's snake_case code), <= 32 chars.
    field: path of the offending value or None. detail: human sentence, <= 512 chars.
    payload: the first <= 4096 bytes of the input (base64 "payload_b64" on the wire).
    payload_len: the input's full length in bytes.
    """

    site: str
    t: float
    topic: str
    reason: str
    detail: str
    payload: bytes
    payload_len: int
    field: str | None = None
    v: int = 1

    def __post_init__(self) -> None:
        _check_v(self.v)
        check_id(self.site, "site")
        object.__setattr__(self, "t", check_time(self.t))
        check_text(self.topic, "topic", TEXT_MAX)
        if REASON_RE.fullmatch(check_str(self.reason, "reason")) is None:
            raise WireError("bad_value", "reason", "a snake_case code of at most 32 characters")
        check_text(self.detail, "detail", TEXT_MAX)
        if not isinstance(self.payload, bytes):
            raise WireError("wrong_type", "payload", "expected bytes")
        if len(self.payload) > DEADLETTER_PAYLOAD_MAX:
            raise WireError(
                "too_long", "payload", f"{len(self.payload)} > {DEADLETTER_PAYLOAD_MAX}"
            )
        check_int(self.payload_len, "payload_len", len(self.payload), INT_MAX)
        if self.field is not None:
            check_text(self.field, "field", 128)

    @classmethod
    def capture(
        cls,
        site: str,
        t: float,
        topic: str | bytes,
        data: bytes | bytearray | memoryview,
        reason: str,
        detail: str = "",
        field: str | None = None,
    ) -> DeadLetter:
        """A dead letter for ``data``, truncating topic, detail and payload to their bounds."""
        if isinstance(topic, (bytes, bytearray)):
            topic = bytes(topic).decode("utf-8", "replace")
        raw = bytes(data)
        return cls(
            site,
            t,
            str(topic)[:TEXT_MAX],
            reason,
            detail[:TEXT_MAX],
            raw[:DEADLETTER_PAYLOAD_MAX],
            len(raw),
            None if field is None else field[:128],
        )

    @classmethod
    def from_error(
        cls, site: str, t: float, topic: str | bytes, data: bytes, error: WireError
    ) -> DeadLetter:
        return cls.capture(site, t, topic, data, error.reason, error.detail, error.field)

    @property
    def truncated(self) -> bool:
        return self.payload_len > len(self.payload)

    def encode(self) -> bytes:
        out: dict[str, Any] = {
            "v": self.v,
            "site": self.site,
            "t": self.t,
            "topic": self.topic,
            "reason": self.reason,
        }
        if self.field is not None:
            out["field"] = self.field
        out["detail"] = self.detail
        out["payload_b64"] = base64.b64encode(self.payload).decode("ascii")
        out["payload_len"] = self.payload_len
        return dump(out)

    @classmethod
    def decode(cls, data: bytes) -> DeadLetter:
        obj = load_object(data)
        check_version(obj)
        b64 = check_str(require(obj, "payload_b64"), "payload_b64")
        if len(b64) > (DEADLETTER_PAYLOAD_MAX + 2) // 3 * 4:
            raise WireError("too_long", "payload_b64", f"more than {DEADLETTER_PAYLOAD_MAX} bytes")
        try:
            payload = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise WireError("bad_value", "payload_b64", "not valid base64") from None
        return cls(
            require(obj, "site"),
            require(obj, "t"),
            require(obj, "topic"),
            require(obj, "reason"),
            require(obj, "detail"),
            payload,
            require(obj, "payload_len"),
            obj.get("field"),
        )
