"""Property tests: generated valid records round-trip; arbitrary input raises only WireError.

Hypothesis prints the falsifying example and a ``@reproduce_failure`` line on failure; the
database is off so runs do not depend on earlier ones.
"""
from __future__ import annotations

import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.wire import (
    EVENT_FIELDS,
    EVENT_TYPES,
    DeadLetter,
    Event,
    PosTransaction,
    Sighting,
    SightingArrays,
    SightingsBatch,
    Status,
    Topic,
    WireError,
    decode_any,
)
from tests.wire.samples import SAMPLES

SETTINGS = settings(
    max_examples=250,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

ids = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)
tokens = st.from_regex(r"[A-Za-z0-9_.:=+/-]{1,64}", fullmatch=True)
times = st.floats(0.0, 4_102_444_800.0)
maybe = lambda s: st.none() | s  # noqa: E731

sightings = st.builds(
    Sighting,
    id=tokens,
    k=st.sampled_from(("ble", "wifi")),
    rssi=st.floats(-120.0, 0.0) | st.integers(-120, 0),
    n=st.integers(1, 1_000_000),
    tx=maybe(st.integers(-127, 127)),
    rnd=maybe(st.booleans()),
    fp=maybe(tokens),
    beacon=maybe(tokens),
    member=maybe(tokens),
    sq=maybe(st.integers(0, 4095)),
)
batches = st.builds(
    SightingsBatch,
    site=ids,
    gw=ids,
    seq=st.integers(0, 2**53 - 1),
    t=times,
    window_s=st.floats(0.001, 60.0),
    s=st.lists(sightings, max_size=20).map(tuple),
)
statuses = st.builds(
    Status,
    site=ids,
    gw=ids,
    t=times,
    state=st.sampled_from(("online", "offline")),
    version=st.from_regex(r"[\x21-\x7e]{1,64}", fullmatch=True),
    uptime_s=st.floats(0, 1e8),
    frames_per_s=st.dictionaries(st.sampled_from(("ble", "wifi")), st.floats(0, 1e6)),
    parse_errors=st.integers(0, 2**53 - 1),
    spool_depth=st.integers(0, 2**53 - 1),
    spool_dropped=st.integers(0, 2**53 - 1),
    cpu_temp_c=maybe(st.floats(-55, 150)),
)
_EVENT_VALUES = {
    "entrance": ids, "floor_from": st.just("L0"), "floor_to": st.just("L1"), "via": ids,
    "zone": ids, "dwell_s": st.floats(0, 2_592_000), "duration_s": st.floats(0, 2_592_000),
    "amount": st.floats(-1e9, 1e9), "currency": st.from_regex(r"[A-Z]{3}", fullmatch=True),
    "txn_id": tokens, "member": tokens,
}


@st.composite
def events(draw):
    kind = draw(st.sampled_from(EVENT_TYPES))
    required, allowed = EVENT_FIELDS[kind]
    extra = {k: draw(_EVENT_VALUES[k]) for k in required}
    extra.update({k: draw(maybe(_EVENT_VALUES[k])) for k in allowed})
    return Event(draw(ids), kind, draw(times), draw(tokens), **extra)


pos = st.builds(
    PosTransaction, site=ids, t=times, store=ids, amount=st.floats(-1e9, 1e9),
    currency=st.from_regex(r"[A-Z]{3}", fullmatch=True), txn_id=tokens, member=maybe(tokens),
)
deadletters = st.builds(
    DeadLetter.capture, site=ids, t=times, topic=st.text(max_size=600),
    data=st.binary(max_size=5000), reason=st.from_regex(r"[a-z][a-z0-9_]{0,31}", fullmatch=True),
    detail=st.text(max_size=600), field=maybe(st.text(max_size=200)),
)
records = batches | statuses | events() | pos | deadletters


@SETTINGS
@given(records)
def test_round_trip_is_exact_and_canonical(record):
    data = record.encode()
    again = type(record).decode(data)
    assert again == record
    assert again.encode() == data
    assert data == json.dumps(json.loads(data), separators=(",", ":")).encode()


