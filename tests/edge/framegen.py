"""Byte-exact frames built for tests (what firmware_sim emits at frames level), and a pcap writer."""
from __future__ import annotations

import struct
from pathlib import Path

from edge.parsers.ble import ble_crc


def ll_phdr_frame(addr: bytes, adv_data: bytes, rssi: int = -60, pdu_type: int = 0,
                  tx_random: bool = True, rf: int = 0) -> bytes:
    """A link type 256 frame: PHDR (signal valid, dewhitened) + advertising PDU + CRC."""
    payload = addr[::-1] + adv_data
    pdu = bytes([pdu_type | (0x40 if tx_random else 0), len(payload)]) + payload
    return (struct.pack("<BbbBIH", rf, rssi, -95, 0, 0x8E89BED6, 0x0003)
            + struct.pack("<I", 0x8E89BED6) + pdu + ble_crc(pdu).to_bytes(3, "little"))


def ibeacon_ad(uuid: str, major: int, minor: int, power: int = -59) -> bytes:
    body = struct.pack("<H", 0x004C) + b"\x02\x15" + bytes.fromhex(uuid.replace("-", "")) + \
        struct.pack(">HHb", major, minor, power)
    return b"\x02\x01\x06" + bytes([len(body) + 1, 0xFF]) + body


def probe_frame(src: bytes, seq: int, rssi: int = -70, freq: int = 2437,
                ies: bytes = bytes([0, 0, 1, 4, 2, 4, 11, 22, 45, 2, 0x2D, 0x1A])) -> bytes:
    """A link type 127 frame: radiotap (channel, dBm signal) + probe request."""
    rt = struct.pack("<BBHI", 0, 0, 13, (1 << 3) | (1 << 5)) + struct.pack("<HHb", freq, 0xA0,
                                                                           rssi)
    hdr = struct.pack("<BBH6s6s6sH", 0x40, 0, 0, b"\xff" * 6, src, b"\xff" * 6, seq << 4)
    return rt + hdr + ies


def write_pcap(path: Path, linktype: int, frames: list[tuple[float, bytes]]) -> Path:
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
        for t, data in frames:
            sec = int(t)
            f.write(struct.pack("<IIII", sec, int(round((t - sec) * 1e6)), len(data), len(data)))
            f.write(data)
    return path


def device_addr(i: int, random: bool = True) -> bytes:
    first = 0xC0 if random else 0x00  # BLE static random: top two bits set
    return bytes([first | (i >> 32 & 0x3F), 0x5E, (i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF,
                  0x42])
