"""Decode of a 500-sighting batch (a busy 1 s window): object path vs column-array path.

Run with ``pytest tests/benchmarks/test_wire_bench.py --benchmark-enable``; with benchmarks
disabled (the default) each function runs once and still checks its result.
"""
from __future__ import annotations

import random

from gateway.wire import Sighting, SightingsBatch


def _batch(size: int = 500, seed: int = 7) -> bytes:
    rng = random.Random(seed)
    s = []
    for i in range(size):
        wifi = rng.random() < 0.3
        s.append(
            Sighting(
                id=f"{rng.getrandbits(64):016x}",
                k="wifi" if wifi else "ble",
                rssi=rng.uniform(-100.0, -40.0),
                n=rng.randint(1, 50),
                tx=None if wifi or rng.random() < 0.5 else -59,
                rnd=rng.random() < 0.8,
                fp=f"{rng.getrandbits(32):08x}" if wifi else None,
            )
        )
    return SightingsBatch("mall-1", "gw-01", 1, 1_763_900_000.0, 1.0, tuple(s)).encode()


DATA = _batch()


def test_bench_decode_objects(benchmark):
    batch = benchmark(SightingsBatch.decode, DATA)
    assert len(batch.s) == 500


def test_bench_decode_arrays(benchmark):
    cols = benchmark(SightingsBatch.decode_arrays, DATA)
    assert len(cols) == 500 and cols.rssi.shape == (500,)


def test_bench_decode_arrays_required_keys_only(benchmark):
    lean = SightingsBatch.decode(DATA)
    lean = SightingsBatch(lean.site, lean.gw, lean.seq, lean.t, lean.window_s,
                          tuple(Sighting(x.id, x.k, x.rssi, x.n) for x in lean.s)).encode()
    cols = benchmark(SightingsBatch.decode_arrays, lean)
    assert len(cols) == 500 and int(cols.rnd.max()) == -1
