"""Floors: the per-window floor likelihood, the floor HMM, floor-change events."""

from __future__ import annotations

import doctest
import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

import locate.connectors
import locate.floor_hmm
import locate.floors
from locate import PathLoss
from locate.errors import InvalidParameterError
from locate.events import FLOOR_CHANGE_DTYPE, floor_changes
from locate.floors import Connectors, FloorHMM, FloorModel

sys.path.insert(0, str(Path(__file__).parent))
import _mall_scenario as scn


@pytest.mark.parametrize("mod", [locate.floors, locate.floor_hmm, locate.connectors])
def test_doctests(mod):
    res = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert res.attempted >= 3 and res.failed == 0


# --- FloorModel ---------------------------------------------------------------------------

def _model(**kw):
    g, gf = scn.gateways()
    args = {"slab_db": scn.SLAB_DB, "sensitivity_dbm": scn.SENS, "voids": [[], [scn.ATRIUM]],
            "outlines": [scn.OUTLINE] * 2, "grid_step": 3.0}
    args.update(kw)
    return FloorModel(g, gf, scn.FLOOR_Z, PathLoss(scn.P0_CAL, scn.EXPONENT, 6.0), **args), g, gf


def _mean_rssi(xy, f, g, gf):
    d = np.sqrt(((xy[:, None] - g[None, :, :2]) ** 2).sum(-1) + (g[None, :, 2] - scn.FLOOR_Z[f] - scn.DEVICE_H) ** 2)
    return scn.P0_CAL - 10 * scn.EXPONENT * np.log10(d) - scn.slab_loss_truth(xy, f, g, gf)


def test_slab_loss_follows_the_void():
    fm, g, gf = _model()
    rng = np.random.default_rng(1)
    xy = rng.uniform([1, 1], [79, 39], (400, 2))
    for f in (0, 1):
        np.testing.assert_array_equal(fm.slab_loss(xy, f), scn.slab_loss_truth(xy, f, g, gf))
    # Straight under an L1 balcony gateway, looking up through the atrium: no slab.
    k = int(np.flatnonzero((gf == 1) & (g[:, 1] == 12.0))[0])
    assert fm.slab_loss(np.array([[g[k, 0], 18.0]]), 0)[0, k] == 0.0
    assert fm.slab_loss(np.array([[g[k, 0], 5.0]]), 0)[0, k] == scn.SLAB_DB


def test_candidates_avoid_the_void():
    fm, _, _ = _model()
    from locate.zones import points_in_polygon

    assert not points_in_polygon(fm.candidates[1], scn.ATRIUM).any()
    assert points_in_polygon(fm.candidates[0], scn.ATRIUM).sum() >= 30  # L0 under it is floor


def test_noise_free_windows_classify_and_locate():
    fm, g, gf = _model()
    rng = np.random.default_rng(2)
    xy = np.column_stack([rng.uniform(2, 78, 600), rng.uniform(2, 38, 600)])
    f_true = rng.integers(0, 2, 600)
    on_void = (f_true == 1) & (np.abs(xy[:, 0] - 40) < 15) & (np.abs(xy[:, 1] - 20) < 6)
    xy, f_true = xy[~on_void], f_true[~on_void]
    r = np.empty((len(xy), len(g)))
    for f in (0, 1):
        m = f_true == f
        r[m] = _mean_rssi(xy[m], f, g, gf)
    r = np.where(r >= scn.SENS, np.round(r), np.nan)
    lk = fm.loglik(r)
    assert lk.loglik.shape == (len(xy), 2) and lk.xy.shape == (len(xy), 2, 2) and lk.cov.shape == (len(xy), 2, 2, 2)
    assert (lk.loglik.argmax(1) == f_true).mean() == 1.0
    e = lk.xy[np.arange(len(xy)), f_true] - xy
    c = lk.cov[np.arange(len(xy)), f_true]
    assert np.all(np.linalg.eigvalsh(c) > 0)
    # Without noise the truth sits well inside the posterior: the normalised squared error
    # averages below its noisy expectation (2), and the posterior mean is a few metres off at
    # most (a 6 dB model over a 3 m grid; corridor points hear only a handful of gateways).
    d2 = np.einsum("ni,ni->n", e, np.linalg.solve(c, e[..., None])[..., 0])
    print(f"noise-free: rmse {np.sqrt(np.mean((e ** 2).sum(1))):.2f} m, mean d2 {d2.mean():.2f}")
    assert d2.mean() < 2.0 and np.sqrt(np.mean((e**2).sum(1))) < 4.0


