"""Nordic nRF Sniffer for Bluetooth LE frames (pcap link type 272, LINKTYPE_NORDIC_BLE).

Layout of sniffer protocol versions 2 and 3 (Wireshark packet-nordic_ble.c): board id (1),
payload length (LE16), protocol version (1), packet counter (LE16), packet id (1), then the
10-byte event header: header length (=10), flags (bit 0 CRC ok), channel, RSSI (negated dBm),
event counter (LE16), timestamp (LE32); then the air packet as in link type 256.
"""
from __future__ import annotations

import struct

from edge.parsers.ble import (
    _WITH_DATA,
    ADV_ACCESS_ADDRESS,
    ADV_DIRECT_IND,
    BleAdvert,
)

_HDR = struct.Struct("<BHBHBBBBB")  # board, payload len, version, counter, id, hlen, flags, ch, rssi
_AA = struct.Struct("<IBB")
_EVENT_HEADER_LEN = 10
_AIR_AT = 7 + _EVENT_HEADER_LEN


def parse_nordic_ble(frame: bytes) -> BleAdvert | None:
    n = len(frame)
    if n < _AIR_AT + _AA.size + 3:
        return None
    _board, plen, version, _cnt, _pid, hlen, flags, channel, rssi = _HDR.unpack_from(frame, 0)
    if version not in (2, 3) or hlen != _EVENT_HEADER_LEN or plen != n - 7:
        return None
    if not flags & 0x01:  # CRC failed
        return None
    aa, h0, length = _AA.unpack_from(frame, _AIR_AT)
    if aa != ADV_ACCESS_ADDRESS:
        return None
    pdu_type = h0 & 0x0F
    pdu_at = _AIR_AT + 4
    end = pdu_at + 2 + length
    if end + 3 > n or length < 6 or length > 37:
        return None
    if pdu_type not in _WITH_DATA and pdu_type != ADV_DIRECT_IND:
        return None
    if pdu_type == ADV_DIRECT_IND and length != 12:
        return None
    return BleAdvert(
        pdu_type=pdu_type,
        tx_random=bool(h0 & 0x40),
        addr=frame[pdu_at + 2:pdu_at + 8][::-1],
        adv_data=b"" if pdu_type == ADV_DIRECT_IND else frame[pdu_at + 8:end],
        rssi=-rssi,
        channel=channel if 37 <= channel <= 39 else None,
        crc_ok=True,
    )
