"""Byte-exact frames, built for many packets at once (one numpy row per frame).

Wi-Fi: radiotap (version 0; Flags, Rate, Channel, dBm antenna signal, dBm antenna noise) then an
802.11 probe request (IEEE 802.11-2020 9.3.3.9) with SSID, rates, DS parameter set and the
model's capability and vendor elements. Link type 127.

BLE: the LINKTYPE_BLUETOOTH_LE_LL_WITH_PHDR pseudo-header (rf channel, signal dBm, noise dBm,
access-address offenses, reference access address, flags) then the LE link-layer advertising
packet: access address 0x8E89BED6, PDU header (type, TxAdd), AdvA, AdvData and the CRC-24
(Core Spec Vol 6 Part B 3.1.1: polynomial x^24+x^10+x^9+x^6+x^4+x^3+x+1, init 0x555555 on the
advertising channels, computed LSB first as transmitted). Link type 256.
"""
from __future__ import annotations

import struct
import uuid as _uuid

import numpy as np

from firmware_sim import devices as dv

LINKTYPE_RADIOTAP = 127
LINKTYPE_BLE_PHDR = 256
ADV_IND, ADV_NONCONN_IND = 0x0, 0x2
ADV_ACCESS_ADDRESS = 0x8E89BED6
WIFI_NOISE_DBM = -95
BLE_NOISE_DBM = -100
# dewhitened, signal valid, noise valid, ref AA valid, AA offenses valid, CRC checked, CRC valid
PHDR_FLAGS = 0x0001 | 0x0002 | 0x0004 | 0x0010 | 0x0020 | 0x0400 | 0x0800
ADV_TO_RF = {37: 0, 38: 12, 39: 39}  # advertising channel index -> RF channel (2402 + 2k MHz)
RADIOTAP_LEN = 16
_RADIOTAP = struct.Struct("<BBHIBBHHbb")
_WIFI_HDR_LEN = 24


def _crc_table() -> np.ndarray:
    t = np.zeros(256, np.uint32)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0xDA6000 if c & 1 else 0)
        t[i] = c
    return t


_CRC_T = _crc_table()
_CRC_INIT = 0xAAAAAA  # 0x555555 with each byte bit-reversed: the register runs LSB first


def crc24(pdu: np.ndarray) -> np.ndarray:
    """BLE CRC-24 of each row of a (n, L) uint8 array of PDUs -> (n, 3) uint8 as sent."""
    s = np.full(pdu.shape[0], _CRC_INIT, np.uint32)
    for j in range(pdu.shape[1]):
        s = (s >> 8) ^ _CRC_T[(s ^ pdu[:, j]) & 0xFF]
    return np.stack([s & 0xFF, (s >> 8) & 0xFF, (s >> 16) & 0xFF], axis=1).astype(np.uint8)


def _put_be(out: np.ndarray, col: int, values: np.ndarray, nbytes: int) -> None:
    v = values.astype(np.int64)
    for i in range(nbytes):
        out[:, col + i] = (v >> (8 * (nbytes - 1 - i))) & 0xFF


def _put_le(out: np.ndarray, col: int, values: np.ndarray, nbytes: int) -> None:
    v = values.astype(np.int64)
    for i in range(nbytes):
        out[:, col + i] = (v >> (8 * i)) & 0xFF


def wifi_freq(channel: np.ndarray) -> np.ndarray:
    return 2407 + 5 * np.asarray(channel, np.int64)


