"""Radiotap + probe-request parser on the real Brno captures and on built frames."""
from __future__ import annotations

import struct

import pytest

from edge.parsers.radiotap import freq_to_channel, parse_radiotap
from edge.parsers.wifi import parse_radiotap_probe
from edge.pcap import LINKTYPE_RADIOTAP, read_capture

# README: "probe-fryza-brno/ (MIT) Source: github.com/tomas-fryza/probe-request-project,
# DATA/sc6-61 ... position_{1,2}/sc6-61_2024-03-16_anonymized.pcap: classic pcap, linktype 127
# (radiotap + 802.11), every frame a probe request; radiotap carries dBm signal and channel
# frequency; 2,507 and 4,453 frames."
PROBE_PCAPS = [("position_1", 2507), ("position_2", 4453)]


def _path(real_data, pos):
    return real_data / "probe-fryza-brno" / pos / "sc6-61_2024-03-16_anonymized.pcap"


@pytest.mark.parametrize("pos,frames", PROBE_PCAPS)
def test_every_probe_frame_parsed(real_data, pos, frames):
    recs = list(read_capture(_path(real_data, pos)))
    assert len(recs) == frames
    assert {r.linktype for r in recs} == {LINKTYPE_RADIOTAP}
    probes = [parse_radiotap_probe(r.data) for r in recs]
    assert all(p is not None for p in probes)
    assert all(-100 <= p.rssi <= -10 for p in probes)
    assert all(1 <= p.channel <= 14 for p in probes)
    assert not any(p.truncated for p in probes)
    # Randomized (locally administered) sources dominate modern phones' probes.
    assert 0 < sum(p.random for p in probes) < frames
    # The fingerprint groups addresses: far fewer fingerprints than source addresses.
    assert len({p.fingerprint for p in probes}) < len({p.src for p in probes})


@pytest.mark.parametrize("pos,frames", PROBE_PCAPS)
def test_sample_matches_scapy(real_data, pos, frames):
    from scapy.all import Dot11, Dot11Elt, RadioTap, rdpcap  # noqa: F401 - registers layers

    pkts = rdpcap(str(_path(real_data, pos)), count=900)  # dissecting all of it is slow
    assert len(pkts) == 900
    for pkt in pkts[::6]:
        ours = parse_radiotap_probe(bytes(pkt))
        rt = pkt[RadioTap]
        assert ours.rssi == rt.dBm_AntSignal
        assert ours.freq_mhz == rt.ChannelFrequency
        d11 = pkt[Dot11]
        assert ours.src.hex(":") == d11.addr2
        assert ours.seq == d11.SC >> 4
        ids = []
        elt = pkt.getlayer(Dot11Elt)
        while elt is not None and isinstance(elt, Dot11Elt):
            ids.append(elt.ID)
            if elt.ID == 0:
                assert ours.ssid == bytes(elt.info)
            elt = elt.payload.getlayer(Dot11Elt)
        assert [i if i < 0x10000 else 255 for i in ours.ie_ids] == ids


def _rt(present_words: list[int], fields: bytes) -> bytes:
    hdr_len = 4 + 4 * len(present_words) + len(fields)
    return struct.pack("<BBH", 0, 0, hdr_len) + b"".join(struct.pack("<I", w) for w in
                                                         present_words) + fields


def _probe(src: bytes, seq: int, ies: bytes) -> bytes:
    return struct.pack("<BBH6s6s6sH", 0x40, 0, 0, b"\xff" * 6, src, b"\xff" * 6, seq << 4) + ies


IES = (bytes([0, 4]) + b"home" + bytes([1, 4, 2, 4, 11, 22]) + bytes([3, 1, 6])
       + bytes([45, 2, 0x2D, 0x1A]) + bytes([221, 6, 0x00, 0x50, 0xF2, 4, 9, 9]))


