"""Every frame in the pcaps, read back by scapy (an independent parser), against the truth."""
from __future__ import annotations

import struct
import uuid

import numpy as np
import pytest
from scapy.layers.bluetooth4LE import BTLE, BTLE_RF
from scapy.layers.dot11 import Dot11, Dot11Elt, Dot11ProbeReq, RadioTap
from scapy.utils import PcapReader

from firmware_sim import devices as dv
from firmware_sim import frames

from .conftest import read_csv

RF_TO_ADV = {0: 37, 12: 38, 39: 39}


def _mac(a: int) -> str:
    return dv.mac_str(a)


def _truth(received, gw_index: int, kind: int):
    rx = received[(received["gw"] == gw_index) & (received["kind"] == kind)]
    return rx[np.argsort(rx["tg"], kind="stable")]


def _busiest(frames_run, received, kind):
    counts = np.bincount(received["gw"][received["kind"] == kind],
                         minlength=len(frames_run.gateway_ids))
    return [int(k) for k in np.argsort(counts)[::-1][:3]]


def test_pcap_global_headers(frames_run):
    for (gw, radio), path in frames_run.captures.items():
        head = path.read_bytes()[:24]
        magic, vmaj, vmin, _, _, snap, lt = struct.unpack("<IHHiIII", head)
        assert (magic, vmaj, vmin) == (0xA1B2C3D4, 2, 4)
        assert lt == (256 if radio == "ble" else 127)


def test_ble_frames_match_truth(frames_run, received):
    addresses = read_csv(frames_run.truth_dir / "addresses.csv")
    valid = {}
    for row in addresses:
        if row["kind"] == "ble":
            valid.setdefault(row["address"], []).append((row["device"], float(row["from"]),
                                                         float(row["to"])))
    checked = 0
    for k in _busiest(frames_run, received, 0):
        truth = _truth(received, k, 0)
        pkts = list(PcapReader(str(frames_run.captures[(frames_run.gateway_ids[k], "ble")])))
        assert len(pkts) == len(truth) > 0
        for p, t in zip(pkts, truth):
            assert float(p.time) == pytest.approx(t["tg"], abs=1e-6)
            rf = p[BTLE_RF]
            assert rf.signal == t["rssi"]
            assert RF_TO_ADV[rf.rf_channel] == t["channel"]
            assert rf.reference_access_address == frames.ADV_ACCESS_ADDRESS
            ll = p[BTLE]
            assert ll.access_addr == 0x8E89BED6
            raw = bytes(p)
            pdu = raw[14:-3]
            assert BTLE.compute_crc(pdu) == raw[-3:]  # scapy's own CRC-24
            adv = ll.payload
            assert adv.TxAdd == int(t["rnd"])
            addr = adv.payload.AdvA
            assert addr == _mac(int(t["addr"]))
            # the address was the device's at that time (truth/addresses.csv)
            spans = valid[addr]
            dev = frames_run.device_ids[int(t["dev"])]
            assert any(d == dev and f - 1e-3 <= t["t"] <= to + 1e-3 for d, f, to in spans)
            data = bytes(adv.payload)[6:]
            if t["ftype"] in (dv.BLE_MEMBER, dv.BLE_REFBEACON):
                mfr = data[data.index(b"\x4c\x00\x02\x15") + 4:]
                u = str(uuid.UUID(bytes=mfr[:16]))
                major, minor, power = struct.unpack(">HHb", mfr[16:21])
                assert (major << 16 | minor) == t["value"]
                assert power == dv.BEACON_POWER
                assert u == (dv.MALL_APP_UUID if t["ftype"] == dv.BLE_MEMBER
                             else dv.REFERENCE_UUID)
            checked += 1
    assert checked > 500


def test_wifi_frames_match_truth(frames_run, received):
    checked = 0
    for k in _busiest(frames_run, received, 1):
        truth = _truth(received, k, 1)
        pkts = list(PcapReader(str(frames_run.captures[(frames_run.gateway_ids[k], "wifi")])))
        assert len(pkts) == len(truth) > 0
        for p, t in zip(pkts, truth):
            assert float(p.time) == pytest.approx(t["tg"], abs=1e-6)
            rt = p[RadioTap]
            assert rt.dBm_AntSignal == t["rssi"]
            assert rt.ChannelFrequency == 2407 + 5 * int(t["channel"])
            d = p[Dot11]
            assert (d.type, d.subtype) == (0, 4) and p.haslayer(Dot11ProbeReq)
            assert d.addr2 == _mac(int(t["addr"]))
            assert d.addr1 == "ff:ff:ff:ff:ff:ff" and d.addr3 == "ff:ff:ff:ff:ff:ff"
            assert d.SC >> 4 == t["seq"]
            assert bool(int(d.addr2[:2], 16) & 0x02) == bool(t["rnd"])
            elts = {}
            e = p.getlayer(Dot11Elt)
            while e is not None and isinstance(e, Dot11Elt):
                elts.setdefault(e.ID, e.info)
                e = e.payload
            assert elts[0] == dv.SSIDS[t["ftype"]]
            assert elts[3] == bytes([t["channel"]])
            checked += 1
    assert checked > 50


def test_frames_decode_with_the_edge_parsers(frames_run):
    """The edge's own parsers accept every frame (CRC, layout) - one ingestion path."""
    from edge.decode import FrameDecoder
    from edge.pcap import read_capture

    gw, path = next((k[0], v) for k, v in frames_run.captures.items() if k[1] == "ble")
    dec = FrameDecoder(gw, member_uuid=dv.MALL_APP_UUID)
    recs = list(read_capture(path))
    obs = [dec.decode(r.t, r.linktype, r.data) for r in recs]
    assert recs and all(o is not None for o in obs)
    wpath = frames_run.captures[(gw, "wifi")]
    wobs = [dec.decode(r.t, r.linktype, r.data) for r in read_capture(wpath)]
    assert wobs and all(o is not None for o in wobs)
    fps = set(frames_run.fingerprints)
    assert all(o.fingerprint in fps for o in wobs)


def test_crc24_known_vector():
    # An ADV_NONCONN_IND captured by scapy's own builder gives the reference CRC.
    pdu = bytes.fromhex("4225") + bytes(range(6)) + bytes.fromhex("020106") + bytes(28)
    ours = frames.crc24(np.frombuffer(pdu, np.uint8)[None, :])[0].tobytes()
    assert ours == BTLE.compute_crc(pdu)
    assert frames.crc24(np.frombuffer(pdu[:-1] + b"\x01", np.uint8)[None, :])[0].tobytes() \
        != ours