def test_unheard_gateways_carry_the_floor():
    """The censored term P(rssi < sensitivity) for the gateways that stayed silent.  On the
    scenario's noisy windows, dropping it (p_miss -> 1: silence carries no information) must
    at least double the per-window floor errors."""
    fm = _model(p_miss=0.05)[0]
    no_cens = _model(p_miss=0.999999)[0]
    sc = scn.build(1)
    K = sc.rssi.shape[2]
    r = sc.rssi.reshape(-1, K)
    tf = sc.truth.floor.ravel()
    on = ~sc.truth.riding.ravel() & (np.isfinite(r).sum(1) > 0)
    err = (fm.loglik(r).loglik.argmax(1) != tf)[on].sum()
    err_nc = (no_cens.loglik(r).loglik.argmax(1) != tf)[on].sum()
    print(f"per-window floor errors: {err} with the censored term, {err_nc} without, of {on.sum()}")
    assert err_nc >= 2 * err and err / on.sum() < 0.002


def test_loglik_at_known_position_agrees_with_grid():
    fm, g, gf = _model()
    rng = np.random.default_rng(4)
    xy = np.column_stack([rng.uniform(5, 75, 300), np.where(rng.uniform(size=300) < 0.5, 5.0, 35.0)])
    r = _mean_rssi(xy, 1, g, gf) + rng.normal(0, 4, (300, len(g)))
    r = np.where(r >= scn.SENS, np.round(r), np.nan)
    at = fm.loglik_at(r, xy)
    assert at.shape == (300, 2) and (at.argmax(1) == 1).mean() == 1.0
    nan_rows = fm.loglik_at(np.full((2, len(g)), np.nan), xy[:2])
    assert np.all(nan_rows == 0.0)


def test_rows_not_heard_are_neutral_and_validation():
    fm, g, _ = _model()
    lk = fm.loglik(np.full((3, len(g)), np.nan))
    assert np.all(lk.loglik == 0) and np.all(lk.n_heard == 0) and np.isnan(lk.xy).all()
    np.testing.assert_allclose(lk.posterior(), 0.5)
    with pytest.raises(InvalidParameterError) as e:
        fm.loglik(np.zeros((2, 3)))
    assert e.value.parameter == "rssi_dbm"
    with pytest.raises(InvalidParameterError) as e:
        FloorModel(g, np.zeros(len(g), int), [5.0, 0.0], PathLoss())
    assert e.value.parameter == "floor_z"
    with pytest.raises(InvalidParameterError) as e:
        FloorModel(g, np.full(len(g), 3), [0.0, 5.0], PathLoss())
    assert e.value.parameter == "anchor_floor"
    with pytest.raises(InvalidParameterError) as e:
        FloorModel(g, np.zeros(len(g), int), [0.0, 5.0], PathLoss(), slab_db=[1.0, 2.0, 3.0])
    assert e.value.parameter == "slab_db"


def test_zone_posterior_mass():
    fm, g, gf = _model()
    polys, floors, ids = scn.stores()
    from locate.zones import ZoneIndex

    zi = ZoneIndex(polys, floors, ids)
    xy = np.array([[15.0, 35.0], [65.0, 5.0]])
    r = np.round(_mean_rssi(xy, 0, g, gf))
    r[r < scn.SENS] = np.nan
    lk = fm.loglik(r, zones=zi)
    assert lk.zone_p.shape == (2, len(polys))
    l0 = np.asarray(floors) == 0
    p0 = np.where(l0, lk.zone_p, -1.0)  # masses are per floor hypothesis: compare L0 zones
    assert ids[int(p0[0].argmax())] == "L0-N1" and ids[int(p0[1].argmax())] == "L0-S6"
    assert p0.max(1).min() > 0.5
    np.testing.assert_array_less(lk.zone_p[:, l0].sum(1), 1.0 + 1e-9)  # at most 1 per floor


