"""802.11 probe requests behind radiotap (pcap link type 127), and their IE fingerprint.

Probe requests carry the only thing a phone sends without association: a source address (usually
randomized, IEEE 802 locally administered bit set) and information elements. The elements that
describe the chipset and driver (rates, HT/VHT/HE capabilities, extended capabilities, vendor
OUIs, and the order they come in) stay the same across address rotations, so a hash of them is a
useful device-class fingerprint (Vanhoef et al., "Why MAC address randomization is not enough",
AsiaCCS 2016). Fields that change between bursts are left out: SSID content, DS parameter set
(the channel being probed), sequence numbers, WPS UUID/device names.
"""
from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from edge.parsers.radiotap import FLAG_BAD_FCS, FLAG_FCS, Radiotap, parse_radiotap

_HDR = struct.Struct("<BBH6s6s6sH")  # FC0, FC1, duration, addr1, addr2, addr3, seq ctl
_FC0_PROBE_REQ = 0x40  # protocol 0, type 0 (management), subtype 4 (IEEE 802.11-2020 9.2.4.1.3)
_FC1_ORDER = 0x80  # +HTC: a 4-byte HT Control field follows the header in management frames
_FCS_LEN = 4

IE_SSID, IE_DS = 0, 3
IE_VENDOR, IE_EXT = 221, 255
# Elements whose body is stable per device and kept whole in the fingerprint.
_KEEP_BODY = frozenset({1, 50, 45, 191, 127, 59, 70})  # rates, ext rates, HT, VHT, ext caps,
#                                                     supported op classes, RM enabled caps
# Element-extension ids (IE 255) kept whole: HE capabilities (35), EHT capabilities (108).
_KEEP_EXT = frozenset({35, 108})


@dataclass(frozen=True, slots=True)
class ProbeRequest:
    """src: transmitter address, display order. random: locally administered bit of src.
    seq: 802.11 sequence number (12 bits). ssid: raw SSID bytes (b"" = wildcard).
    rssi: dBm from radiotap, or None. channel / freq_mhz: from radiotap, or None.
    ie_ids: element ids in order (255 as 255.ext). fingerprint: 16 hex chars of SHA-256.
    truncated: the element list ended inside an element (the frame was cut short)."""

    src: bytes
    random: bool
    seq: int
    ssid: bytes
    rssi: int | None
    channel: int | None
    freq_mhz: int | None
    ie_ids: tuple[int, ...]
    fingerprint: str
    truncated: bool


def parse_radiotap_probe(frame: bytes) -> ProbeRequest | None:
    """A radiotap-framed probe request, or None if the frame is anything else or malformed."""
    rt = parse_radiotap(frame)
    if rt is None:
        return None
    return parse_probe_request(frame, rt)


def parse_probe_request(frame: bytes, rt: Radiotap) -> ProbeRequest | None:
    if rt.flags & FLAG_BAD_FCS:
        return None
    end = len(frame) - (_FCS_LEN if rt.flags & FLAG_FCS else 0)
    pos = rt.length
    if end - pos < _HDR.size:
        return None
    fc0, fc1, _dur, _a1, src, _a3, seqctl = _HDR.unpack_from(frame, pos)
    if fc0 != _FC0_PROBE_REQ:
        return None
    pos += _HDR.size
    if fc1 & _FC1_ORDER:
        pos += 4
        if pos > end:
            return None
    ssid = b""
    ids: list[int] = []
    canon = bytearray()
    truncated = False
    while pos < end:
        if pos + 2 > end:
            truncated = True
            break
        eid, elen = frame[pos], frame[pos + 1]
        body_at = pos + 2
        if body_at + elen > end:
            truncated = True
            break
        body = frame[body_at:body_at + elen]
        pos = body_at + elen
        if eid == IE_SSID:
            ssid = body
            ids.append(eid)
            canon.append(eid)  # its position counts, its content does not
            continue
        if eid == IE_EXT:
            if not body:
                continue
            ids.append(0x10000 | body[0])
            canon += b"\xff" + body[:1]
            if body[0] in _KEEP_EXT:
                canon += bytes((len(body),)) + body
            continue
        ids.append(eid)
        canon.append(eid)
        if eid in _KEEP_BODY:
            canon += bytes((elen,)) + body
        elif eid == IE_VENDOR:
            canon += body[:4]  # OUI + vendor type; the rest (e.g. WPS UUID) varies
    fp = hashlib.sha256(bytes(canon)).hexdigest()[:16]
    return ProbeRequest(
        src=src,
        random=bool(src[0] & 0x02),
        seq=seqctl >> 4,
        ssid=ssid,
        rssi=rt.dbm_signal,
        channel=rt.channel,
        freq_mhz=rt.freq_mhz,
        ie_ids=tuple(ids),
        fingerprint=fp,
        truncated=truncated,
    )
