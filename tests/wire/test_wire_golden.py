"""Golden payloads (tests/wire/golden/*.json, no trailing newline) and the round-trip table.

The golden files were written once by encode() and read by eye against docs/wire-v1.md; a
change to any of them is a change of the wire contract.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from gateway.wire import (
    DeadLetter,
    Event,
    PosTransaction,
    Sighting,
    SightingsBatch,
    Status,
    Topic,
    WireError,
    decode_any,
)
from tests.wire.samples import SAMPLES

GOLDEN = Path(__file__).parent / "golden"


def _topic_of(record) -> Topic:
    if isinstance(record, SightingsBatch):
        return Topic.sightings(record.site, record.gw)
    if isinstance(record, Status):
        return Topic.status(record.site, record.gw)
    if isinstance(record, Event):
        return Topic.event(record.site, record.type)
    if isinstance(record, PosTransaction):
        return Topic.pos(record.site)
    return Topic.deadletter(record.site)


def test_every_golden_file_has_a_sample_and_back():
    assert sorted(p.stem for p in GOLDEN.glob("*.json")) == sorted(SAMPLES)


def test_every_record_kind_has_a_golden_file():
    kinds = {type(r) for r in SAMPLES.values()}
    assert kinds == {SightingsBatch, Status, Event, PosTransaction, DeadLetter}
    assert {r.type for r in SAMPLES.values() if isinstance(r, Event)} == {
        "passby", "entry", "exit", "floor_change", "zone_enter", "zone_exit", "purchase"
    }


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_encode_matches_golden_bytes(name):
    assert SAMPLES[name].encode() == (GOLDEN / f"{name}.json").read_bytes()


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_decode_golden_gives_sample(name):
    record = SAMPLES[name]
    data = (GOLDEN / f"{name}.json").read_bytes()
    assert type(record).decode(data) == record
    assert decode_any(_topic_of(record), data) == record
    assert decode_any(str(_topic_of(record)), data) == record


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_golden_is_compact_canonical_json(name):
    data = (GOLDEN / f"{name}.json").read_bytes()
    obj = json.loads(data)
    assert data == json.dumps(obj, separators=(",", ":")).encode("ascii")
    assert list(obj)[0] == "v" and obj["v"] == 1


def test_golden_sightings_field_units_as_documented():
    obj = json.loads((GOLDEN / "sightings_full.json").read_bytes())
    assert list(obj) == ["v", "site", "gw", "seq", "t", "window_s", "s"]
    assert obj["s"][1] == {"id": "b64url_Zm9vYmFy-_", "k": "ble", "rssi": -81.0, "n": 3,
                           "tx": -59, "rnd": True}


# Values that construction normalizes: what goes in, what comes out on the wire.
NORMALIZED = [
    (lambda: SightingsBatch("m", "g", 1, 1.0004, 0.9996, ()), b'"t":1.0,"window_s":1.0'),
    (lambda: SightingsBatch("m", "g", 1, 1, 2, ()), b'"t":1.0,"window_s":2.0'),
    (
        lambda: SightingsBatch("m", "g", 1, 1.0, 1.0, [SightingsBatch.decode(
            b'{"v":1,"site":"m","gw":"g","seq":1,"t":1,"window_s":1,'
            b'"s":[{"id":"a","k":"ble","rssi":-70,"n":1}]}').s[0]]),
        b'"rssi":-70.0',
    ),
    (
        lambda: SightingsBatch("m", "g", 1, 1.0, 1.0, [
            dataclasses.replace(SAMPLES["sightings_full"].s[0], rssi=-0.04)]),
        b'"rssi":0.0,',
    ),
    (
        lambda: SightingsBatch("m", "g", 1, 1.0, 1.0, [
            dataclasses.replace(SAMPLES["sightings_full"].s[0], rssi=-67.26)]),
        b'"rssi":-67.3,',
    ),
    (lambda: PosTransaction("m", 5, "s", 10, "EUR", "x"), b'"amount":10.0,'),
    (lambda: PosTransaction("m", 5, "s", 0.1 + 0.2, "EUR", "x"), b'"amount":0.3,'),
    (lambda: Status("m", "g", 2.0, "online", "1", frames_per_s={"wifi": 1, "ble": 1 / 3}),
     b'"frames_per_s":{"ble":0.33,"wifi":1.0}'),
]


@pytest.mark.parametrize("make,fragment", NORMALIZED)
def test_construction_normalizes_numbers(make, fragment):
    record = make()
    data = record.encode()
    assert fragment in data
    again = type(record).decode(data)
    assert again == record and again.encode() == data


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_unknown_keys_are_ignored_within_v1(name):
    record = SAMPLES[name]
    obj = json.loads(record.encode())
    obj["zz_future"] = {"nested": [1, 2]}
    if isinstance(record, SightingsBatch) and obj["s"]:
        obj["s"][0]["zz_future"] = 1
    assert type(record).decode(json.dumps(obj).encode()) == record


def test_deadletter_capture_truncates_and_remembers_length():
    data = bytes(range(256)) * 40  # 10240 bytes, not UTF-8
    dl = DeadLetter.capture("m", 1.0, "x" * 2000, data, "bad_json", "d" * 2000, "f" * 500)
    assert dl.payload == data[:4096] and dl.payload_len == 10240 and dl.truncated
    assert len(dl.topic) == 512 and len(dl.detail) == 512 and len(dl.field) == 128
    assert len(dl.encode()) < 16 * 1024
    assert DeadLetter.decode(dl.encode()) == dl


def test_deadletter_from_error_keeps_reason_and_field():
    bad = b'{"v":1,"site":"m","gw":"g","seq":1,"t":1,"window_s":1,"s":[{"id":"a","k":"ble",' \
          b'"rssi":5,"n":1}]}'
    with pytest.raises(WireError) as info:
        SightingsBatch.decode(bad)
    dl = DeadLetter.from_error("m", 9.0, "mallsense/v1/m/gw/g/sightings", bad, info.value)
    assert (dl.reason, dl.field, dl.payload) == ("rssi_range", "s[0].rssi", bad)
    assert not dl.truncated


def test_last_will_is_offline_with_zero_counters():
    will = Status.last_will("m", "g", 12.0, "0.1.0")
    assert (will.state, will.t, will.uptime_s, will.frames_per_s, will.spool_depth) == (
        "offline", 12.0, 0.0, {}, 0)


def test_numpy_scalars_are_accepted_and_normalized():
    import numpy as np

    s = Sighting(np.str_("ab"), "ble", np.float32(-67.26), np.int64(3), tx=np.int8(-59),
                 rnd=np.bool_(True))
    assert (type(s.rssi), type(s.n), type(s.tx), type(s.rnd)) == (float, int, int, bool)
    batch = SightingsBatch("m", "g", np.uint32(5), np.float64(10.5), np.float32(1.0), [s])
    assert batch.encode() == (
        b'{"v":1,"site":"m","gw":"g","seq":5,"t":10.5,"window_s":1.0,'
        b'"s":[{"id":"ab","k":"ble","rssi":-67.3,"n":3,"tx":-59,"rnd":true}]}'
    )
    with pytest.raises(WireError) as info:
        Sighting("ab", "ble", -60.0, np.float64(3.0))
    assert (info.value.reason, info.value.field) == ("wrong_type", "n")


def test_decode_arrays_of_golden_batch():
    cols = SightingsBatch.decode_arrays((GOLDEN / "sightings_full.json").read_bytes())
    assert (cols.site, cols.gw, cols.seq, cols.t, cols.window_s) == (
        "mall-1", "gw-01", 4711, 1763900000.25, 1.0)
    assert cols.id == ["3f9a0c1e2b4d5a6f", "b64url_Zm9vYmFy-_", "aa01", "c0ffee00", "deadbeef"]
    assert cols.kind.tolist() == [0, 0, 0, 1, 1]
    assert cols.rssi.tolist() == [-67.3, -81.0, -55.5, -72.4, -120.0]
    assert cols.n.tolist() == [12, 3, 40, 2, 1]
    assert cols.tx.tolist()[1:3] == [-59.0, -59.0] and np.isnan(cols.tx[[0, 3, 4]]).all()
    assert cols.rnd.tolist() == [-1, 1, 0, 1, -1]
    assert cols.fp == [None, None, None, "e3b0c44298fc1c14", None]
    assert cols.beacon[2] == "f7826da6-4fa2-4e98-8024-bc5b71e0893e:100:7"
    assert cols.member == [None, None, None, None, "m:7f3a9e"]
    assert len(cols) == 5
