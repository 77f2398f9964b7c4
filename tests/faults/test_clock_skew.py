"""One gateway's clock off by +-30 s (NTP lost, RTC drift): its batches carry shifted window
times. The behaviour required: one bad clock must not disturb the rest of the site. Either the
pipeline detects and corrects the offset, or it confines the damage to that gateway's own
evidence; in both cases every sighting is counted, the other gateways' batches are not made
late, and visitors and journey events stay within 10 % (or 3, for small counts) of the clean run:
one gateway of 50 carries a few percent of the evidence."""
from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from tests.faults.harness import clean_reference, clean_run, sim_batches


def _skewed(batches, gw: str, skew_s: float):
    out = [(t, dataclasses.replace(b, t=round(b.t + skew_s, 3)) if b.gw == gw else b)
           for t, b in batches]
    # Arrival order stays real time: the shifted gateway's batches arrive when they are sent.
    return out


def _event_counts(snap: dict) -> Counter:
    c = Counter()
    for (m, tags, _t) in snap:
        if m == "journey_event":
            c[dict(tags)["type"]] += 1
    return c


def _visitors(snap: dict) -> int:
    return sum(int(f.get("visitors", 0)) for (m, _tags, _t), f in snap.items() if m == "visitors")


@pytest.mark.parametrize("skew_s", [30.0, -30.0])
def test_one_gateway_clock_skewed(skew_s):
    batches = sim_batches()
    clean_stats, want = clean_reference()
    busiest: Counter = Counter()
    for _t, b in batches:
        busiest[b.gw] += len(b.s)
    gw = busiest.most_common(1)[0][0]
    skewed = _skewed(batches, gw, skew_s)
    # Each batch arrives at its true send time; the skewed stamp is only in the payload.
    pl, got = clean_run(skewed)
    own = sum(1 for _t, b in batches if b.gw == gw)
    assert pl.stats["sightings"] == clean_stats["sightings"]        # nothing dropped
    assert pl.stats["batches"] - pl.stats["duplicates"] == len(batches)
    # The other gateways' batches must not become late because of one clock.
    assert pl.stats["late_batches"] <= own, (pl.stats, own)
    want_ev, got_ev = _event_counts(want), _event_counts(got)
    for typ, n in want_ev.items():
        assert abs(got_ev[typ] - n) <= max(3, 0.1 * n), (typ, got_ev, want_ev)
    v_want, v_got = _visitors(want), _visitors(got)
    assert abs(v_got - v_want) <= max(3, 0.1 * v_want), (v_got, v_want)