def test_radiotap_alignment_and_extended_bitmaps():
    # TSFT (8-aligned) forces padding; a second radiotap-namespace word (bit 29 + ext) carries a
    # per-antenna signal that must not override the combined one of word 0.
    w0 = (1 << 0) | (1 << 1) | (1 << 3) | (1 << 5) | (1 << 29) | (1 << 31)
    w1 = (1 << 5) | (1 << 11)
    hdr_fixed = 4 + 8  # version/pad/len + two words
    fields = b"\x00" * ((8 - hdr_fixed % 8) % 8)  # align TSFT
    fields += struct.pack("<Q", 123) + bytes([0x10]) + b"\x00"  # TSFT, flags (FCS), pad to 2
    fields += struct.pack("<HH", 2437, 0x00A0) + bytes([0xC4])  # channel 6, -60 dBm
    fields += bytes([0xB0, 1])  # antenna 1: -80 dBm, antenna index
    rt = _rt([w0, w1], fields)
    parsed = parse_radiotap(rt)
    assert parsed.dbm_signal == -60 and parsed.channel == 6 and parsed.flags == 0x10
    frame = rt + _probe(bytes.fromhex("da0000000001"), 77, IES) + b"FCS!"
    p = parse_radiotap_probe(frame)
    assert p is not None and p.seq == 77 and p.ssid == b"home" and p.random
    assert p.ie_ids == (0, 1, 3, 45, 221) and not p.truncated


def test_radiotap_vendor_namespace_skipped():
    w0 = (1 << 5) | (1 << 30) | (1 << 31)
    w1 = 0x00000001  # vendor bits: meaning unknown to us, covered by skip_length
    fields = bytes([0xC8]) + b"\x00"  # -56 dBm, pad to 2 for the vendor header
    fields += b"\x00\x11\x22" + bytes([0]) + struct.pack("<H", 5) + b"\xEE" * 5
    rt = _rt([w0, w1], fields)
    p = parse_radiotap(rt)
    assert p.dbm_signal == -56 and p.length == len(rt)
    bad = bytearray(rt)
    bad[-7:-5] = struct.pack("<H", 50)  # skip_length beyond the header
    assert parse_radiotap(bytes(bad)) is None


def test_fingerprint_ignores_ssid_channel_seq_but_not_caps():
    src = bytes.fromhex("da0000000001")
    rt = _rt([1 << 5], bytes([0xC4]))
    base = parse_radiotap_probe(rt + _probe(src, 1, IES)).fingerprint
    other_ssid = IES.replace(b"home", b"cafe").replace(bytes([3, 1, 6]), bytes([3, 1, 11]))
    other_wps = IES[:-2] + b"\x01\x02"
    assert parse_radiotap_probe(rt + _probe(src, 999, other_ssid)).fingerprint == base
    assert parse_radiotap_probe(rt + _probe(src, 2, other_wps)).fingerprint == base
    other_ht = IES.replace(bytes([45, 2, 0x2D, 0x1A]), bytes([45, 2, 0x2C, 0x1A]))
    assert parse_radiotap_probe(rt + _probe(src, 1, other_ht)).fingerprint != base
    reordered = IES[6:] + IES[:6]
    assert parse_radiotap_probe(rt + _probe(src, 1, reordered)).fingerprint != base


def test_not_a_probe_and_truncations():
    rt = _rt([1 << 5], bytes([0xC4]))
    beacon = bytearray(_probe(bytes(6), 1, IES))
    beacon[0] = 0x80
    assert parse_radiotap_probe(rt + bytes(beacon)) is None
    full = rt + _probe(bytes(6), 1, IES)
    for cut in range(len(rt) + 24):
        assert parse_radiotap_probe(full[:cut]) is None
    p = parse_radiotap_probe(full[:-1])
    assert p is not None and p.truncated
    assert parse_radiotap(b"\x01\x00\x08\x00\x00\x00\x00\x00") is None  # version 1


@pytest.mark.parametrize("freq,chan", [(2412, 1), (2437, 6), (2462, 11), (2484, 14),
                                       (5180, 36), (5825, 165), (5955, 1), (4920, 184),
                                       (900, None)])
def test_freq_to_channel(freq, chan):
    assert freq_to_channel(freq) == chan
