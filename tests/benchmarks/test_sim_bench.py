"""firmware_sim throughput. Small sizes by default (runs once, quickly, with
--benchmark-disable); the targets of the issue with MALLSENSE_SIM_BENCH=full:
frames level, 1 h of the sample mall with 1,000 concurrent shoppers, < 5 min on one core;
windows level, a 12-hour day with 20,000 visitors, < 10 min. The budgets are checked on the
process's CPU time (one core's work; the machines are shared), wall time is printed.

    MALLSENSE_SIM_BENCH=full .venv/bin/pytest tests/benchmarks/test_sim_bench.py \
        --benchmark-enable -p no:cacheprovider
"""
from __future__ import annotations

import os
import time

import pytest

from firmware_sim import SimConfig, simulate
from gateway.site import load_site, sample_site_path

FULL = os.environ.get("MALLSENSE_SIM_BENCH") == "full"
# (duration s, concurrent shoppers, budget s)
FRAMES = (3600, 1000, 300.0) if FULL else (60, 100, 60.0)
# (duration s, visitors per day, budget s)
WINDOWS = (12 * 3600, 20000, 600.0) if FULL else (600, 2000, 60.0)
# wall-clock guard (pytest-timeout): shared 2-core machines run several times slower than CPU
pytestmark = pytest.mark.timeout(3600 if FULL else 600)


@pytest.fixture(scope="module")
def site():
    return load_site(sample_site_path())


def test_bench_frames(benchmark, site, tmp_path):
    seconds, concurrent, budget = FRAMES
    cfg = SimConfig(seed=1, start="2026-11-21T14:00:00+01:00", duration_s=seconds,
                    level="frames", concurrent=concurrent)
    t0, c0 = time.perf_counter(), time.process_time()
    res = benchmark.pedantic(simulate, args=(site, cfg, tmp_path), rounds=1, iterations=1)
    took = time.process_time() - c0
    print(f"frames: {seconds} s, {concurrent} concurrent: {took:.1f} s CPU, "
          f"{time.perf_counter() - t0:.1f} s wall, {res.packets} frames")
    assert res.packets > seconds * concurrent * 0.1
    assert all(p.stat().st_size > 24 for p in res.captures.values())
    assert took < budget, f"frames level took {took:.0f} s CPU (budget {budget:.0f} s)"


def _windows(site, cfg):
    res = simulate(site, cfg)
    rows = sum(len(part) for part in res.iter_windows())
    return res, rows


def test_bench_windows(benchmark, site):
    seconds, visitors, budget = WINDOWS
    cfg = SimConfig(seed=1, start="2026-11-21T09:30:00+01:00", duration_s=seconds,
                    level="windows", visitors_per_day=visitors)
    t0, c0 = time.perf_counter(), time.process_time()
    res, rows = benchmark.pedantic(_windows, args=(site, cfg), rounds=1, iterations=1)
    took = time.process_time() - c0
    print(f"windows: {seconds} s, {visitors} visitors/day: {took:.1f} s CPU, "
          f"{time.perf_counter() - t0:.1f} s wall, {rows} window rows")
    assert rows > seconds * 10
    assert took < budget, f"windows level took {took:.0f} s CPU (budget {budget:.0f} s)"
