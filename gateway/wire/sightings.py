"""Sightings batches: what a gateway heard in one window (topic ``gw/{gateway}/sightings``).

Two decoders: :meth:`SightingsBatch.decode` builds one frozen :class:`Sighting` per device, and
:meth:`SightingsBatch.decode_arrays` fills column arrays without per-sighting objects for the
ingest hot path (DESIGN.md: parsing is the throughput bottleneck). Both apply the same rules; the
array path sends any value its inline checks do not accept through the object path, so the two
always raise the same WireError.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from gateway.wire.codec import (
    short,
    INT_MAX,
    TOKEN_RE,
    check_bool,
    check_choice,
    check_float,
    check_id,
    check_int,
    check_time,
    check_token,
    dump,
    load_object,
    require,
    check_version,
)
from gateway.wire.errors import WireError

log = logging.getLogger(__name__)

KINDS: tuple[str, ...] = ("ble", "wifi")  # index = code in SightingArrays.kind
MAX_SIGHTINGS = 5000
# Below -120 dBm no BLE/Wi-Fi receiver we ship demodulates; above 0 dBm means the device is
# touching the antenna or the value is garbage.
RSSI_MIN, RSSI_MAX = -120.0, 0.0
WINDOW_MAX_S = 60.0
N_MAX = 1_000_000  # packets per device per window; BLE at 20 ms for 60 s is 3000
# BLE TX Power Level AD type (CSS Part A 1.5) is a signed octet, dBm.
TX_MIN, TX_MAX = -127, 127
TOKEN_MAX = 128  # fp, beacon, member
SQ_MAX = 4095  # 802.11 sequence numbers are 12 bits
_OPTIONAL = ("tx", "rnd", "fp", "beacon", "member", "sq")
_NAN = float("nan")


@dataclass(frozen=True, slots=True)
class Sighting:
    """One device heard by one gateway in one window.

    id: pseudonym (rotating keyed hash of the address; never the address), 1..64 token chars.
    k: radio, "ble" or "wifi". rssi: mean RSSI over the window, dBm, 0.1 dB, -120..0.
    n: packets heard in the window, 1..1e6. tx: advertised TX power at 1 m, dBm, -127..127.
    rnd: the address was randomized. fp: Wi-Fi probe fingerprint (hash of IEs), token.
    beacon: registered beacon "uuid:major:minor", token. member: consented member token.
    sq: the last 802.11 sequence number heard from it in the window (Wi-Fi probes), 0..4095.
    Phones that keep one counter across MAC changes continue it in their next burst, so ingest
    chains a randomizing phone's bursts (Vanhoef et al., AsiaCCS 2016). Added to v1 as an
    optional key: v1 readers ignore keys they do not know, so no version bump (docs/wire-v1.md).
    """

    id: str
    k: str
    rssi: float
    n: int
    tx: int | None = None
    rnd: bool | None = None
    fp: str | None = None
    beacon: str | None = None
    member: str | None = None
    sq: int | None = None

    def __post_init__(self) -> None:
        put = object.__setattr__
        check_token(self.id, "id", 64)
        check_choice(self.k, "k", KINDS, "unknown_kind")
        put(self, "rssi", check_float(self.rssi, "rssi", RSSI_MIN, RSSI_MAX, 1, "rssi_range"))
        put(self, "n", check_int(self.n, "n", 1, N_MAX))
        if self.tx is not None:
            put(self, "tx", check_int(self.tx, "tx", TX_MIN, TX_MAX))
        if self.rnd is not None:
            put(self, "rnd", check_bool(self.rnd, "rnd"))
        for key in ("fp", "beacon", "member"):
            value = getattr(self, key)
            if value is not None:
                check_token(value, key, TOKEN_MAX)
        if self.sq is not None:
            put(self, "sq", check_int(self.sq, "sq", 0, SQ_MAX))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "k": self.k, "rssi": self.rssi, "n": self.n}
        for key in _OPTIONAL:
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out

    @classmethod
    def from_json(cls, obj: Any) -> Sighting:
        if not isinstance(obj, dict):
            raise WireError("wrong_type", None, "a sighting must be an object")
        return cls(
            require(obj, "id"),
            require(obj, "k"),
            require(obj, "rssi"),
            require(obj, "n"),
            obj.get("tx"),
            obj.get("rnd"),
            obj.get("fp"),
            obj.get("beacon"),
            obj.get("member"),
            obj.get("sq"),
        )


def _header(obj: dict[str, Any]) -> tuple[str, str, int, float, float, list[Any]]:
    check_version(obj)
    site = check_id(require(obj, "site"), "site")
    gw = check_id(require(obj, "gw"), "gw")
    seq = check_int(require(obj, "seq"), "seq", 0, INT_MAX)
    t = check_time(require(obj, "t"))
    window_s = check_float(
        require(obj, "window_s"), "window_s", 0.0, WINDOW_MAX_S, 3, "window_range", lo_open=True
    )
    s = require(obj, "s")
    if not isinstance(s, list):
        raise WireError("wrong_type", "s", "expected an array of sightings")
    if len(s) > MAX_SIGHTINGS:
        raise WireError("too_many_sightings", "s", f"{len(s)} > {MAX_SIGHTINGS}")
    return site, gw, seq, t, window_s, s


@dataclass(frozen=True, slots=True)
class SightingArrays:
    """A decoded batch as columns, one row per sighting (no per-row objects).

    kind: uint8 index into KINDS. rssi: float64 dBm. n: int64 packets. tx: float64 dBm, NaN where
    absent. rnd: int8, -1 absent / 0 / 1. fp, beacon, member: lists with None where absent.
    sq: int16 last 802.11 sequence number, -1 where absent (None: no column, all absent).
    """

    site: str
    gw: str
    seq: int
    t: float
    window_s: float
    id: list[str]
    kind: np.ndarray
    rssi: np.ndarray
    n: np.ndarray
    tx: np.ndarray
    rnd: np.ndarray
    fp: list[str | None]
    beacon: list[str | None]
    member: list[str | None]
    sq: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.id)


@dataclass(frozen=True, slots=True)
class SightingsBatch:
    """All sightings of one gateway in one window.

    site, gw: ids. seq: per-gateway sequence number, rises by one per batch (dedup key at
    ingest), 0..2**53-1. t: window start, unix seconds, ms. window_s: window length, s, ms,
    (0, 60]. s: at most MAX_SIGHTINGS sightings. v: contract version, always 1.
    """

    site: str
    gw: str
    seq: int
    t: float
    window_s: float
    s: tuple[Sighting, ...]
    v: int = 1

    def __post_init__(self) -> None:
        put = object.__setattr__
        if type(self.v) is not int or self.v != 1:
            raise WireError("wrong_version", "v", f"only v1 is defined, got {short(self.v)}")
        check_id(self.site, "site")
        check_id(self.gw, "gw")
        put(self, "seq", check_int(self.seq, "seq", 0, INT_MAX))
        put(self, "t", check_time(self.t))
        put(
            self,
            "window_s",
            check_float(self.window_s, "window_s", 0.0, WINDOW_MAX_S, 3, "window_range", True),
        )
        s = tuple(self.s)
        if len(s) > MAX_SIGHTINGS:
            raise WireError("too_many_sightings", "s", f"{len(s)} > {MAX_SIGHTINGS}")
        for i, item in enumerate(s):
            if not isinstance(item, Sighting):
                raise WireError("wrong_type", f"s[{i}]", "expected a Sighting")
        put(self, "s", s)

    def encode(self) -> bytes:
        return dump(
            {
                "v": self.v,
                "site": self.site,
                "gw": self.gw,
                "seq": self.seq,
                "t": self.t,
                "window_s": self.window_s,
                "s": [x.to_json() for x in self.s],
            }
        )

    @classmethod
    def decode(cls, data: bytes) -> SightingsBatch:
        site, gw, seq, t, window_s, raw = _header(load_object(data))
        out = []
        for i, item in enumerate(raw):
            try:
                out.append(Sighting.from_json(item))
            except WireError as exc:
                raise exc.within(f"s[{i}]") from None
        return cls(site, gw, seq, t, window_s, tuple(out))

    @staticmethod
    def decode_arrays(data: bytes) -> SightingArrays:
        """Decode straight into :class:`SightingArrays`; same rules and errors as decode()."""
        site, gw, seq, t, window_s, raw = _header(load_object(data))
        m = len(raw)
        ids: list[str] = [""] * m
        kind = bytearray(m)
        rssi: list[float] = [0.0] * m
        n: list[int] = [0] * m
        tx: list[float] = [_NAN] * m
        rnd = bytearray(b"\xff") * m  # int8 -1 = absent
        fp: list[str | None] = [None] * m
        beacon: list[str | None] = [None] * m
        member: list[str | None] = [None] * m
        sq: list[int] = [-1] * m
        token = TOKEN_RE.fullmatch
        for i, d in enumerate(raw):
            # Inline checks for the common, valid case; anything they do not accept goes to the
            # object path, which raises the canonical error or returns the canonical values.
            try:
                sid, k, r, c = d["id"], d["k"], d["rssi"], d["n"]
                ok = (
                    type(sid) is str
                    and len(sid) <= 64
                    and token(sid) is not None
                    and (type(r) is float or type(r) is int)
                    and RSSI_MIN <= r <= RSSI_MAX
                    and type(c) is int
                    and 1 <= c <= N_MAX
                    and (k == "ble" or k == "wifi")
                )
            except (KeyError, TypeError):
                ok = False
            if ok and len(d) > 4:
                v = d.get("tx")
                if v is not None:
                    if type(v) is int and TX_MIN <= v <= TX_MAX:
                        tx[i] = v
                    else:
                        ok = False
                v = d.get("rnd")
                if v is True:
                    rnd[i] = 1
                elif v is False:
                    rnd[i] = 0
                elif v is not None:
                    ok = False
                for key, col in (("fp", fp), ("beacon", beacon), ("member", member)):
                    v = d.get(key)
                    if v is not None:
                        if type(v) is str and len(v) <= TOKEN_MAX and token(v) is not None:
                            col[i] = v
                        else:
                            ok = False
                v = d.get("sq")
                if v is not None:
                    if type(v) is int and 0 <= v <= SQ_MAX:
                        sq[i] = v
                    else:
                        ok = False
            if ok:
                if k == "wifi":
                    kind[i] = 1
            else:
                try:
                    one = Sighting.from_json(d)
                except WireError as exc:
                    raise exc.within(f"s[{i}]") from None
                sid, r, c = one.id, one.rssi, one.n
                kind[i] = KINDS.index(one.k)
                tx[i] = _NAN if one.tx is None else one.tx
                rnd[i] = 255 if one.rnd is None else int(one.rnd)
                fp[i], beacon[i], member[i] = one.fp, one.beacon, one.member
                sq[i] = -1 if one.sq is None else one.sq
            ids[i] = sid
            rssi[i] = r
            n[i] = c
        return SightingArrays(
            site,
            gw,
            seq,
            t,
            window_s,
            ids,
            np.frombuffer(bytes(kind), np.uint8).copy(),
            _round_rssi(np.array(rssi, dtype=np.float64)),
            np.array(n, dtype=np.int64),
            np.array(tx, dtype=np.float64),
            np.frombuffer(bytes(rnd), np.int8).copy(),
            fp,
            beacon,
            member,
            np.array(sq, dtype=np.int16),
        )

    def arrays(self) -> SightingArrays:
        """This batch as columns (what decode_arrays(self.encode()) returns)."""
        s = self.s
        return SightingArrays(
            self.site,
            self.gw,
            self.seq,
            self.t,
            self.window_s,
            [x.id for x in s],
            np.array([KINDS.index(x.k) for x in s], dtype=np.uint8),
            np.array([x.rssi for x in s], dtype=np.float64),
            np.array([x.n for x in s], dtype=np.int64),
            np.array([np.nan if x.tx is None else x.tx for x in s], dtype=np.float64),
            np.array([-1 if x.rnd is None else int(x.rnd) for x in s], dtype=np.int8),
            [x.fp for x in s],
            [x.beacon for x in s],
            [x.member for x in s],
            np.array([-1 if x.sq is None else x.sq for x in s], dtype=np.int16),
        )


def _round_rssi(rssi: np.ndarray) -> np.ndarray:
    # Same result as the object path's round(x, 1) for every value a canonical encoder writes
    # (already on the 0.1 dB grid); for off-grid input it may differ by one ulp.
    out = np.round(rssi, 1)
    out += 0.0
    return out