# --- Connectors and HMM -------------------------------------------------------------------

def test_connectors_allowed():
    con = scn.connector_index()
    xy = np.array([[12.0, 20.0], [40.0, 35.0], [75.5, 26.0]])
    a = con.allowed(xy, 2)
    assert a.shape == (3, 2, 2)
    assert a[0, 0, 1] and a[0, 1, 0] and not a[1].any() and a[2, 1, 0]
    assert not a[:, 0, 0].any()
    per_floor = np.stack([xy, np.array([[40.0, 35.0]] * 3)], axis=1)  # floor-1 hypothesis far away
    b = con.allowed(per_floor, 2)
    assert b[0, 0, 1] and not b[0, 1, 0]
    with pytest.raises(InvalidParameterError):
        Connectors([scn.rect(0, 0, 1, 1)], [(0,)])


def _hsmm_brute(ll, allowed, hmm):
    """Exhaustive joint probability of every floor sequence under FloorHMM's model."""
    T, F = ll.shape
    pc = hmm._pc(allowed[:, None])[:, 0] if allowed.ndim == 3 else None
    probs = {}
    for seq in itertools.product(range(F), repeat=T):
        lp = np.log(1.0 / F) + ll[0, seq[0]] * hmm.emission_scale
        age = hmm.D - 1
        ok = True
        for t in range(1, T):
            f0, f1 = seq[t - 1], seq[t]
            if f0 == f1:
                if age == hmm.D - 1:
                    lp += np.log1p(-pc[t - 1, f0].sum())
                age = min(age + 1, hmm.D - 1)
            else:
                if age < hmm.D - 1:
                    ok = False
                    break
                lp += np.log(pc[t - 1, f0, f1])
                age = 0
            lp += ll[t, f1] * hmm.emission_scale
        if ok:
            probs[seq] = lp
    return probs


@pytest.mark.parametrize("seed", range(4))
def test_viterbi_and_smoother_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    T, F = 8, 3
    hmm = FloorHMM(F, dt=1.0, min_dwell_s=2.0, p_change=0.2, p_leak=0.01, emission_scale=0.7)
    ll = rng.normal(0, 1.5, (T, F))
    allowed = rng.uniform(size=(T, F, F)) < 0.5
    probs = _hsmm_brute(ll, allowed, hmm)
    seqs = list(probs)
    lp = np.array([probs[s] for s in seqs])
    best = seqs[int(np.argmax(lp))]
    path = hmm.viterbi(ll[:, None], allowed[:, None])[:, 0]
    assert tuple(path) == best
    w = np.exp(lp - lp.max())
    w /= w.sum()
    marg = np.zeros((T, F))
    for s, wi in zip(seqs, w):
        marg[np.arange(T), list(s)] += wi
    np.testing.assert_allclose(hmm.smooth(ll[:, None], allowed[:, None])[:, 0], marg, atol=1e-10)
    # Filtering at the last step equals smoothing there.
    np.testing.assert_allclose(hmm.filter(ll[:, None], allowed[:, None])[-1, 0], marg[-1], atol=1e-10)


def test_online_step_equals_batch_filter_and_devices_are_independent():
    rng = np.random.default_rng(5)
    T, N, F = 60, 7, 4
    hmm = FloorHMM(F, dt=1.0, min_dwell_s=10.0)
    ll = rng.normal(0, 3, (T, N, F))
    allowed = rng.uniform(size=(T, N, F, F)) < 0.3
    batch = hmm.filter(ll, allowed)
    a = hmm.start(N) * hmm._emis(ll[0])[:, :, None]
    a /= a.sum(axis=(1, 2), keepdims=True)
    for t in range(1, T):
        a, p = hmm.step(a, ll[t], allowed[t - 1])
        np.testing.assert_allclose(p, batch[t], atol=1e-12)
    one = FloorHMM(F, dt=1.0, min_dwell_s=10.0)
    for n in (0, 3):
        np.testing.assert_allclose(one.smooth(ll[:, n:n + 1], allowed[:, n:n + 1])[:, 0], hmm.smooth(ll, allowed)[:, n], atol=1e-12)
        np.testing.assert_array_equal(one.viterbi(ll[:, n:n + 1], allowed[:, n:n + 1])[:, 0], hmm.viterbi(ll, allowed)[:, n])


