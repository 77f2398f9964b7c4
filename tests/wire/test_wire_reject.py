"""One test per rejection reason: the decoder raises WireError with that code and field."""
from __future__ import annotations

import copy
import json

import pytest

from gateway.wire import (
    MAX_PAYLOAD_BYTES,
    MAX_SIGHTINGS,
    REASONS,
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


def _obj(name: str) -> dict:
    return json.loads(SAMPLES[name].encode())


BATCH = _obj("sightings_full")


def _batch(**changes) -> dict:
    obj = copy.deepcopy(BATCH)
    obj.update(changes)
    return obj


def _sighting(i: int = 0, drop: str | None = None, **changes) -> dict:
    obj = copy.deepcopy(BATCH)
    obj["s"][i].update(changes)
    if drop:
        del obj["s"][i][drop]
    return obj


def _dumps(obj) -> bytes:
    return json.dumps(obj).encode()


def _raises(decode, data: bytes) -> WireError:
    with pytest.raises(WireError) as info:
        decode(data)
    return info.value


def _both(data: bytes) -> WireError:
    """Both batch decoders reject ``data`` with the same reason and field."""
    a = _raises(SightingsBatch.decode, data)
    b = _raises(SightingsBatch.decode_arrays, data)
    assert (a.reason, a.field) == (b.reason, b.field)
    return a


# (name, payload bytes, reason, field)
BATCH_CASES = [
    ("oversize", b" " * (MAX_PAYLOAD_BYTES + 1), "oversize", None),
    ("oversize_before_parse", b"{" * (MAX_PAYLOAD_BYTES + 1), "oversize", None),
    ("not_utf8", b'{"v":1,"site":"\xff"}', "bad_json", None),
    ("truncated", SAMPLES["sightings_full"].encode()[:-1], "bad_json", None),
    ("empty", b"", "bad_json", None),
    ("nan", _dumps(_sighting(rssi=float("nan"))), "bad_json", None),
    ("infinity", _dumps(_batch(t=float("inf"))), "bad_json", None),
    ("deep_nesting", b"[" * 100_000 + b"]" * 100_000, "bad_json", None),
    ("absurd_int", b'{"v":1,"seq":' + b"9" * 5000 + b"}", "bad_json", None),
    ("utf8_bom", b"\xef\xbb\xbf" + SAMPLES["sightings_full"].encode(), "bad_json", None),
    ("array", b"[1,2]", "not_object", None),
    ("string", b'"x"', "not_object", None),
    ("null", b"null", "not_object", None),
    ("v2", _dumps(_batch(v=2)), "wrong_version", "v"),
    ("v_true", _dumps(_batch(v=True)), "wrong_version", "v"),
    ("v_float", _dumps(_batch(v=1.0)), "wrong_version", "v"),
    ("v_string", _dumps(_batch(v="1")), "wrong_version", "v"),
    ("v_deep", b'{"v":' + b"[" * 900 + b"]" * 900 + b"}", "wrong_version", "v"),
    ("v_huge", _dumps(_batch(v=10**4000)), "wrong_version", "v"),
    ("no_v", _dumps({k: v for k, v in BATCH.items() if k != "v"}), "missing_field", "v"),
    ("no_seq", _dumps({k: v for k, v in BATCH.items() if k != "seq"}), "missing_field", "seq"),
    ("no_rssi", _dumps(_sighting(2, drop="rssi")), "missing_field", "s[2].rssi"),
    ("no_id", _dumps(_sighting(0, drop="id")), "missing_field", "s[0].id"),
    ("seq_bool", _dumps(_batch(seq=True)), "wrong_type", "seq"),
    ("seq_float", _dumps(_batch(seq=1.0)), "wrong_type", "seq"),
    ("n_bool", _dumps(_sighting(n=True)), "wrong_type", "s[0].n"),
    ("rssi_bool", _dumps(_sighting(rssi=False)), "wrong_type", "s[0].rssi"),
    ("rssi_string", _dumps(_sighting(rssi="-70")), "wrong_type", "s[0].rssi"),
    ("t_null", _dumps(_batch(t=None)), "wrong_type", "t"),
    ("s_object", _dumps(_batch(s={})), "wrong_type", "s"),
    ("sighting_list", _dumps(_batch(s=[[1]])), "wrong_type", "s[0]"),
    ("rnd_int", _dumps(_sighting(1, rnd=1)), "wrong_type", "s[1].rnd"),
    ("site_int", _dumps(_batch(site=7)), "wrong_type", "site"),
    ("id_int", _dumps(_sighting(id=7)), "wrong_type", "s[0].id"),
    ("k_list", _dumps(_sighting(k=["ble"])), "wrong_type", "s[0].k"),
    ("seq_negative", _dumps(_batch(seq=-1)), "out_of_range", "seq"),
    ("seq_huge", _dumps(_batch(seq=2**63)), "out_of_range", "seq"),
    ("seq_400_digits", _dumps(_batch(seq=10**400)), "out_of_range", "seq"),
    ("n_400_digits", _dumps(_sighting(n=-(10**400))), "out_of_range", "s[0].n"),
    ("n_negative", _dumps(_sighting(n=-3)), "out_of_range", "s[0].n"),
    ("n_zero", _dumps(_sighting(n=0)), "out_of_range", "s[0].n"),
    ("tx_range", _dumps(_sighting(1, tx=300)), "out_of_range", "s[1].tx"),
    ("t_negative", _dumps(_batch(t=-1)), "out_of_range", "t"),
    ("t_far_future", _dumps(_batch(t=5e9)), "out_of_range", "t"),
    ("t_1e400", SAMPLES["sightings_full"].encode().replace(b'"t":1763900000.25', b'"t":1e400'),
     "out_of_range", "t"),
    ("t_huge_int", _dumps(_batch(t=10**400)), "out_of_range", "t"),
    ("rssi_positive", _dumps(_sighting(rssi=3.0)), "rssi_range", "s[0].rssi"),
    ("rssi_low", _dumps(_sighting(4, rssi=-120.1)), "rssi_range", "s[4].rssi"),
    ("rssi_1e400", SAMPLES["sightings_full"].encode().replace(b"-67.3", b"-1e400"),
     "rssi_range", "s[0].rssi"),
    ("window_zero", _dumps(_batch(window_s=0)), "window_range", "window_s"),
    ("window_rounds_to_zero", _dumps(_batch(window_s=0.0004)), "window_range", "window_s"),
    ("window_negative", _dumps(_batch(window_s=-1.0)), "window_range", "window_s"),
    ("window_long", _dumps(_batch(window_s=60.5)), "window_range", "window_s"),
    ("too_many", _dumps(_batch(s=[BATCH["s"][0]] * (MAX_SIGHTINGS + 1))),
     "too_many_sightings", "s"),
    ("too_many_junk", _dumps(_batch(s=[0] * (MAX_SIGHTINGS + 1))), "too_many_sightings", "s"),
    ("kind_lora", _dumps(_sighting(k="lora")), "unknown_kind", "s[0].k"),
    ("kind_case", _dumps(_sighting(3, k="WIFI")), "unknown_kind", "s[3].k"),
    ("id_too_long", _dumps(_sighting(id="a" * 65)), "bad_id", "s[0].id"),
    ("id_empty", _dumps(_sighting(id="")), "bad_id", "s[0].id"),
    ("id_space", _dumps(_sighting(id="a b")), "bad_id", "s[0].id"),
    ("id_newline", _dumps(_sighting(id="ab\n")), "bad_id", "s[0].id"),
    ("gw_slash", _dumps(_batch(gw="gw/1")), "bad_id", "gw"),
    ("site_plus", _dumps(_batch(site="+")), "bad_id", "site"),
    ("member_long", _dumps(_sighting(member="m" * 129)), "bad_id", "s[0].member"),
    ("sq_over_12_bits", _dumps(_sighting(2, sq=4096)), "out_of_range", "s[2].sq"),
    ("sq_negative", _dumps(_sighting(sq=-1)), "out_of_range", "s[0].sq"),
    ("sq_float", _dumps(_sighting(sq=12.0)), "wrong_type", "s[0].sq"),
]


@pytest.mark.parametrize("name,data,reason,field", BATCH_CASES, ids=[c[0] for c in BATCH_CASES])
def test_batch_rejects(name, data, reason, field):
    err = _both(data)
    assert (err.reason, err.field) == (reason, field)
    assert err.reason in REASONS
    assert err.detail  # a human sentence for the dead letter


def test_non_bytes_payload_is_wrong_type():
    err = _raises(SightingsBatch.decode, SAMPLES["sightings_full"].encode().decode())
    assert err.reason == "wrong_type"


def test_memoryview_and_bytearray_accepted():
    data = SAMPLES["sightings_full"].encode()
    assert SightingsBatch.decode(memoryview(data)) == SAMPLES["sightings_full"]
    assert SightingsBatch.decode(bytearray(data)) == SAMPLES["sightings_full"]


def test_exactly_max_sightings_accepted():
    data = _dumps(_batch(s=[BATCH["s"][0]] * MAX_SIGHTINGS))
    assert len(data) <= MAX_PAYLOAD_BYTES
    assert len(SightingsBatch.decode(data).s) == len(SightingsBatch.decode_arrays(data))


def test_edges_of_ranges_accepted():
    obj = _sighting(rssi=0, n=1_000_000, tx=-127)
    obj.update(window_s=60, seq=2**53 - 1, t=0)
    batch = SightingsBatch.decode(_dumps(obj))
    assert (batch.s[0].rssi, batch.s[0].n, batch.window_s, batch.seq) == (0.0, 1_000_000, 60.0,
                                                                          2**53 - 1)


def _event(**changes) -> bytes:
    obj = _obj("event_purchase")
    obj.update(changes)
    return _dumps({k: v for k, v in obj.items() if v is not None})


OTHER_CASES = [
    (Event.decode, _event(type="teleport"), "unknown_event", "type"),
    (Event.decode, _event(type=None), "missing_field", "type"),
    (Event.decode, _event(currency=None), "missing_field", "currency"),
    (Event.decode, _event(currency="eur"), "bad_value", "currency"),
    (Event.decode, _event(amount="49.90"), "wrong_type", "amount"),
    (Event.decode, _event(amount=1e10), "out_of_range", "amount"),
    (Event.decode, _event(visitor="x y"), "bad_id", "visitor"),
    (Event.decode, _event(zone="a/b"), "bad_id", "zone"),
    (Event.decode, _event(v=0), "wrong_version", "v"),
    (Status.decode, _dumps({**_obj("status_online"), "state": "sleeping"}), "bad_value", "state"),
    (Status.decode, _dumps({**_obj("status_online"), "version": "1 0"}), "bad_value", "version"),
    (Status.decode, _dumps({**_obj("status_online"), "frames_per_s": {"zigbee": 1}}),
     "unknown_kind", "frames_per_s.zigbee"),
    (Status.decode, _dumps({**_obj("status_online"), "frames_per_s": [1]}),
     "wrong_type", "frames_per_s"),
    (Status.decode, _dumps({**_obj("status_online"), "frames_per_s": {"ble": -1}}),
     "out_of_range", "frames_per_s.ble"),
    (Status.decode, _dumps({**_obj("status_online"), "spool_depth": -1}),
     "out_of_range", "spool_depth"),
    (Status.decode, _dumps({**_obj("status_online"), "cpu_temp_c": 400}),
     "out_of_range", "cpu_temp_c"),
    (PosTransaction.decode, _dumps({**_obj("pos"), "currency": "EURO"}), "too_long", "currency"),
    (PosTransaction.decode, _dumps({**_obj("pos"), "txn_id": ""}), "bad_id", "txn_id"),
    (DeadLetter.decode, _dumps({**_obj("deadletter"), "payload_b64": "!!"}),
     "bad_value", "payload_b64"),
    (DeadLetter.decode, _dumps({**_obj("deadletter"), "payload_b64": "QUFB" * 1400}),
     "too_long", "payload_b64"),
    (DeadLetter.decode, _dumps({**_obj("deadletter"), "payload_len": 2}),
     "out_of_range", "payload_len"),
    (DeadLetter.decode, _dumps({**_obj("deadletter"), "reason": "Bad Json"}),
     "bad_value", "reason"),
    (DeadLetter.decode, _dumps({**_obj("deadletter"), "detail": "x" * 513}), "too_long", "detail"),
]


@pytest.mark.parametrize("decode,data,reason,field", OTHER_CASES)
def test_other_records_reject(decode, data, reason, field):
    err = _raises(decode, data)
    assert (err.reason, err.field) == (reason, field)


@pytest.mark.parametrize(
    "topic,name,field",
    [
        (Topic.sightings("other", "gw-01"), "sightings_full", "site"),
        (Topic.sightings("mall-1", "gw-02"), "sightings_full", "gw"),
        (Topic.status("mall-1", "gw-99"), "status_online", "gw"),
        (Topic.event("mall-1", "entry"), "event_purchase", "type"),
        (Topic.pos("mall-2"), "pos", "site"),
    ],
)
def test_decode_any_rejects_topic_mismatch(topic, name, field):
    err = _raises(lambda d: decode_any(topic, d), SAMPLES[name].encode())
    assert (err.reason, err.field) == ("topic_mismatch", field)


def test_decode_any_rejects_foreign_topic():
    err = _raises(lambda d: decode_any("homeassistant/status", d), b"{}")
    assert err.reason == "bad_topic"


@pytest.mark.parametrize(
    "make,reason",
    [
        (lambda: Sighting("a", "ble", -70.0, 1, rnd=1), "wrong_type"),
        (lambda: SightingsBatch("m", "g", 1, 1.0, 1.0, ("not a sighting",)), "wrong_type"),
        (lambda: SightingsBatch("m", "g", 1, 1.0, 1.0, (), v=2), "wrong_version"),
        (lambda: Event("m", "entry", 1.0, "v"), "missing_field"),
        (lambda: Event("m", "entry", 1.0, "v", entrance="e", zone="z"), "unexpected_field"),
        (lambda: Event("m", "floor_change", 1.0, "v", floor_from="L0", floor_to="L0"),
         "bad_value"),
        (lambda: DeadLetter("m", 1.0, "t", "r", "", b"x" * 5000, 5000), "too_long"),
        (lambda: Status("m", "g", 1.0, "online", "1", cpu_temp_c=float("nan")), "out_of_range"),
    ],
)
def test_constructors_refuse_what_decoders_would(make, reason):
    with pytest.raises(WireError) as info:
        make()
    assert info.value.reason == reason


def test_every_reason_code_is_exercised():
    seen = {c[2] for c in BATCH_CASES} | {c[2] for c in OTHER_CASES}
    seen |= {"topic_mismatch", "bad_topic", "unexpected_field"}
    assert seen == REASONS


def test_error_fields_and_text():
    err = WireError("rssi_range", "s[3].rssi", "5 not in [-120, 0]")
    assert str(err) == "rssi_range at s[3].rssi: 5 not in [-120, 0]"
    assert err.within("x").field == "x.s[3].rssi"
    assert str(WireError("bad_json")) == "bad_json"
    from gateway.errors import GatewayError
    assert isinstance(err, GatewayError)