@SETTINGS
@given(batches)
def test_array_decode_equals_object_decode(batch):
    _assert_same_columns(SightingsBatch.decode_arrays(batch.encode()), batch.arrays())


def _assert_same_columns(a: SightingArrays, b: SightingArrays) -> None:
    assert (a.site, a.gw, a.seq, a.t, a.window_s) == (b.site, b.gw, b.seq, b.t, b.window_s)
    assert a.id == b.id and a.fp == b.fp and a.beacon == b.beacon and a.member == b.member
    for name in ("kind", "n", "rnd"):
        assert getattr(a, name).dtype == getattr(b, name).dtype
        assert np.array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(a.tx, b.tx)
    # np.round and round() may differ by an ulp off the 0.1 dB grid; on it they agree exactly.
    np.testing.assert_allclose(a.rssi, b.rssi, rtol=0, atol=1e-9)


DECODERS = [
    SightingsBatch.decode,
    SightingsBatch.decode_arrays,
    Status.decode,
    Event.decode,
    PosTransaction.decode,
    DeadLetter.decode,
]


def _only_wire_errors(data: bytes) -> None:
    for decode in DECODERS:
        try:
            decode(data)
        except WireError as exc:
            assert exc.reason and isinstance(exc.detail, str)


@SETTINGS
@given(st.binary(max_size=2000))
def test_random_bytes_raise_only_wire_error(data):
    _only_wire_errors(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner,
                                                               max_size=5),
    max_leaves=30,
)


@SETTINGS
@given(json_values)
def test_arbitrary_json_raises_only_wire_error(value):
    _only_wire_errors(json.dumps(value).encode())


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


@st.composite
def mutated_samples(draw):
    """A golden sample with one value replaced, deleted, or one key added."""
    name = draw(st.sampled_from(sorted(SAMPLES)))
    obj = json.loads(SAMPLES[name].encode())
    path = draw(st.sampled_from([p for p in _paths(obj) if p]))
    parent = obj
    for key in path[:-1]:
        parent = parent[key]
    action = draw(st.sampled_from(("replace", "delete", "add")))
    if action == "delete":
        del parent[path[-1]]
    elif action == "add" and isinstance(parent, dict):
        parent[draw(st.text(max_size=8))] = draw(json_values)
    else:
        parent[path[-1]] = draw(json_values)
    return name, json.dumps(obj).encode()


@SETTINGS
@given(mutated_samples())
def test_mutated_samples_raise_only_wire_error(case):
    name, data = case
    _only_wire_errors(data)
    record = SAMPLES[name]
    topic = {
        SightingsBatch: lambda r: Topic.sightings(r.site, r.gw),
        Status: lambda r: Topic.status(r.site, r.gw),
        Event: lambda r: Topic.event(r.site, r.type),
        PosTransaction: lambda r: Topic.pos(r.site),
        DeadLetter: lambda r: Topic.deadletter(r.site),
    }[type(record)](record)
    try:
        decoded = decode_any(topic, data)
    except WireError:
        return
    assert decoded.encode() == type(record).decode(decoded.encode()).encode()


@SETTINGS
@given(mutated_samples().filter(lambda c: c[0].startswith("sightings")))
def test_both_batch_decoders_agree_on_mutations(case):
    _, data = case
    outcomes = []
    for decode in (SightingsBatch.decode, SightingsBatch.decode_arrays):
        try:
            outcomes.append(decode(data))
        except WireError as exc:
            outcomes.append((exc.reason, exc.field))
    a, b = outcomes
    if isinstance(a, tuple) or isinstance(b, tuple):
        assert a == b
    else:
        _assert_same_columns(b, a.arrays())


@SETTINGS
@given(st.text(max_size=120))
def test_topic_parse_raises_only_wire_error(text):
    try:
        topic = Topic.parse(text)
    except WireError as exc:
        assert exc.reason in ("bad_topic", "wrong_version", "unknown_event")
    else:
        assert str(topic) == text
