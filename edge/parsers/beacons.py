"""Beacon frames inside AD structures: iBeacon, Eddystone (UID, URL, TLM, EID), AltBeacon.

iBeacon: Apple manufacturer data (company 0x004C) ``02 15 <uuid 16> <major BE16> <minor BE16>
<measured power int8>`` (Apple "Proximity Beacon Specification" R1). Eddystone: service data of
UUID 0xFEAA, frame type in the first byte (github.com/google/eddystone protocol-specification).
AltBeacon: manufacturer data ``BE AC <beacon id 20> <reference RSSI int8> <reserved>``
(github.com/AltBeacon/spec).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from edge.parsers.ble import AdvertData, uuid16

APPLE = 0x004C
_IBEACON = struct.Struct(">2s16sHHb")
_EDDY_UID = struct.Struct(">Bb10s6s")
_EDDY_TLM = struct.Struct(">BBHhII")  # frame, version, mV, temp 8.8, adv count, 0.1 s count
_ALT = struct.Struct(">2s20sbB")
EDDYSTONE_UUID = uuid16(0xFEAA)
# Tilt hydrometers reuse the iBeacon layout with these UUIDs (a495bbX0-c5b1-4b44-b512-1370f02d74de,
# X = colour) and are not location beacons; ibeacon-ble ignores them the same way.
_TILT_PREFIX, _TILT_SUFFIX = "a495bb", "0c5b14b44b5121370f02d74de"


@dataclass(frozen=True, slots=True)
class IBeacon:
    """uuid: canonical lower-case string. major, minor: 0..65535. power: measured RSSI at 1 m, dBm."""

    uuid: str
    major: int
    minor: int
    power: int

    @property
    def beacon_id(self) -> str:
        return f"{self.uuid}:{self.major}:{self.minor}"


@dataclass(frozen=True, slots=True)
class EddystoneUID:
    """namespace: 10 bytes hex. instance: 6 bytes hex. tx_power: dBm at 0 m."""

    namespace: str
    instance: str
    tx_power: int

    @property
    def beacon_id(self) -> str:
        return f"{self.namespace}:{self.instance}"


@dataclass(frozen=True, slots=True)
class EddystoneURL:
    url: str
    tx_power: int


@dataclass(frozen=True, slots=True)
class EddystoneTLM:
    """Unencrypted (version 0): voltage mV, temperature °C, advertising_count, seconds_since_boot
    in units of 0.1 s as sent. Encrypted (version 1): encrypted_data, salt, mic; the rest None."""

    version: int
    voltage: int | None = None
    temperature: float | None = None
    advertising_count: int | None = None
    seconds_since_boot: int | None = None
    encrypted_data: bytes | None = None
    salt: int | None = None
    mic: int | None = None


@dataclass(frozen=True, slots=True)
class EddystoneEID:
    eid: bytes
    tx_power: int


@dataclass(frozen=True, slots=True)
class AltBeacon:
    """company: manufacturer id. beacon_id: 20 bytes hex. ref_rssi: dBm at 1 m."""

    company: int
    beacon_id: str
    ref_rssi: int


Beacon = IBeacon | EddystoneUID | EddystoneURL | EddystoneTLM | EddystoneEID | AltBeacon


def _uuid_str(raw: bytes) -> str:
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def parse_ibeacon(mfr: dict[int, bytes]) -> IBeacon | None:
    data = mfr.get(APPLE)
    if data is None or len(data) < _IBEACON.size:
        return None
    prefix, raw, major, minor, power = _IBEACON.unpack_from(data, 0)
    if prefix != b"\x02\x15":
        return None
    uuid = _uuid_str(raw)
    if uuid.startswith(_TILT_PREFIX) and uuid.replace("-", "").endswith(_TILT_SUFFIX):
        return None
    return IBeacon(uuid, major, minor, power)


_URL_SCHEMES = ("http://www.", "https://www.", "http://", "https://")
_URL_EXPANSIONS = (".com/", ".org/", ".edu/", ".net/", ".info/", ".biz/", ".gov/",
                   ".com", ".org", ".edu", ".net", ".info", ".biz", ".gov")


def parse_eddystone(service_data: dict[str, bytes]) -> Beacon | None:
    data = service_data.get(EDDYSTONE_UUID)
    if not data:
        return None
    frame = data[0]
    n = len(data)
    if frame == 0x00 and n >= _EDDY_UID.size:
        _f, tx, ns, inst = _EDDY_UID.unpack_from(data, 0)
        return EddystoneUID(ns.hex(), inst.hex(), tx)
    if frame == 0x10 and 3 <= n <= 20:
        tx = data[1] - 256 if data[1] > 127 else data[1]
        if data[2] >= len(_URL_SCHEMES):
            return None
        parts = [_URL_SCHEMES[data[2]]]
        for b in data[3:]:
            if b < len(_URL_EXPANSIONS):
                parts.append(_URL_EXPANSIONS[b])
            elif 0x21 <= b <= 0x7E:
                parts.append(chr(b))
            else:
                return None
        return EddystoneURL("".join(parts), tx)
    if frame == 0x20 and n >= 2:
        version = data[1]
        if version == 0 and n >= _EDDY_TLM.size:
            _f, _v, mv, temp, adv, secs = _EDDY_TLM.unpack_from(data, 0)
            return EddystoneTLM(0, mv, temp / 256.0, adv, secs)
        if version == 1 and n >= 14:
            # 12 bytes ETLM, salt and MIC little-endian; parts cut off by the AD length are None.
            salt = struct.unpack_from("<H", data, 14)[0] if n >= 16 else None
            mic = struct.unpack_from("<H", data, 16)[0] if n >= 18 else None
            return EddystoneTLM(1, encrypted_data=bytes(data[2:14]), salt=salt, mic=mic)
        return None
    if frame == 0x30 and n >= 10:
        tx = data[1] - 256 if data[1] > 127 else data[1]
        return EddystoneEID(bytes(data[2:10]), tx)
    return None


def parse_altbeacon(mfr: dict[int, bytes]) -> AltBeacon | None:
    for company, data in mfr.items():
        if len(data) >= _ALT.size and data[:2] == b"\xbe\xac":
            _code, bid, ref, _res = _ALT.unpack_from(data, 0)
            return AltBeacon(company, bid.hex(), ref)
    return None


def classify_beacon(ad: AdvertData) -> Beacon | None:
    """The beacon frame an advertisement carries, or None (most phones carry none)."""
    return parse_ibeacon(ad.manufacturer_data) or parse_eddystone(ad.service_data) or \
        parse_altbeacon(ad.manufacturer_data)
