"""scapy: the readers, layers and field names our tests use as the independent parser.

tests/sim/test_frames.py and tests/edge/test_parsers_wifi.py check our frames and our parsers
against scapy. If scapy renamed a field or changed how a link type is dissected, those tests
would fail confusingly (or pass on an empty loop); here each thing they read is pinned on a
frame built by our test generator and written as a classic pcap, as the simulator writes them.
"""
from __future__ import annotations

import inspect

import pytest
from scapy.layers.bluetooth4LE import BTLE, BTLE_ADV, BTLE_ADV_NONCONN_IND, BTLE_RF
from scapy.layers.dot11 import Dot11, Dot11Elt, Dot11ProbeReq, RadioTap
from scapy.utils import PcapReader, rdpcap, wrpcap

from edge.pcap import LINKTYPE_BLE_LL_PHDR, LINKTYPE_RADIOTAP
from tests.edge.framegen import ibeacon_ad, ll_phdr_frame, probe_frame, write_pcap

SRC = bytes.fromhex("daa119000001")  # locally administered (randomized) probe source
ADDR = bytes.fromhex("c05e00000001")  # static random BLE address


def test_signatures_we_call():
    assert {"filename", "count"} <= set(inspect.signature(rdpcap).parameters)
    assert list(inspect.signature(BTLE.compute_crc).parameters)[:1] == ["pdu"]
    assert LINKTYPE_RADIOTAP == 127 and LINKTYPE_BLE_LL_PHDR == 256


def test_radiotap_probe_request_fields(tmp_path):
    ies = bytes([0, 4]) + b"mall" + bytes([1, 4, 2, 4, 11, 22]) + bytes([3, 1, 6])
    path = write_pcap(tmp_path / "wifi.pcap", LINKTYPE_RADIOTAP,
                      [(1700000000.25, probe_frame(SRC, 1234, rssi=-63, freq=2437, ies=ies)),
                       (1700000001.5, probe_frame(SRC, 1235, rssi=-64, freq=2412, ies=ies))])
    pkts = rdpcap(str(path), count=1)
    assert len(pkts) == 1  # count= stops early (test_parsers_wifi reads 900 of a large file)
    (p, p2) = list(PcapReader(str(path)))
    assert float(p.time) == pytest.approx(1700000000.25, abs=1e-6)
    rt = p[RadioTap]
    assert (rt.dBm_AntSignal, rt.ChannelFrequency) == (-63, 2437)
    assert p2[RadioTap].ChannelFrequency == 2412
    d = p[Dot11]
    assert (d.type, d.subtype) == (0, 4) and p.haslayer(Dot11ProbeReq)
    assert d.addr2 == SRC.hex(":") and d.addr1 == d.addr3 == "ff:ff:ff:ff:ff:ff"
    assert d.SC >> 4 == 1234
    elts = []
    e = p.getlayer(Dot11Elt)
    while e is not None and isinstance(e, Dot11Elt):  # the walk test_frames.py does
        elts.append((e.ID, bytes(e.info)))
        e = e.payload
    assert [i for i, _ in elts] == [0, 1, 3]
    assert elts[0][1] == b"mall" and elts[2][1] == bytes([6])


def test_ble_ll_phdr_fields_and_crc(tmp_path):
    ad = ibeacon_ad("e2c56db5-dffb-48d2-b060-d0f5a71096e0", 7, 9)
    path = write_pcap(tmp_path / "ble.pcap", LINKTYPE_BLE_LL_PHDR,
                      [(1700000000.0, ll_phdr_frame(ADDR, ad, rssi=-58, pdu_type=2, rf=12))])
    (p,) = list(PcapReader(str(path)))
    rf = p[BTLE_RF]
    assert (rf.signal, rf.rf_channel, rf.reference_access_address) == (-58, 12, 0x8E89BED6)
    ll = p[BTLE]
    assert ll.access_addr == 0x8E89BED6
    adv = ll.payload
    assert isinstance(adv, BTLE_ADV) and adv.TxAdd == 1
    assert isinstance(adv.payload, BTLE_ADV_NONCONN_IND)
    assert adv.payload.AdvA == ADDR.hex(":")
    raw = bytes(p)
    pdu = raw[14:-3]  # after the 10-byte PHDR and the access address; before the CRC
    assert BTLE.compute_crc(pdu) == raw[-3:]
    assert BTLE.compute_crc(pdu[:-1] + bytes([pdu[-1] ^ 1])) != raw[-3:]
    assert bytes(adv.payload)[6:] == ad


def test_scapy_written_pcap_round_trips(tmp_path):
    # Scapy builds the reference frames (tests/sim/test_frames.py:test_crc24_known_vector).
    frame = (BTLE_RF(rf_channel=0, signal=-60) / BTLE(access_addr=0x8E89BED6) / BTLE_ADV(TxAdd=1)
             / BTLE_ADV_NONCONN_IND(AdvA=ADDR.hex(":"), data=b"\x02\x01\x06"))
    wrpcap(str(tmp_path / "s.pcap"), [frame])
    (back,) = rdpcap(str(tmp_path / "s.pcap"))
    assert bytes(back) == bytes(frame)
    raw = bytes(back)
    assert BTLE.compute_crc(raw[14:-3]) == raw[-3:]
    assert back[BTLE_ADV_NONCONN_IND].AdvA == ADDR.hex(":")
