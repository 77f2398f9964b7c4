"""BLE advertising: LE link layer with PHDR (pcap link type 256), and AD structures.

LE LL with PHDR is specified at https://www.tcpdump.org/linktypes/LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR.html:
a 10-byte pseudo-header (RF channel, signal dBm, noise dBm, access-address offenses, reference
access address, flags) then the air packet: access address, PDU header, payload, CRC-24.
AD structures: Bluetooth Core Supplement (CSS) Part A; the tolerance rules for malformed data
follow Bluetooth-Devices/bluetooth-data-tools gap.py (a structure that runs past the end stops
parsing; type 0 and length 0 are skipped; a trailing structure of under 3 bytes is ignored).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

_PHDR = struct.Struct("<BbbBIH")  # rf_channel, signal, noise, aa_offenses, ref_aa, flags
_AA_PDU = struct.Struct("<IBB")  # access address, PDU header byte 0, length
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")

ADV_ACCESS_ADDRESS = 0x8E89BED6  # Core Vol 6 Part B 2.1.2
_CRC_INIT_ADV = 0x555555  # Core Vol 6 Part B 3.1.1
PHDR_SIGNAL_VALID = 0x0002
PHDR_CRC_CHECKED = 0x0400
PHDR_CRC_VALID = 0x0800

# Legacy advertising PDU types (Core Vol 6 Part B 2.3) that carry AdvA followed by AdvData.
ADV_IND, ADV_DIRECT_IND, ADV_NONCONN_IND, SCAN_REQ, SCAN_RSP, CONNECT_IND, ADV_SCAN_IND = range(7)
_WITH_DATA = frozenset({ADV_IND, ADV_NONCONN_IND, SCAN_RSP, ADV_SCAN_IND})
_MAX_LEGACY_PAYLOAD = 37

BASE_UUID_TAIL = "-0000-1000-8000-00805f9b34fb"


def _crc_table() -> tuple[int, ...]:
    # BLE CRC-24, polynomial x^24+x^10+x^9+x^6+x^4+x^3+x+1, shifted LSB first (Vol 6 Part B 3.1.1):
    # the reflected form of that polynomial is 0xDA6000.
    table = []
    for b in range(256):
        s = b
        for _ in range(8):
            s = (s >> 1) ^ 0xDA6000 if s & 1 else s >> 1
        table.append(s)
    return tuple(table)


_CRC_TABLE = _crc_table()


def _reverse24(v: int) -> int:
    return int(f"{v:024b}"[::-1], 2)


_CRC_INIT_REFLECTED = _reverse24(_CRC_INIT_ADV)


def ble_crc(pdu: bytes) -> int:
    """CRC-24 of an advertising-channel PDU as it appears on air (3 bytes little-endian)."""
    s = _CRC_INIT_REFLECTED
    table = _CRC_TABLE
    for b in pdu:
        s = (s >> 8) ^ table[(s ^ b) & 0xFF]
    return s


@dataclass(frozen=True, slots=True)
class BleAdvert:
    """pdu_type: 0..15 (see ADV_* constants). tx_random: TxAdd, the address is random.
    addr: AdvA, 6 bytes in display order. adv_data: AdvData bytes (may be b"").
    rssi: dBm from the pseudo-header, None if the sniffer marked it invalid.
    channel: BLE channel index (37/38/39 for advertising), None if not an advertising channel.
    crc_ok: the CRC matches (checked by the sniffer or recomputed here)."""

    pdu_type: int
    tx_random: bool
    addr: bytes
    adv_data: bytes
    rssi: int | None
    channel: int | None
    crc_ok: bool


_RF_TO_ADV_CHANNEL = {0: 37, 12: 38, 39: 39}


def parse_le_ll_phdr(frame: bytes) -> BleAdvert | None:
    """A legacy advertising PDU with AdvA from a link type 256 frame; None for anything else,
    for a length that does not fit, and for a frame whose CRC fails (corrupted on air)."""
    n = len(frame)
    if n < _PHDR.size + _AA_PDU.size + 3:
        return None
    rf, signal, _noise, _off, _ref, flags = _PHDR.unpack_from(frame, 0)
    aa, h0, length = _AA_PDU.unpack_from(frame, _PHDR.size)
    if aa != ADV_ACCESS_ADDRESS:
        return None
    pdu_type = h0 & 0x0F
    pdu_at = _PHDR.size + 4
    end = pdu_at + 2 + length
    if end + 3 > n or length > _MAX_LEGACY_PAYLOAD:
        return None
    if flags & PHDR_CRC_CHECKED:
        crc_ok = bool(flags & PHDR_CRC_VALID)
    else:
        crc = frame[end] | frame[end + 1] << 8 | frame[end + 2] << 16
        crc_ok = ble_crc(frame[pdu_at:end]) == crc
    if not crc_ok:
        return None
    if pdu_type not in _WITH_DATA and pdu_type != ADV_DIRECT_IND:
        return None
    if length < 6:
        return None
    if pdu_type == ADV_DIRECT_IND and length != 12:
        return None
    addr = frame[pdu_at + 2:pdu_at + 8][::-1]
    data = b"" if pdu_type == ADV_DIRECT_IND else frame[pdu_at + 8:end]
    return BleAdvert(
        pdu_type=pdu_type,
        tx_random=bool(h0 & 0x40),
        addr=addr,
        adv_data=data,
        rssi=signal if flags & PHDR_SIGNAL_VALID else None,
        channel=_RF_TO_ADV_CHANNEL.get(rf),
        crc_ok=True,
    )


@dataclass(frozen=True)
class AdvertData:
    """Decoded AD structures. service_uuids / service_data keys are 128-bit UUID strings;
    manufacturer_data keys are Bluetooth SIG company ids. tx_power: dBm (AD type 0x0A)."""

    flags: int | None = None
    local_name: str | None = None
    tx_power: int | None = None
    service_uuids: tuple[str, ...] = ()
    service_data: dict[str, bytes] = field(default_factory=dict)
    manufacturer_data: dict[int, bytes] = field(default_factory=dict)


def uuid16(u: int) -> str:
    return f"0000{u:04x}{BASE_UUID_TAIL}"


def uuid32(u: int) -> str:
    return f"{u:08x}{BASE_UUID_TAIL}"


def uuid128(le: bytes) -> str:
    h = le[::-1].hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# AD types (CSS Part A 1.x, assigned numbers 2.3)
_T_FLAGS, _T_NAME_SHORT, _T_NAME_COMPLETE, _T_TX = 0x01, 0x08, 0x09, 0x0A
_T_U16 = (0x02, 0x03)
_T_U32 = (0x04, 0x05)
_T_U128 = (0x06, 0x07)
_T_SD16, _T_SD32, _T_SD128, _T_MFR = 0x16, 0x20, 0x21, 0xFF


def parse_ad_structures(data: bytes | list[bytes] | tuple[bytes, ...]) -> AdvertData:
    """Decode AD structures of one payload, or of several (advertisement + scan response)."""
    chunks = (data,) if isinstance(data, (bytes, bytearray, memoryview)) else data
    flags = tx = None
    short_name = complete_name = None
    uuids: list[str] = []
    sdata: dict[str, bytes] = {}
    mdata: dict[int, bytes] = {}
    for chunk in chunks:
        chunk = bytes(chunk)
        total = len(chunk)
        off = 0
        while off + 2 < total:
            length = chunk[off]
            if length == 0:
                off += 1
                continue
            end = off + 1 + length
            if end > total:
                break
            typ = chunk[off + 1]
            body = chunk[off + 2:end]
            off = end
            blen = len(body)
            if typ == 0:
                continue
            if typ == _T_FLAGS and blen >= 1:
                flags = body[0]
            elif typ == _T_NAME_COMPLETE:
                complete_name = body.decode("utf-8", "replace")
            elif typ == _T_NAME_SHORT:
                if short_name is None:
                    short_name = body.decode("utf-8", "replace")
            elif typ == _T_TX:
                if blen == 1:
                    tx = body[0] - 256 if body[0] > 127 else body[0]
            elif typ in _T_U16:
                for i in range(0, blen - 1, 2):
                    _add(uuids, uuid16(_U16.unpack_from(body, i)[0]))
            elif typ in _T_U32:
                for i in range(0, blen - 3, 4):
                    _add(uuids, uuid32(_U32.unpack_from(body, i)[0]))
            elif typ in _T_U128:
                for i in range(0, blen - 15, 16):
                    _add(uuids, uuid128(body[i:i + 16]))
            elif typ == _T_SD16 and blen >= 2:
                sdata[uuid16(_U16.unpack_from(body, 0)[0])] = body[2:]
            elif typ == _T_SD32 and blen >= 4:
                sdata[uuid32(_U32.unpack_from(body, 0)[0])] = body[4:]
            elif typ == _T_SD128 and blen >= 16:
                sdata[uuid128(body[:16])] = body[16:]
            elif typ == _T_MFR and blen >= 2:
                mdata[_U16.unpack_from(body, 0)[0]] = body[2:]
    name = complete_name if complete_name is not None else short_name
    return AdvertData(flags, name, tx, tuple(uuids), sdata, mdata)


def _add(items: list[str], item: str) -> None:
    if item not in items:
        items.append(item)
