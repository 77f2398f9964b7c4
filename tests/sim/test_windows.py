"""Window level equals what the edge agent makes of the frames; batches are valid wire."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from edge.aggregate import Aggregator
from edge.decode import FrameDecoder
from edge.pcap import read_capture
from edge.privacy import Pseudonymizer
from firmware_sim import WINDOW_DTYPE, simulate
from firmware_sim import devices as dv
from gateway.wire import SightingsBatch

from .conftest import small_config

SECRET = b"test-site-secret-0123456789"


@pytest.fixture(scope="module")
def windows_run(site, frames_run):
    res = simulate(site, small_config("windows"))
    assert res.config.seed == frames_run.config.seed
    return res


def _edge_batches(frames_run, gw: str):
    dec = FrameDecoder(gw, member_uuid=dv.MALL_APP_UUID)
    recs = []
    for radio in ("ble", "wifi"):
        path = frames_run.captures.get((gw, radio))
        if path is not None:
            recs.extend(read_capture(path))
    recs.sort(key=lambda r: r.t)
    seq = itertools.count(1)
    agg = Aggregator(frames_run.site.id, gw, Pseudonymizer(SECRET), lambda: next(seq),
                     beacons=frames_run.beacon_ids)
    for r in recs:
        obs = dec.decode(r.t, r.linktype, r.data)
        assert obs is not None
        agg.add(obs)
    return agg.flush_all()


def test_batches_equal_the_edge_aggregation_of_the_frames(frames_run, windows_run):
    ours = {}
    for t, b in windows_run.batches(SECRET):
        ours.setdefault(b.gw, []).append(b)
    busiest = sorted(ours, key=lambda g: -sum(len(b.s) for b in ours[g]))[:4]
    compared = 0
    for gw in busiest:
        edge = _edge_batches(frames_run, gw)
        assert [(b.t, b.seq) for b in edge] == [(b.t, b.seq) for b in ours[gw]]
        for e, o in zip(edge, ours[gw]):
            assert e.s == o.s
            compared += len(o.s)
    assert compared > 500


def test_window_array_fields(windows_run, frames_run):
    w = windows_run.windows
    assert w.dtype == WINDOW_DTYPE and len(w) > 1000
    assert (np.diff(w["t"]) >= 0).all()
    assert set(np.unique(w["kind"])) == {0, 1}
    assert (w["n"] >= 1).all() and (w["rssi"] <= -1).all() and (w["rssi"] >= -120).all()
    assert (w["fp"][w["kind"] == 0] == -1).all() and (w["fp"][w["kind"] == 1] >= 0).all()
    assert (w["member"] >= 0).any() and (w["beacon"] >= 0).any()
    assert (w["tx"][w["beacon"] >= 0] == dv.BEACON_POWER).all()
    # members are only heard from member devices; beacons only from fixed beacons
    members = windows_run.world.crowd.member
    assert (members[w["device"][w["member"] >= 0]] >= 0).all()
    kinds = np.array(windows_run.world.crowd.kind)
    assert (kinds[w["device"][w["beacon"] >= 0]] == "beacon").all()
    # the truth columns agree with positions.csv of the same seed's frames run
    assert windows_run.device_ids == frames_run.device_ids


def test_batches_roundtrip_through_the_wire_codec(windows_run):
    n = 0
    last = -1.0
    seqs = {}
    for t, b in windows_run.batches(SECRET):
        assert t >= last
        last = t
        assert SightingsBatch.decode(b.encode()) == b
        assert seqs.get(b.gw, 0) + 1 == b.seq
        seqs[b.gw] = b.seq
        n += 1
    assert n > 100


def test_streaming_equals_the_cached_array(windows_run):
    parts = [p for p in windows_run.iter_windows() if len(p)]
    assert np.array_equal(np.concatenate(parts), windows_run.windows)
