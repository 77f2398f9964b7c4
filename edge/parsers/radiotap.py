"""Radiotap header (https://www.radiotap.org): walk the present bitmaps, extract what we use.

Only fields of radiotap-namespace words are decoded; the field table below gives (alignment,
size) per bit as defined on radiotap.org "Defined fields". A vendor namespace is skipped by its
skip_length. Alignment is relative to the start of the header, as the spec says.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

_HDR = struct.Struct("<BBHI")  # version, pad, length, first present word
_U32 = struct.Struct("<I")
_CHANNEL = struct.Struct("<HH")  # frequency MHz, flags
_VENDOR = struct.Struct("<3sBH")  # OUI, sub-namespace, skip_length

# bit -> (alignment, size); radiotap.org defined fields 0..27. Bit 28 (TLVs) has no fixed size.
_FIELDS: dict[int, tuple[int, int]] = {
    0: (8, 8), 1: (1, 1), 2: (1, 1), 3: (2, 4), 4: (1, 2), 5: (1, 1), 6: (1, 1), 7: (2, 2),
    8: (2, 2), 9: (2, 2), 10: (1, 1), 11: (1, 1), 12: (1, 1), 13: (1, 1), 14: (2, 2),
    15: (2, 2), 16: (1, 1), 17: (1, 1), 18: (4, 8), 19: (1, 3), 20: (4, 8), 21: (2, 12),
    22: (8, 12), 23: (2, 12), 24: (2, 12), 25: (2, 6), 26: (1, 1), 27: (2, 4),
}
_FLAGS, _CHAN, _DBM_SIGNAL = 1, 3, 5
_EXT, _NS_RADIOTAP, _NS_VENDOR = 31, 29, 30
FLAG_FCS = 0x10  # Flags field: frame includes FCS at the end
FLAG_BAD_FCS = 0x40


@dataclass(frozen=True, slots=True)
class Radiotap:
    """length: header length in bytes (the 802.11 frame starts there). flags: Flags field or 0.
    dbm_signal: antenna signal, dBm, or None. freq_mhz / channel: from the Channel field."""

    length: int
    flags: int
    dbm_signal: int | None
    freq_mhz: int | None
    channel: int | None


def freq_to_channel(freq: int) -> int | None:
    """IEEE 802.11 channel number of a centre frequency in MHz (2.4, 5, 6 GHz, 4.9 GHz Japan)."""
    if freq == 2484:
        return 14
    if 2412 <= freq <= 2472:
        return (freq - 2407) // 5
    if 4915 <= freq <= 4980:
        return (freq - 4000) // 5
    if 5955 <= freq <= 7115:
        return (freq - 5950) // 5
    if 5000 <= freq <= 5925:
        return (freq - 5000) // 5
    return None


def parse_radiotap(frame: bytes) -> Radiotap | None:
    """Decode a radiotap header; None if it is not one or a length does not fit."""
    n = len(frame)
    if n < _HDR.size:
        return None
    version, _pad, length, present = _HDR.unpack_from(frame, 0)
    if version != 0 or length < _HDR.size or length > n:
        return None
    words = [present]
    pos = _HDR.size
    while words[-1] & (1 << _EXT):
        if pos + 4 > length:
            return None
        words.append(_U32.unpack_from(frame, pos)[0])
        pos += 4
    flags = 0
    signal = freq = None
    ns_radiotap = True
    base = 0  # bit offset of the current word inside its namespace
    for word in words:
        if ns_radiotap:
            for bit in range(29):
                if not word & (1 << bit):
                    continue
                field = _FIELDS.get(bit + base)
                if field is None:  # unknown size: nothing after it can be located
                    return Radiotap(length, flags, signal, freq, _chan(freq))
                align, size = field
                pos = (pos + align - 1) & ~(align - 1)
                if pos + size > length:
                    return None
                idx = bit + base
                if idx == _FLAGS:
                    flags = frame[pos]
                elif idx == _CHAN:
                    freq = _CHANNEL.unpack_from(frame, pos)[0]
                elif idx == _DBM_SIGNAL and signal is None:
                    signal = frame[pos] - 256 if frame[pos] > 127 else frame[pos]
                pos += size
        if word & (1 << _NS_VENDOR):
            pos = (pos + 1) & ~1
            if pos + _VENDOR.size > length:
                return None
            skip = _VENDOR.unpack_from(frame, pos)[2]
            pos += _VENDOR.size + skip
            if pos > length:
                return None
            ns_radiotap, base = False, 0
        elif word & (1 << _NS_RADIOTAP):
            ns_radiotap, base = True, 0
        else:
            base += 32
    return Radiotap(length, flags, signal, freq, _chan(freq))


def _chan(freq: int | None) -> int | None:
    return None if freq is None else freq_to_channel(freq)