def test_no_flicker_without_connector_and_min_dwell():
    T = 200
    hmm = FloorHMM(2, dt=1.0, min_dwell_s=20.0)
    ll = np.zeros((T, 1, 2))
    ll[:, 0, 0] = 3.0
    ll[100:110, 0] = [0.0, 8.0]  # ten windows that look like L1 (an atrium balcony): 80 nats
    far = np.zeros((T, 1, 2, 2), bool)
    assert np.all(hmm.viterbi(ll, far) == 0)  # nowhere near a connector: no change
    near = np.ones((T, 1, 2, 2), bool)
    # Next to a connector, five such windows (40 nats) would be a trip up and down if the
    # floor could change every second; with 20 s minimum dwell the round trip costs more
    # (15 more windows of 3 nats against L1) and the floor stays.
    ll[105:110, 0] = [3.0, 0.0]
    assert np.all(hmm.viterbi(ll, near) == 0)
    flicker = FloorHMM(2, dt=1.0, min_dwell_s=0.0).viterbi(ll, near)[:, 0]
    assert np.all(flicker[100:105] == 1) and flicker[106] == 0
    ll[100:140, 0] = [0.0, 8.0]  # 40 s of L1: a real trip up
    path = hmm.viterbi(ll, near)[:, 0]
    assert path[99] == 0 and np.all(path[100:140] == 1) and path[160] == 0
    with pytest.raises(InvalidParameterError) as e:
        hmm.viterbi(ll, near[:, :, :1])
    assert e.value.parameter == "allowed"


def test_floor_changes_events():
    t = np.arange(10.0)
    fl = np.array([[0, 0, 0, -1, 1, 1, 1, 1, 0, 0], [1] * 10]).T
    ev = floor_changes(t, fl)
    assert ev.dtype == FLOOR_CHANGE_DTYPE
    assert ev[["device", "t", "from_floor", "to_floor", "via"]].tolist() == [(0, 4.0, 0, 1, -1), (0, 8.0, 1, 0, -1)]
    con = scn.connector_index()
    xy = np.zeros((10, 2, 2))
    xy[:, 0] = [68.0, 20.0]  # escB's L0 landing, then its L1 landing
    xy[4:, 0] = [58.0, 20.0]
    ev = floor_changes(t, fl, xy, con, window_s=3)
    assert [con.ids[v] for v in ev["via"]] == ["escB", "escB"] and ev["via_dist"][0] == 0.0


def test_landing_loglik_agrees_with_loglik_at_and_picks_the_landing():
    from locate.connectors import landing_loglik

    fm, g, gf = _model(offsets_db=(-4.0, 0.0, 4.0))
    con = scn.connector_index()
    cen = con.centroids()
    rows = []
    for c in range(len(cen)):
        f = max(int(con.floor[c]), 0)
        r = _mean_rssi(cen[c:c + 1], f, g, gf)
        rows.append(np.where(r >= scn.SENS, np.round(r), np.nan)[0])
    r = np.vstack(rows + [np.full(len(g), np.nan)])
    L = landing_loglik(fm, r, con)
    assert L.shape == (len(cen) + 1, len(cen)) and np.all(L[-1] == 0.0)
    # Noise-free windows at each escalator landing are best explained by that landing.
    esc = [c for c in range(len(cen)) if con.kinds[c] == "escalator"]
    assert all(int(np.argmax(L[c, esc])) == esc.index(c) for c in esc)
    for c in range(len(cen)):
        at = fm.loglik_at(r[:-1], np.broadcast_to(cen[c], (len(cen), 2)))
        want = at[:, con.floor[c]] if con.floor[c] >= 0 else at[:, list(con.connects[c])].max(axis=1)
        np.testing.assert_allclose(L[:-1, c], want, rtol=1e-12, atol=1e-9)
    with pytest.raises(InvalidParameterError) as e:
        landing_loglik(fm, r[:, :3], con)
    assert e.value.parameter == "rssi_dbm"


