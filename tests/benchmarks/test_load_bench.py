"""Ingest hot path under load: one 1 s window of 5,000 devices x 48 gateways (about 4,200
sightings in 48 batches) through ``Pipeline.process_payload`` (decode, dedupe, window, locate,
visitors, journeys, metrics).

Run with ``pytest tests/benchmarks/test_load_bench.py --benchmark-enable``; with benchmarks
disabled (the default) it processes the windows once and still checks the counts. Real time
needs well under 1 s per window; docs/operations.md has the figures. ``grid_filter`` is the
opt-in position filter (DeviceConfig.grid_filter: grid posterior and phone offset carried
over windows), measured beside the default Kalman track.
"""
from __future__ import annotations

import pytest

from analytics.devices import DeviceConfig
from analytics.pipeline import Pipeline, PipelineConfig
from tests.faults.harness import site, topic_of
from tests.load.traffic import Traffic

WARM = 6
ROUNDS = 8


@pytest.mark.parametrize("track", ["kalman", "grid_filter"])
def test_bench_one_window_5000_devices_48_gateways(benchmark, track):
    traffic = Traffic(site())
    windows = [[(topic_of(b), b.encode(), len(b.s)) for b in traffic.window(k)]
               for k in range(WARM + ROUNDS + 1)]
    cfg = PipelineConfig(device=DeviceConfig(grid_filter=track == "grid_filter"))
    pl = Pipeline(site(), cfg)
    for w in windows[:WARM]:
        for topic, data, _n in w:
            pl.process_payload(topic, data, 0.0)
    it = iter(windows[WARM:])

    def one_window():
        for topic, data, _n in next(it):
            pl.process_payload(topic, data, 0.0)

    benchmark.pedantic(one_window, rounds=ROUNDS, iterations=1, warmup_rounds=0)
    fed = WARM + (benchmark.stats.stats.rounds if benchmark.enabled else 1)
    assert pl.stats["deadletters"] == 0
    assert pl.stats["batches"] == 48 * fed
    assert pl.stats["sightings"] == sum(n for w in windows[:fed] for _t, _d, n in w)
    assert pl.stats["windows"] >= fed - 4
