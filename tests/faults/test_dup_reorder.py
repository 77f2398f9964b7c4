"""Duplicated and reordered batches (QoS 1 redeliveries, spool replays, several network paths):
every count (sightings, windows, visitors, events per type and place, occupancy, heat)
must be identical to the clean run's."""
from __future__ import annotations

import random

import pytest

from tests.faults.harness import (
    clean_reference,
    clean_run,
    counts,
    diff_counts,
    sim_batches,
)


def _shuffled_within(batches, span_s: float, rng: random.Random) -> list[int]:
    """An arrival order where each batch may overtake others up to span_s of event time."""
    keyed = [(t + rng.uniform(0, span_s), i) for i, (t, _b) in enumerate(batches)]
    return [i for _k, i in sorted(keyed)]


@pytest.mark.parametrize("span_s", [0.0, 1.5], ids=["duplicates", "duplicates+reordered"])
def test_duplicates_and_reordering_change_nothing(span_s):
    batches = sim_batches()
    clean_stats, want = clean_reference()
    rng = random.Random(20261123)
    # Reordered inside the 3 s lateness (span 0: arrival order kept, only redeliveries).
    order = _shuffled_within(batches, span_s, rng) if span_s else list(range(len(batches)))
    arrivals = []
    for i in order:
        arrivals.append(i)
        r = rng.random()
        if r < 0.2:
            arrivals.append(i)                           # immediate redelivery
        elif r < 0.3:
            arrivals.insert(len(arrivals) + 1, i)        # redelivered after the next one
    # A replay of an old stretch much later (a gateway re-sending its spool after a restart).
    arrivals += order[: len(order) // 5]
    pl, got = clean_run(batches, order=arrivals)
    dups = len(arrivals) - len(batches)
    assert dups > len(batches) // 4
    assert pl.stats["duplicates"] == dups
    assert pl.stats["batches"] - pl.stats["duplicates"] == len(batches)
    assert pl.stats["sightings"] == clean_stats["sightings"]
    assert pl.stats["late_batches"] == 0
    assert pl.stats["windows"] == clean_stats["windows"]
    assert not diff_counts(counts(got), counts(want)), diff_counts(counts(got), counts(want))[:15]
