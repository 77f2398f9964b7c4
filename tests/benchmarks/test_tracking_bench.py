"""Hot paths of tracking: zone assignment, a Kalman step, a floor-HMM step, the floor model.

`make bench` runs them with timing; the normal suite runs each once (benchmark disabled) and
still checks the results.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from locate.floors import FloorHMM
from locate.track import KalmanTracker
from locate.zones import ZoneIndex, points_in_polygon

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "locate"))
import _mall_scenario as scn


@pytest.fixture(scope="module")
def mall_zones():
    polys, floors, ids, kinds = scn.zone_layout()
    return ZoneIndex(polys, floors, ids, kinds)


@pytest.fixture(scope="module")
def points_200k():
    rng = np.random.default_rng(0)
    return rng.uniform([-2, -2], [82, 42], (200_000, 2)), rng.integers(0, 2, 200_000)


def test_bench_zone_assign_200k(benchmark, mall_zones, points_200k):
    xy, fl = points_200k
    z = benchmark(mall_zones.assign, xy, fl)
    assert z.shape == (200_000,) and 0.85 < (z >= 0).mean() < 0.95


def test_bench_points_in_polygon_200k_numpy(benchmark, points_200k):
    xy, _ = points_200k
    poly = scn.rect(10, 0, 20, 10)
    inside = benchmark(points_in_polygon, xy, poly)
    assert inside.sum() > 0


def test_bench_points_in_polygon_200k_matplotlib(benchmark, points_200k):
    """The C alternative, for comparison with the numpy ray casting above."""
    import matplotlib.path as mpath  # a test dependency (dashboards extra)

    xy, _ = points_200k
    poly = scn.rect(10, 0, 20, 10)
    path = mpath.Path(poly)
    inside = benchmark(path.contains_points, xy)
    np.testing.assert_array_equal(inside, points_in_polygon(xy, poly))


def _tracker(n):
    rng = np.random.default_rng(1)
    kf = KalmanTracker(n)
    R = np.broadcast_to(np.eye(2) * 9.0, (n, 2, 2)).copy()
    kf.step(0.0, rng.uniform(0, 80, (n, 2)), R)
    z = rng.uniform(0, 80, (n, 2))
    mask = rng.uniform(size=n) < 0.9
    return kf, z, R, mask


def test_bench_kalman_step_100k(benchmark):
    kf, z, R, mask = _tracker(100_000)
    t = iter(np.arange(1.0, 1e6))
    st = benchmark(lambda: kf.step(next(t), z, R, mask))
    assert st.used.shape == (100_000,) and kf.active.all()
    assert np.all(np.isfinite(kf.x))


def test_bench_floor_hmm_step_100k(benchmark):
    rng = np.random.default_rng(2)
    n, F = 100_000, 4
    hmm = FloorHMM(F, dt=1.0, min_dwell_s=15.0)
    alpha = hmm.start(n)
    ll = rng.normal(0, 3, (n, F))
    allowed = rng.uniform(size=(n, F, F)) < 0.1
    _, p = benchmark(hmm.step, alpha, ll, allowed)
    np.testing.assert_allclose(p.sum(1), 1.0)


def test_bench_floor_model_10k_windows(benchmark):
    sc = scn.build(1)
    fm = scn.floor_model(sc)
    r = sc.rssi.reshape(-1, sc.rssi.shape[2])[:10_000]
    lk = benchmark(fm.loglik, r)
    assert lk.loglik.shape == (10_000, 2)
