"""Zones: point-in-polygon against shapely, precedence, hysteresis, visits on the scenario mall."""

from __future__ import annotations

import doctest
import sys
from pathlib import Path

import numpy as np
import pytest
import shapely

import locate.events
import locate.zones
from locate.errors import InvalidParameterError
from locate.events import VISIT_DTYPE, visits
from locate.zones import (
    ZoneHysteresis,
    ZoneIndex,
    distance_to_polygon,
    points_in_polygon,
)

sys.path.insert(0, str(Path(__file__).parent))
import _mall_scenario as scn


def test_doctests():
    for mod in (locate.zones, locate.events):
        res = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert res.attempted > 0 and res.failed == 0, mod.__name__


def _star(rng, n=9, cx=0.0, cy=0.0):
    # A concave, non-convex star: even-odd must handle reflex vertices and horizontal runs.
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    rad = rng.uniform(2.0, 10.0, n)
    return np.column_stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)])


@pytest.mark.parametrize("seed", range(5))
def test_points_in_polygon_matches_shapely(seed):
    rng = np.random.default_rng(seed)
    poly = _star(rng)
    poly[2, 1] = poly[3, 1]  # a horizontal edge
    pts = rng.uniform(-11, 11, (20_000, 2))
    pts[:50] = poly[rng.integers(len(poly), size=50)] + 1e-9  # next to vertices
    ours = points_in_polygon(pts, poly)
    ref = shapely.contains_xy(shapely.Polygon(poly), pts[:, 0], pts[:, 1])
    # Points within 1e-6 m of the boundary may fall either way; nothing else may differ.
    d = shapely.distance(shapely.Polygon(poly).exterior, shapely.points(pts))
    far = d > 1e-6
    assert np.array_equal(ours[far], ref[far])
    assert ours.sum() > 1000


def test_points_in_polygon_closed_ring_nan_and_bad_input():
    sq = [[0, 0], [2, 0], [2, 2], [0, 2], [0, 0]]
    assert points_in_polygon([[1, 1], [np.nan, 1], [3, 3]], sq).tolist() == [True, False, False]
    with pytest.raises(ValueError, match="polygon"):
        points_in_polygon([[0, 0]], [[0, 0], [1, 1]])


def test_distance_to_polygon_matches_shapely():
    rng = np.random.default_rng(3)
    poly = _star(rng)
    pts = rng.uniform(-15, 15, (3000, 2))
    ref = shapely.distance(shapely.Polygon(poly), shapely.points(pts))
    np.testing.assert_allclose(distance_to_polygon(pts, poly), ref, atol=1e-9)


def test_zone_index_precedence_floor_and_nan():
    corridor = scn.rect(0, 8, 40, 20)
    store_a = scn.rect(0, 0, 10, 10)  # overlaps the corridor edge by 2 m (the door)
    store_b = scn.rect(10, 0, 20, 10)
    service = scn.rect(5, 5, 15, 9)  # overlaps both stores: stores win
    zi = ZoneIndex([corridor, store_a, store_b, service, corridor], floors=[0, 0, 0, 0, 1],
                   ids=["c0", "a", "b", "svc", "c1"], kinds=["corridor", "store", "store", "service", "corridor"])
    xy = np.array([[5, 9], [15, 9], [30, 15], [30, 15], [5, 9], [np.nan, 1], [50, 50], [12, 8.5]])
    fl = np.array([0, 0, 0, 1, 1, 0, 0, 0])
    assert zi.assign(xy, fl).tolist() == [1, 2, 0, 4, 4, -1, -1, 2]
    assert zi.ids[zi.order[0]] in ("a", "b") and zi.kinds[zi.order[-1]] == "corridor"
    with pytest.raises(ValueError, match="floors"):
        ZoneIndex([corridor], floors=[0, 1])


def test_zone_index_matches_brute_force_on_the_mall():
    polys, floors, ids, kinds = scn.zone_layout()
    zi = ZoneIndex(polys, floors, ids, kinds)
    rng = np.random.default_rng(11)
    xy = rng.uniform([-5, -5], [85, 45], (50_000, 2))
    fl = rng.integers(0, 2, 50_000)
    got = zi.assign(xy, fl)
    # Brute force: every zone tested on every point, first in precedence order wins.
    want = np.full(len(xy), -1)
    for z in zi.order[::-1]:
        inside = shapely.contains_xy(shapely.Polygon(polys[z]), xy[:, 0], xy[:, 1]) & (fl == floors[z])
        want[inside] = z
    edge = np.zeros(len(xy), bool)
    for p in polys:
        edge |= shapely.distance(shapely.Polygon(p).exterior, shapely.points(xy)) < 1e-6
    assert np.array_equal(got[~edge], want[~edge])
    assert 0.65 < (got >= 0).mean() < 0.75  # the mall covers 3200 of the 4500 m^2 sampled


def _run(h, seq, dt=1.0, t0=0.0):
    events = []
    for i, z in enumerate(seq):
        st = h.update(t0 + i * dt, np.atleast_1d(np.asarray(z)))
        for n in np.flatnonzero(st.exited):
            events.append(("exit", int(n), int(st.exit_zone[n]), st.exit_enter_t[n], st.exit_t[n], t0 + i * dt))
        for n in np.flatnonzero(st.entered):
            events.append(("enter", int(n), int(st.zone[n]), st.enter_t[n], t0 + i * dt))
    return events


