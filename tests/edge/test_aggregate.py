"""Window aggregation: median RSSI, counts, burst dedupe, beacons, members, seq, late frames."""
from __future__ import annotations

import itertools

import pytest

from edge.aggregate import Aggregator
from edge.observation import Observation
from edge.privacy import OptOutList, Pseudonymizer, opt_out_hash
from gateway.wire import MAX_PAYLOAD_BYTES, MAX_SIGHTINGS, SightingsBatch

SECRET = b"0123456789abcdef-site-secret"
A = bytes.fromhex("da0000000001")
B = bytes.fromhex("001122334455")
BEACON = "41424344-4546-4748-4940-414243444546:1:2"


def _agg(**kw):
    seq = itertools.count(10)
    return Aggregator("mall1", "gw-01", Pseudonymizer(SECRET), lambda: next(seq), **kw)


def ob(t, addr=A, kind="ble", rssi=-60.0, **kw):
    kw.setdefault("random_addr", False)
    return Observation(t, "gw-01", kind, addr, rssi, kw.pop("channel", 37), **kw)


def test_median_count_and_window_close_by_time():
    agg = _agg()
    for t, r in [(100.1, -70), (100.2, -60), (100.5, -50), (100.9, -55), (101.2, -80)]:
        agg.add(ob(t, rssi=r))
    assert agg.flush(100.99) == []  # window 100 not over yet
    (batch,) = agg.flush(101.0)
    assert (batch.seq, batch.t, batch.window_s, batch.site, batch.gw) == (10, 100.0, 1.0,
                                                                          "mall1", "gw-01")
    (s,) = batch.s
    assert s.n == 4 and s.rssi == -57.5 and s.k == "ble"
    assert s.id == Pseudonymizer(SECRET).pseudonym(A, 100.0)
    assert SightingsBatch.decode(batch.encode()) == batch
    (b2,) = agg.flush_all()
    assert b2.seq == 11 and b2.s[0].rssi == -80 and b2.s[0].n == 1


def test_burst_on_several_channels_counted_once():
    agg = _agg()
    for ch in (1, 6, 11):
        agg.add(ob(5.1, kind="wifi", seq=300, channel=ch, rssi=-70 + ch, random_addr=True,
                   fingerprint="abcdef0123456789"))
    agg.add(ob(5.4, kind="wifi", seq=301, channel=1, rssi=-69))
    (batch,) = agg.flush(6.0)
    (s,) = batch.s
    assert s.n == 2 and s.rnd is True and s.fp == "abcdef0123456789"
    assert agg.stats.duplicates == 2
    assert s.sq == 301          # the newest sequence number, for chaining bursts at ingest


@pytest.mark.parametrize("seqs,last", [((4094, 4095, 0, 1), 1), ((1, 0, 4095), 1),
                                       ((7,), 7), ((2000, 2003), 2003)])
def test_newest_sequence_number_wraps_at_12_bits(seqs, last):
    agg = _agg()
    for i, q in enumerate(seqs):
        agg.add(ob(5.1 + 0.01 * i, kind="wifi", seq=q, channel=1, random_addr=True))
    (batch,) = agg.flush(6.0)
    assert batch.s[0].sq == last
    assert SightingsBatch.decode(batch.encode()).s[0].sq == last


def test_ble_and_wifi_of_same_address_are_separate_sightings():
    agg = _agg()
    agg.add(ob(1.0, kind="ble"))
    agg.add(ob(1.0, kind="wifi", seq=1))
    (batch,) = agg.flush(2.0)
    assert sorted(s.k for s in batch.s) == ["ble", "wifi"]


def test_registered_beacon_member_tx():
    agg = _agg(beacons=[BEACON.upper()])
    agg.add(ob(1.0, addr=A, tx_power=-59, beacon=BEACON))
    agg.add(ob(1.0, addr=B, tx_power=-59, beacon="00000000-0000-0000-0000-000000000000:1:1"))
    agg.add(ob(1.5, addr=bytes(6), member_token="m0001abcd"))
    (batch,) = agg.flush(2.0)
    by = {s.id: s for s in batch.s}
    p = Pseudonymizer(SECRET)
    assert by[p.pseudonym(A, 1.0)].beacon == BEACON and by[p.pseudonym(A, 1.0)].tx == -59
    assert by[p.pseudonym(B, 1.0)].beacon is None  # not registered
    assert by[p.pseudonym(bytes(6), 1.0)].member == "m0001abcd"


def test_late_opted_out_and_out_of_range_dropped():
    agg = _agg(opt_out=OptOutList(SECRET, [opt_out_hash(B, SECRET)]))
    agg.add(ob(10.0))
    agg.flush(11.0)
    agg.add(ob(10.5))  # window 10 already sent
    agg.add(ob(11.5, addr=B))
    agg.add(ob(11.5, rssi=5.0))
    agg.add(ob(11.5, rssi=-130.0))
    assert agg.flush(12.0) == []
    assert (agg.stats.late_dropped, agg.stats.opted_out, agg.stats.out_of_range) == (1, 1, 2)


def test_windows_flushed_oldest_first_and_seq_rises():
    agg = _agg(window_s=0.5)
    for t in (3.7, 1.2, 2.9, 1.4):
        agg.add(ob(t))
    batches = agg.flush(10.0)
    assert [b.t for b in batches] == [1.0, 2.5, 3.5]
    assert [b.seq for b in batches] == [10, 11, 12]
    assert agg.open_windows == 0


def test_more_devices_than_max_sightings_split():
    agg = _agg()
    for i in range(MAX_SIGHTINGS + 3):
        agg.add(ob(1.0, addr=i.to_bytes(6, "big")))
    batches = agg.flush(2.0)
    assert len(batches) >= 2 and all(len(b.s) <= MAX_SIGHTINGS for b in batches)
    assert all(len(b.encode()) <= MAX_PAYLOAD_BYTES for b in batches)
    assert len({s.id for b in batches for s in b.s}) == MAX_SIGHTINGS + 3
    assert [b.seq for b in batches] == list(range(10, 10 + len(batches)))


def test_long_tokens_split_by_payload_size():
    agg = _agg(beacons=["b" * 120])
    for i in range(3000):
        agg.add(ob(1.0, addr=i.to_bytes(6, "big"), beacon="b" * 120, member_token="m" * 128,
                   fingerprint="f" * 16, tx_power=-127))
    batches = agg.flush(2.0)
    assert len(batches) >= 2
    assert all(len(b.encode()) <= MAX_PAYLOAD_BYTES for b in batches)
    assert sum(len(b.s) for b in batches) == 3000


def test_window_validation():
    with pytest.raises(ValueError):
        _agg(window_s=0)