def _three_floor_connectors():
    sq = lambda x, y: scn.rect(x - 2, y - 2, x + 2, y + 2)
    return Connectors([sq(10, 10), sq(60, 10)], [(0, 1, 2), (0, 1, 2)], ids=["esc", "lift"],
                      kinds=["escalator", "lift"], floor=[-1, -1])


def test_consecutive_rides_through_one_lift_are_one_ride():
    con = _three_floor_connectors()
    t = np.arange(120.0)
    fl = np.zeros((120, 3), int)
    fl[:, :] = 2
    fl[40:56, :] = 1  # 16 s on L1: the HMM's minimum dwell between two hops
    fl[56:, :2] = 0
    fl[56:100, 2] = 1  # device 2: 60 s on L1, a real stop there
    fl[100:, 2] = 0
    xy = np.full((120, 3, 2), np.nan)
    L = np.zeros((120, 3, 2))
    L[30:70, :, 1] = 5.0  # the radio says: at the lift throughout
    L[30:70, 1, :] = [5.0, 0.0]  # device 1: at the escalator
    ev = floor_changes(t, fl, xy, con, via_loglik=L)
    got = [(int(e["device"]), float(e["t"]), int(e["from_floor"]), int(e["to_floor"]), int(e["via"])) for e in ev]
    assert [g for g in got if g[0] == 0] == [(0, 40.0, 2, 0, 1)]
    assert [g[2:4] for g in got if g[0] == 1] == [(2, 1), (1, 0)]
    assert [g[2:4] for g in got if g[0] == 2] == [(2, 1), (1, 0)]
    # Where the track has no position, the radio names the connector; where it has, the track.
    assert floor_changes(t, fl, None, con, via_loglik=L)["via"].tolist()[:2] == [1, 0]
    xy[:, 1] = [60.0, 10.0]  # device 1's track at the lift: the radio's escalator keeps two rides
    ev = floor_changes(t, fl, xy, con, via_loglik=L)
    assert ev[ev["device"] == 1][["t", "from_floor", "to_floor", "via"]].tolist() == [(40.0, 2, 1, 1), (56.0, 1, 0, 1)]
    with pytest.raises(InvalidParameterError) as e:
        floor_changes(t, fl, xy, con, via_loglik=L[..., :1])
    assert e.value.parameter == "via_loglik"



def test_escalator_trip_is_one_well_with_rides_ride_s_apart():
    sq = lambda x, y: scn.rect(x - 2, y - 2, x + 2, y + 2)
    con = Connectors([sq(10, 10), sq(26, 10)], [(0, 1, 2), (0, 1, 2)], ids=["esc-w", "esc-e"],
                     floor=[-1, -1])
    t = np.arange(120.0)
    fl = np.full((120, 1), 2)
    fl[40:75] = 1
    fl[75:] = 0
    xy = np.full((120, 1, 2), [12.0, 10.0])  # by the west well for the first ride ...
    xy[60:] = [19.0, 10.0]  # ... then a fix biased towards the east one for the second
    ev = floor_changes(t, fl, xy, con, window_s=10)
    assert [con.ids[v] for v in ev["via"]] == ["esc-w", "esc-e"]
    ev = floor_changes(t, fl, xy, con, window_s=10, ride_s=20.0)
    assert [con.ids[v] for v in ev["via"]] == ["esc-w", "esc-w"]  # one trip, one well
    assert ev["t"].tolist() == [47.5, 67.5]  # 20 s apart, about the same mean time
    # The floor evidence moves a late change back to where the windows changed floor.
    ll = np.zeros((120, 1, 3))
    ll[:, 0, 2] = 4.0
    ll[44:, 0] = [0.0, 4.0, 0.0]
    ll[64:, 0] = [4.0, 0.0, 0.0]
    ev = floor_changes(t, fl, xy, con, window_s=10, ride_s=20.0, floor_loglik=ll)
    assert np.allclose(ev["t"], [44.0, 64.0], atol=0.5)  # the schedule 47.5/67.5 moved by -3.5