def test_hysteresis_door_flicker_does_not_flip():
    # A shopper standing at the door of store 3: the fix alternates store / corridor (-1) /
    # the neighbour (4) every few seconds for 10 minutes.  With T_enter 60 s and gaps
    # tolerated up to 30 s that is one visit of store 3, not dozens.
    rng = np.random.default_rng(0)
    seq = np.where(rng.uniform(size=600) < 0.7, 3, np.where(rng.uniform(size=600) < 0.5, -1, 4))
    ev = _run(ZoneHysteresis(1, t_enter=60, t_exit=30), list(seq) + [-1] * 40)
    assert [e[0] for e in ev] == ["enter", "exit"]
    assert ev[0][2] == 3 and ev[0][3] <= 3.0  # entered store 3, visit starts at the first fix there
    assert ev[1][4] >= 590  # the visit ends at the last fix inside, not at the decision


def test_hysteresis_short_visit_and_brief_exit_are_ignored():
    # 40 s inside with T_enter 60 s: no visit.  Then a real visit with a 20 s excursion.
    seq = [5] * 40 + [-1] * 60 + [5] * 100 + [-1] * 20 + [5] * 100 + [-1] * 60
    ev = _run(ZoneHysteresis(1, t_enter=60, t_exit=30), seq)
    kinds = [e[0] for e in ev]
    assert kinds == ["enter", "exit"], ev
    assert ev[0][3] == 100.0 and ev[1][4] == 319.0


def test_hysteresis_store_to_store_and_batch_independence():
    # Device 0 goes straight from store 1 into store 2; device 1 stays in store 2; device 2
    # is never anywhere.  A batched run equals three single-device runs.
    seqs = np.array([[1] * 120 + [2] * 120 + [-1] * 40, [2] * 280, [-1] * 280]).T
    h = ZoneHysteresis(3, t_enter=30, t_exit=20)
    batched = _run(h, list(seqs))
    batched += [("close", int(n), int(h.zone[n])) for n in np.flatnonzero(h.zone >= 0)]
    single = []
    for n in range(3):
        hs = ZoneHysteresis(1, t_enter=30, t_exit=20)
        single += [(e[0], n) + e[2:] for e in _run(hs, list(seqs[:, n]))]
        single += [("close", n, int(hs.zone[0]))] if hs.zone[0] >= 0 else []
    assert sorted(map(str, batched)) == sorted(map(str, single))
    exits0 = [e for e in batched if e[0] == "exit" and e[1] == 0]
    assert [(e[2], e[3], e[4]) for e in exits0] == [(1, 0.0, 119.0), (2, 120.0, 239.0)]
    st = h.close()
    assert st.exited.tolist() == [False, True, False] and st.exit_zone[1] == 2 and h.zone.tolist() == [-1] * 3


def test_hysteresis_invalid_windows_and_reset():
    h = ZoneHysteresis(2, t_enter=5, t_exit=10)
    for t in range(10):
        h.update(float(t), np.array([7, 7]))
    assert h.zone.tolist() == [7, 7]
    # Device 0 goes silent (valid False): no confirmation, exit after t_exit.
    for t in range(10, 25):
        st = h.update(float(t), np.array([-1, 7]), valid=np.array([False, True]))
        if st.exited[0]:
            assert t == 19 and st.exit_t[0] == 9.0
    assert h.zone.tolist() == [-1, 7]
    h.reset(np.array([False, True]))
    assert h.zone.tolist() == [-1, -1] and not h.close().exited.any()
    with pytest.raises(ValueError, match="zone"):
        h.update(30.0, np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="t_enter"):
        ZoneHysteresis(1, t_enter=-1)


def test_visits_dtype_and_validation():
    z = np.full((100, 2), -1)
    z[10:80, 1] = 4
    v = visits(np.arange(100.0), z, t_enter=10, t_exit=5)
    assert v.dtype == VISIT_DTYPE and v.tolist() == [(1, 4, 10.0, 79.0, 69.0)]
    with pytest.raises(InvalidParameterError) as e:
        visits(np.arange(5.0), z)
    assert e.value.parameter == "zone"


def _match(a, b):
    """For each visit of a: is there a visit of b for the same device and zone overlapping it?"""
    return np.array([
        np.any((b["device"] == v["device"]) & (b["zone"] == v["zone"]) & (b["enter"] < v["exit"]) & (b["exit"] > v["enter"]))
        for v in a
    ])


def test_store_visits_on_scenario_mall():
    """Store visits of >= 3 min from the smoothed track: precision and recall >= 0.9.

    Truth: the runs of the true position inside a store.  A detected visit is right when the
    same device has a true visit of the same store overlapping it in time.
    """
    hits_r, hits_p = [], []
    for seed in scn.SEEDS:
        r = scn.run(seed)
        tv, dv = r.visits_true, r.visits_est
        hits_r.append(_match(tv[tv["dwell"] >= 180], dv))
        hits_p.append(_match(dv[dv["dwell"] >= 180], tv))
    recall = np.concatenate(hits_r).mean()
    precision = np.concatenate(hits_p).mean()
    print(f"store visits >= 3 min: precision {precision:.3f} recall {recall:.3f} "
          f"({sum(map(len, hits_p))} detected, {sum(map(len, hits_r))} true)")
    assert sum(map(len, hits_r)) > 150
    assert precision >= 0.9 and recall >= 0.9
