"""HCI LE Advertising Report events (Core Vol 4 Part E 7.7.65.2), as a Linux HCI socket or a
btmon/H4 log delivers them: H4 indicator, event code 0x3E, length, subevent 0x02, reports.

Strict about the report: its data length byte must match the bytes present (data then one RSSI
byte), so a report whose AD length does not match its payload is rejected, not guessed at. The H4
indicator and the event parameter length are not trusted (the packet's own framing delimits it;
hand-made test packets in beacontools carry 0x41 in both), as in beacontools.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

_EVT = struct.Struct("<BBBBB")  # H4 indicator, event code, parameter length, subevent, reports
_REPORT = struct.Struct("<BB6sB")  # event type, address type, address (LE), data length
LE_META_EVENT = 0x3E
LE_ADVERTISING_REPORT = 0x02


@dataclass(frozen=True, slots=True)
class HciAdvReport:
    """event_type: 0 ADV_IND .. 4 SCAN_RSP. random: address type is random (1) or random
    identity (3). addr: display order. data: AD structures. rssi: dBm (127 = unavailable -> None)."""

    event_type: int
    random: bool
    addr: bytes
    data: bytes
    rssi: int | None


def parse_hci_le_adv_report(packet: bytes) -> HciAdvReport | None:
    """The single report of an LE Advertising Report event, or None (strict; see module doc)."""
    if len(packet) < _EVT.size + _REPORT.size + 1:
        return None
    _h4, code, _plen, sub, nrep = _EVT.unpack_from(packet, 0)
    if code != LE_META_EVENT or sub != LE_ADVERTISING_REPORT or nrep != 1:
        return None
    etype, atype, addr, dlen = _REPORT.unpack_from(packet, _EVT.size)
    at = _EVT.size + _REPORT.size
    if at + dlen + 1 != len(packet) or dlen > 31:
        return None
    rssi = packet[at + dlen]
    rssi = rssi - 256 if rssi > 127 else rssi
    return HciAdvReport(etype, atype in (1, 3), addr[::-1], packet[at:at + dlen],
                        None if rssi == 127 else rssi)
