from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.dedupe import SeqDedupe


def test_in_order_keeps_one_range():
    d = SeqDedupe()
    assert all(d.accept("g", s) for s in range(1000))
    assert d.ranges("g") == [(0, 999)] and d.high_water("g") == 999


def test_redelivery_dropped():
    d = SeqDedupe()
    assert d.accept("g", 5) and not d.accept("g", 5)
    assert d.duplicates == 1
    assert d.accept("h", 5)  # other gateway, own counter


def test_hour_late_spool_replay_counted_once():
    d = SeqDedupe(max_ranges=16)
    live = list(range(0, 100)) + list(range(3700, 3800))
    replay = list(range(100, 3700))
    assert all(d.accept("g", s) for s in live)
    assert d.ranges("g") == [(0, 99), (3700, 3799)]
    assert all(d.accept("g", s) for s in replay)
    assert not any(d.accept("g", s) for s in replay)  # second replay: all duplicates
    assert d.ranges("g") == [(0, 3799)]


def test_bounded_ranges_close_oldest_gap():
    d = SeqDedupe(max_ranges=3)
    for s in (0, 2, 4, 6):
        d.accept("g", s)
    assert len(d.ranges("g")) == 3 and d.forced_closed == 1
    assert not d.accept("g", 1)  # treated as seen


def test_restart_resets():
    d = SeqDedupe(restart_gap=100)
    for s in range(5000, 5010):
        d.accept("g", s, t=1000.0 + s)
    assert d.accept("g", 0, t=99999.0)
    assert d.restarts == 1 and d.ranges("g") == [(0, 0)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 300), max_size=400), st.integers(0, 2**32))
def test_matches_a_set(seqs, seed):
    random.Random(seed).shuffle(seqs)
    d = SeqDedupe()
    seen = set()
    for s in seqs:
        assert d.accept("g", s) == (s not in seen)
        seen.add(s)
    rs = d.ranges("g")
    assert sum(hi - lo + 1 for lo, hi in rs) == len(seen)
    assert all(rs[i][1] + 1 < rs[i + 1][0] for i in range(len(rs) - 1))
