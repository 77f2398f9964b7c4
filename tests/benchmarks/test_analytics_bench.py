"""Ingest throughput: decode -> locate -> journey, one core, fed by window-mode firmware_sim.

Target (issue): >= 100,000 sightings/s of CPU time on one core, asserted under `make bench`
(timing enabled); `make test` runs it once for correctness only, since a shared CI machine's
load says nothing about our code. The payloads are encoded before timing (the edge's work); timed is what ingest does per MQTT message: SightingsBatch.decode_arrays, dedupe,
windowing, locate for all devices per window, visitors, journeys, metrics.
"""
from __future__ import annotations

import os
import time

import pytest

from analytics._blas import limit_blas_threads
from analytics.pipeline import Pipeline
from firmware_sim import SimConfig, simulate
from gateway.site import load_site, sample_site_path
from gateway.wire import Topic

SECRET = b"benchmark-site-secret-0123456789"
TARGET_SIGHTINGS_PER_S = 100_000


@pytest.fixture(scope="module")
def payloads():
    site = load_site(sample_site_path())
    dur = int(os.environ.get("MALLSENSE_BENCH_S", "300"))
    res = simulate(site, SimConfig(seed=3, start="2026-11-21T14:00", duration_s=dur, level="windows"))
    msgs = [(str(Topic.sightings(site.id, b.gw)), b.encode(), len(b.s))
            for _, b in res.batches(SECRET)]
    return site, msgs


def test_ingest_throughput(benchmark, payloads):
    limit_blas_threads(1)
    site, msgs = payloads
    n = sum(m[2] for m in msgs)
    timing = {}

    def run():
        pl = Pipeline(site)
        t0 = time.process_time()  # CPU seconds: one thread, BLAS limited to one thread
        for topic, data, _ in msgs:
            pl.process_payload(topic, data, 0.0)
        pl.flush()
        timing["s"] = time.process_time() - t0
        return pl

    pl = benchmark.pedantic(run, rounds=1, iterations=1)
    rate = n / timing["s"]
    benchmark.extra_info.update({"sightings": n, "seconds": timing["s"], "sightings_per_s": rate})
    print(f"\ningest: {n} sightings in {timing['s']:.2f} s = {rate:,.0f} sightings/s "
          f"({pl.stats['windows']} windows)")
    assert pl.stats["sightings"] == n and pl.stats["deadletters"] == 0
    assert pl.stats["windows"] > 0
    if not benchmark.disabled:
        assert rate >= TARGET_SIGHTINGS_PER_S, f"{rate:,.0f} sightings/s < {TARGET_SIGHTINGS_PER_S:,}"


def test_decode_only_throughput(payloads, benchmark):
    """The parsing share of the budget (DESIGN.md: parsing, not solving, is the limit)."""
    from gateway.wire import SightingsBatch

    _, msgs = payloads
    n = sum(m[2] for m in msgs)
    timing = {}

    def run():
        t0 = time.process_time()
        decoded = sum(len(SightingsBatch.decode_arrays(data).rssi) for _, data, _ in msgs)
        timing["s"] = time.process_time() - t0
        return decoded

    decoded = benchmark.pedantic(run, rounds=1, iterations=1)
    rate = n / timing["s"]
    benchmark.extra_info.update({"sightings": n, "sightings_per_s": rate})
    assert decoded == n
    print(f"\ndecode_arrays: {rate:,.0f} sightings/s")
    # A speed target, so only where speed is measured (make bench), not in make test.
    if not benchmark.disabled:
        assert rate >= 2 * TARGET_SIGHTINGS_PER_S