# --- The scenario mall --------------------------------------------------------------------

def _pooled():
    return [scn.run(seed) for seed in scn.SEEDS]


def test_floor_hit_rate_on_scenario_mall():
    """Viterbi floor right in >= 99 % of device-seconds.

    Seconds on an escalator or in the lift car are excluded: the floor is not defined there
    (the truth switches at mid-ride).  The forward filter (online) is reported too.
    """
    on = np.concatenate([(~r.scenario.truth.riding).ravel() for r in _pooled()])
    tf = np.concatenate([r.scenario.truth.floor.ravel() for r in _pooled()])
    vit = np.concatenate([r.floor_path.ravel() for r in _pooled()])
    filt = np.concatenate([r.floor_filt.ravel() for r in _pooled()])
    smo = np.concatenate([r.floor_smooth.ravel() for r in _pooled()])
    hit = (vit == tf)[on].mean()
    print(f"floor hit-rate: viterbi {hit:.5f} (incl. rides {(vit == tf).mean():.5f}), "
          f"forward-backward {(smo == tf)[on].mean():.5f}, online filter {(filt == tf)[on].mean():.5f} "
          f"over {on.sum()} device-seconds")
    assert hit >= 0.99
    assert (filt == tf)[on].mean() >= 0.99


def test_floor_change_events_on_scenario_mall():
    """floor_change (from, to, via, t within 10 s of mid-ride): precision and recall >= 0.95."""
    tp = n_est = n_true = 0
    for r in _pooled():
        ev = r.changes
        via = np.array([r.via_ids[v] if v >= 0 else "" for v in ev["via"]])
        used = np.zeros(len(ev), bool)
        for n, tm, a, b, name in r.scenario.truth.changes:
            ok = (~used & (ev["device"] == n) & (ev["from_floor"] == a) & (ev["to_floor"] == b)
                  & (np.abs(ev["t"] - tm) <= 10.0) & (via == name))
            if ok.any():
                used[np.flatnonzero(ok)[0]] = True
                tp += 1
        n_est += len(ev)
        n_true += len(r.scenario.truth.changes)
    precision, recall = tp / n_est, tp / n_true
    print(f"floor changes: precision {precision:.3f} recall {recall:.3f} ({n_est} found, {n_true} true)")
    assert n_true > 120
    assert precision >= 0.95 and recall >= 0.95


def test_escalators_link_neighbouring_floors_lifts_all():
    sq = scn.rect(0, 0, 2, 2)
    con = Connectors([sq, sq], [(0, 1, 2, 3), (3, 1, 0)], kinds=["escalator", "lift"])
    lk = con.links(4)
    assert lk[0, 0, 1] and lk[0, 1, 0] and lk[0, 2, 3] and not lk[0, 0, 2] and not lk[0, 1, 3]
    assert lk[1, 0, 3] and lk[1, 3, 1] and not lk[1, 0, 2] and not lk[1].diagonal().any()
    a = con.allowed(np.array([[1.0, 1.0]]), 4)[0]
    assert a[0, 3] and a[0, 1] and not a[0, 2]


def test_drop_excursions():
    from locate.events import drop_excursions

    t = np.arange(200.0)
    fl = np.full((200, 3), 2)
    fl[50:70, 0] = 1  # 20 s down and back: an excursion
    fl[50:150, 1] = 1  # 100 s down and back: a real trip
    fl[50:70, 2] = 1  # 2 -> 1 -> 0: a chain, kept
    fl[70:, 2] = 0
    fl[100:101, 2] = -1  # unknown window, bridged
    out = drop_excursions(t, fl, max_s=60)
    assert np.all(out[:, 0] == 2)
    assert np.array_equal(out[:, 1], fl[:, 1]) and np.array_equal(out[:, 2], fl[:, 2])
    assert fl[60, 0] == 1  # the input is not modified
    with pytest.raises(InvalidParameterError):
        drop_excursions(t[:5], fl)
