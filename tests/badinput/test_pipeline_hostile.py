"""10,000+ malformed and hostile payloads through ``Pipeline.process_payload`` (in-process):
it never raises, each rejected input gives exactly one dead letter carrying the contract's
reason, memory stays bounded, and real batches interleaved with the garbage keep flowing."""
from __future__ import annotations

import gc
import json
import os
import tracemalloc

import psutil
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.pipeline import Pipeline
from gateway.wire import REASONS, DeadLetter
from tests.badinput.corpus import (
    FIELDS,
    FUZZ_GW,
    SITE,
    TOPIC_SIGHT,
    base_batch,
    dumps,
    expected,
    hand_crafted,
    hostile,
)
from tests.faults.harness import n_sightings, sim_batches, site, topic_of

SEED = int(os.environ.get("MALLSENSE_FUZZ_SEED", "20261123"))
N_GENERATED = 11_000


def _check(pl: Pipeline, topic: str, payload: bytes, now: float) -> tuple[str | None, int]:
    """Feed one input; returns (reason or None, sightings it carried if valid)."""
    want = expected(topic, payload)
    out = pl.process_payload(topic, payload, now)        # must never raise
    if want is None:
        assert not out.deadletters, (topic[:80], payload[:120], out.deadletters[0].reason)
        return None, 0
    assert len(out.deadletters) == 1, (topic[:80], payload[:120], len(out.deadletters))
    dl = out.deadletters[0]
    assert dl.reason == want and dl.reason in REASONS, (dl.reason, want, payload[:120])
    assert dl.payload_len == len(payload) and payload.startswith(dl.payload)
    assert not out.points and not out.events
    DeadLetter.decode(dl.encode())                       # what ingest publishes is valid itself
    return want, 0


def test_ten_thousand_hostile_payloads_interleaved_with_real_traffic():
    print(f"hostile corpus seed {SEED} (MALLSENSE_FUZZ_SEED to replay)")
    assert site().id == SITE
    good = list(sim_batches())
    corpus = hand_crafted() + hostile(N_GENERATED, SEED)
    pl = Pipeline(site())
    proc = psutil.Process()
    rejected = valid_hostile = gi = 0
    reasons: dict[str, int] = {}
    rss = []
    tracemalloc.start()
    try:
        for i, (topic, payload) in enumerate(corpus):
            if i % 4 == 0 and gi < len(good):            # real traffic keeps arriving
                t, b = good[gi]
                gi += 1
                out = pl.process_payload(topic_of(b), b.encode(), t + 1.5)
                assert not out.deadletters
            reason, _ = _check(pl, topic, payload, 1_700_038_800.0 + i * 1e-3)
            if reason is None:
                valid_hostile += 1
            else:
                rejected += 1
                reasons[reason] = reasons.get(reason, 0) + 1
            if i == 1000:
                gc.collect()
                base_traced = tracemalloc.get_traced_memory()[0]
                rss.append(proc.memory_info().rss)
        gc.collect()
        end_traced = tracemalloc.get_traced_memory()[0]
        rss.append(proc.memory_info().rss)
    finally:
        tracemalloc.stop()
    print(f"rejected {rejected}, valid {valid_hostile}, reasons {json.dumps(reasons, sort_keys=True)}; "
          f"traced growth {(end_traced - base_traced) / 1e6:.1f} MB, RSS growth "
          f"{(rss[1] - rss[0]) / 1e6:.1f} MB")
    assert rejected >= 10_000
    assert len(reasons) >= 12                            # the corpus exercises most reasons
    assert pl.stats["deadletters"] == rejected
    # Memory stays bounded: the garbage leaves nothing behind (the real windows do keep state).
    assert end_traced - base_traced < 40e6
    assert rss[1] - rss[0] < 80e6
    # The real traffic was processed alongside: every good batch's sightings counted, windows
    # closed while garbage was arriving.
    fed = good[:gi]
    assert gi >= 2500
    out = pl.flush()
    assert pl.stats["sightings"] >= n_sightings(fed)
    assert pl.stats["windows"] >= fed[-1][0] - fed[0][0] - 5
    for gw in {b.gw for _t, b in fed}:
        assert pl.dedupe.high_water(gw) == max(b.seq for _t, b in fed if b.gw == gw)
    assert out.points


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=12)


@settings(max_examples=1500, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(field=st.sampled_from(FIELDS + ["s[0]", "s[1].rssi", "s[0].id", "s[1].k", "extra"]),
       value=_json, topic_gw=st.sampled_from([FUZZ_GW, "gw-l1-01", "fuzz\u202egw"]))
def test_hypothesis_json_mutations_are_dead_lettered(field, value, topic_gw):
    b = base_batch()
    if field.startswith("s["):
        i = int(field[2])
        if "." in field:
            b["s"][i][field.split(".")[1]] = value
        else:
            b["s"][i] = value
    else:
        b[field] = value
    topic = TOPIC_SIGHT.replace(FUZZ_GW, topic_gw)
    _check(_PIPE, topic, dumps(b), 1_700_038_800.0)


@settings(max_examples=500, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(data=st.binary(max_size=400), topic=st.text(max_size=80))
def test_hypothesis_random_bytes_and_topics(data, topic):
    _check(_PIPE, topic, data, 1_700_038_800.0)


_PIPE = Pipeline(site())
