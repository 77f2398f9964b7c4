"""The edge over firmware_sim's frames-level captures agrees with firmware_sim's own windows.

firmware_sim aggregates its radio events into windows independently (firmware_sim/windows.py)
and pseudonymizes them with edge.privacy; the edge decodes the byte-exact pcaps it writes. Every
window of every gateway must match field by field: ids, packet counts, RSSI, TX power,
randomized flag, probe fingerprint, registered beacon, member token.
"""
from __future__ import annotations

import pytest

from edge.aggregate import Aggregator
from edge.decode import FrameDecoder
from edge.pcap import read_capture
from edge.privacy import Pseudonymizer

SECRET = b"firmware-sim-edge-secret-0123456789"


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    from firmware_sim import SimConfig, simulate

    out = tmp_path_factory.mktemp("sim")
    return simulate(None, SimConfig(seed=3, duration_s=60, level="frames", concurrent=200),
                    out_dir=out)


def test_edge_windows_equal_firmware_sim_windows(sim):
    theirs: dict = {}
    for _t, b in sim.batches(SECRET):
        theirs.setdefault(b.gw, {})[b.t] = b
    assert sim.packets > 5_000
    compared = 0
    for gw in sim.gateway_ids:
        dec = FrameDecoder(gw, sim.member_uuid)
        seq = iter(range(10**9))
        agg = Aggregator(sim.site.id, gw, Pseudonymizer(SECRET), seq.__next__, 1.0,
                         sim.beacon_ids)
        for radio in ("ble", "wifi"):
            path = sim.captures.get((gw, radio))
            if path is None:
                continue
            for rec in read_capture(path):
                obs = dec.decode(rec.t, rec.linktype, rec.data)
                if obs is not None:
                    agg.add(obs)
        assert dec.stats.parse_errors == 0, gw
        ours = {b.t: b for b in agg.flush_all()}
        assert ours.keys() == theirs.get(gw, {}).keys(), gw
        for t, b in ours.items():
            key = lambda s: (s.k, s.id)  # noqa: E731
            assert sorted(b.s, key=key) == sorted(theirs[gw][t].s, key=key), (gw, t)
            compared += len(b.s)
    assert compared > 1000
    kinds = {(s.k, s.member is not None, s.beacon is not None, s.fp is not None)
             for g in theirs.values() for b in g.values() for s in b.s}
    # the comparison covered members, registered beacons and Wi-Fi fingerprints
    assert any(k[1] for k in kinds) and any(k[2] for k in kinds) and ("wifi", False, False,
                                                                      True) in kinds


def test_replaying_a_gateways_two_captures_through_the_agent_path(sim):
    """The BLE and Wi-Fi pcaps of one gateway replay merged in time, windows closed by the
    observations' timestamps as the agent does, and give firmware_sim's windows."""
    import asyncio

    from edge.scanners.frames import PcapReplayScanner

    gw = max(sim.gateway_ids, key=lambda g: sum(
        1 for r in ("ble", "wifi") if (g, r) in sim.captures))
    paths = [sim.captures[(gw, r)] for r in ("ble", "wifi") if (gw, r) in sim.captures]
    assert len(paths) == 2
    seq = iter(range(10**9))
    agg = Aggregator(sim.site.id, gw, Pseudonymizer(SECRET), seq.__next__, 1.0, sim.beacon_ids)
    out = []
    ts = []

    def sink(obs):
        ts.append(obs.t)
        agg.add(obs)
        out.extend(agg.flush(obs.t - 0.5))  # as edge.agent: newest observation minus grace

    sc = PcapReplayScanner(gw, sink, paths, FrameDecoder(gw, sim.member_uuid), speed=0)

    async def go():
        await sc.start()
        await sc.wait_done()

    asyncio.run(go())
    out.extend(agg.flush_all())
    assert ts == sorted(ts) and agg.stats.late_dropped == 0
    theirs = {b.t: b for _t, b in sim.batches(SECRET) if b.gw == gw}
    key = lambda s: (s.k, s.id)  # noqa: E731
    assert {b.t: sorted(b.s, key=key) for b in out} == \
        {t: sorted(b.s, key=key) for t, b in theirs.items()}