class ProbeTemplate:
    """One probe-request layout: a model's IEs with one SSID."""

    def __init__(self, model: dv.Model, ssid: bytes) -> None:
        ies = dv._ie(0, ssid) + model.pre_ds
        self.ds_col = RADIOTAP_LEN + _WIFI_HDR_LEN + len(ies) + 2
        ies += dv._ie(3, b"\x01") + model.post_ds
        head = _RADIOTAP.pack(0, 0, RADIOTAP_LEN, 0x6E, 0x00, 0x02, 2412, 0x00A0, 0,
                              WIFI_NOISE_DBM)
        mac = b"\x40\x00\x00\x00" + b"\xff" * 6 + b"\x00" * 6 + b"\xff" * 6 + b"\x00\x00"
        self.bytes = np.frombuffer(head + mac + ies, np.uint8)

    def build(self, addr, seq, channel, rssi) -> np.ndarray:
        out = np.tile(self.bytes, (len(addr), 1))
        _put_le(out, 10, wifi_freq(channel), 2)
        out[:, 14] = np.asarray(rssi).astype(np.int8).view(np.uint8)
        _put_be(out, RADIOTAP_LEN + 10, addr, 6)
        _put_le(out, RADIOTAP_LEN + 22, (np.asarray(seq) & 0xFFF) << 4, 2)
        out[:, self.ds_col] = channel
        return out


def _ibeacon_data(uuid: str) -> bytes:
    return (bytes.fromhex("020106") + bytes((0x1A, 0xFF, 0x4C, 0x00, 0x02, 0x15))
            + _uuid.UUID(uuid).bytes + b"\x00\x00\x00\x00" + struct.pack("b", dv.BEACON_POWER))


# frame kind -> (PDU type, TxAdd random, AdvData template, column of the varying field or -1)
BLE_KINDS = {
    dv.BLE_APPLE: (ADV_IND, True, bytes.fromhex("02011a0aff4c001005011c000000"), 11),
    dv.BLE_SAMSUNG: (ADV_NONCONN_IND, True,
                     bytes.fromhex("02011a") + bytes.fromhex("0fff75000102000101ff000000000000"),
                     -1),
    dv.BLE_GOOGLE: (ADV_NONCONN_IND, True, bytes.fromhex("03032cfe06162cfe00000000"), 9),
    dv.BLE_MEMBER: (ADV_NONCONN_IND, True, _ibeacon_data(dv.MALL_APP_UUID), 25),
    dv.BLE_REFBEACON: (ADV_NONCONN_IND, False, _ibeacon_data(dv.REFERENCE_UUID), 25),
    dv.BLE_POS: (ADV_IND, False, bytes.fromhex("020106") + bytes.fromhex("09ff5900504f53010203"),
                 -1),
}
PHDR_LEN = 10
_PDU_AT = PHDR_LEN + 4  # PDU header offset in the frame


def ble_frames(kind: int, addr, rf_channel, rssi, value=None) -> np.ndarray:
    """(n, L) uint8 frames of one BLE kind. value: 24-bit field of Apple/Google frames, or the
    iBeacon major<<16|minor of member and reference beacon frames."""
    pdu_type, tx_random, data, col = BLE_KINDS[kind]
    n = len(addr)
    length = 6 + len(data)
    tmpl = (bytes((0, 0, 0, 0)) + struct.pack("<IH", ADV_ACCESS_ADDRESS, PHDR_FLAGS)
            + struct.pack("<I", ADV_ACCESS_ADDRESS)
            + bytes((pdu_type | (0x40 if tx_random else 0), length)) + b"\x00" * 6 + data
            + b"\x00\x00\x00")
    out = np.tile(np.frombuffer(tmpl, np.uint8), (n, 1))
    out[:, 0] = rf_channel
    out[:, 1] = np.asarray(rssi).astype(np.int8).view(np.uint8)
    out[:, 2] = np.uint8(BLE_NOISE_DBM & 0xFF)
    _put_le(out, _PDU_AT + 2, addr, 6)  # AdvA goes least significant octet first
    if col >= 0 and value is not None:
        at = _PDU_AT + 8 + col
        if kind in (dv.BLE_MEMBER, dv.BLE_REFBEACON):
            _put_be(out, at, value, 4)  # major, minor big-endian (Apple iBeacon spec)
        else:
            _put_be(out, at, value, 3)
    end = _PDU_AT + 2 + length
    out[:, end:end + 3] = crc24(out[:, _PDU_AT:end])
    return out
