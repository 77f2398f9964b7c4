"""Tracking: the batched CV Kalman filter, its RTS smoother, slots, and the scenario-mall RMSE."""

from __future__ import annotations

import doctest
import sys
from pathlib import Path

import numpy as np
import pytest

import locate.track
from locate.errors import InvalidParameterError
from locate.track import KalmanTracker, cv_matrices, rts_smooth

sys.path.insert(0, str(Path(__file__).parent))
import _mall_scenario as scn


def test_doctests():
    res = doctest.testmod(locate.track)
    assert res.attempted >= 3 and res.failed == 0


def test_cv_matrices():
    dt = np.array([0.5, 1.0, 3.0])
    F, Q = cv_matrices(dt, 0.7)
    for i, d in enumerate(dt):
        f1 = np.array([[1, d], [0, 1]])
        q1 = 0.49 * np.array([[d**3 / 3, d**2 / 2], [d**2 / 2, d]])
        np.testing.assert_allclose(F[i][np.ix_([0, 2], [0, 2])], f1)
        np.testing.assert_allclose(Q[i][np.ix_([1, 3], [1, 3])], q1)
        assert F[i][0, 1] == 0 and Q[i][0, 1] == 0 and Q[i][0, 3] == 0
    assert np.all(np.linalg.eigvalsh(Q) > 0)
    # Two steps of dt equal one step of 2 dt (the continuous model composes).
    F1, Q1 = cv_matrices(np.array([1.0]), 0.7)
    F2, Q2 = cv_matrices(np.array([2.0]), 0.7)
    np.testing.assert_allclose(F1[0] @ F1[0], F2[0])
    np.testing.assert_allclose(F1[0] @ Q1[0] @ F1[0].T + Q1[0], Q2[0], atol=1e-12)


def _simulate_cv(rng, n, steps, dt, sigma_a, r_sd):
    """Devices following the filter's own model exactly: white acceleration, iid fixes."""
    F, Q = cv_matrices(np.full(n, dt), sigma_a)
    L = np.linalg.cholesky(Q)
    x = np.zeros((steps, n, 4))
    x[0, :, :2] = rng.uniform(0, 50, (n, 2))
    x[0, :, 2:] = rng.normal(0, 1.0, (n, 2))
    for k in range(1, steps):
        x[k] = np.einsum("nij,nj->ni", F, x[k - 1]) + np.einsum("nij,nj->ni", L, rng.standard_normal((n, 4)))
    z = x[..., :2] + rng.normal(0, r_sd, (steps, n, 2))
    R = np.broadcast_to(np.eye(2) * r_sd**2, (steps, n, 2, 2)).copy()
    return x, z, R


def _nees(x_est, P, x_true):
    e = x_est - x_true
    return np.einsum("...i,...i->...", e, np.linalg.solve(P, e[..., None])[..., 0])


def test_filter_and_smoother_are_consistent_on_their_own_model():
    """NEES of a correct Kalman filter averages the state dimension (4); the RTS smoother's
    too, and the smoother beats the filter, which beats the raw fixes."""
    rng = np.random.default_rng(0)
    steps, n, dt, sa, rsd = 120, 400, 1.0, 0.5, 3.0
    x, z, R = _simulate_cv(rng, n, steps, dt, sa, rsd)
    t = np.arange(steps) * dt
    res = rts_smooth(t, z, R, sigma_a=sa, v_max=1e3, gate=1e9, v0=1.5, nu=None)
    burn = slice(20, steps)
    nees_f = _nees(res.x_filt[burn], res.P_filt[burn], x[burn]).mean()
    nees_s = _nees(res.x[burn], res.P[burn], x[burn]).mean()
    assert 3.8 < nees_f < 4.2, nees_f
    assert 3.8 < nees_s < 4.2, nees_s
    rm = lambda a: np.sqrt(np.mean(np.sum((a[burn][..., :2] - x[burn][..., :2]) ** 2, -1)))
    fix, filt, smooth = rm(z), rm(res.x_filt), rm(res.x)
    assert smooth < 0.85 * filt and filt < 0.8 * fix
    assert res.used.all()


def test_student_t_update_weights_fixes_by_their_distance():
    """With ``nu`` a fix near the prediction counts more than its R says, a far one (still
    inside the gate) much less; without, both move the state the same fraction."""
    R = np.eye(2)[None] * 4.0
    moved = {}
    for nu in (None, 2.0):
        for off in (1.0, 8.0):
            kf = KalmanTracker(1, sigma_a=0.3, nu=nu)
            for k in range(10):
                kf.step(float(k), np.array([[0.0, 0.0]]), R)
            st = kf.step(10.0, np.array([[off, 0.0]]), R)
            assert st.used[0] and not st.gated[0]
            moved[nu, off] = kf.x[0, 0] / off
    assert moved[None, 1.0] == pytest.approx(moved[None, 8.0])
    assert moved[2.0, 1.0] > moved[None, 1.0] and moved[2.0, 8.0] < 0.5 * moved[None, 8.0]
    assert KalmanTracker(1).gate == pytest.approx(13.8155, abs=1e-4)
    assert KalmanTracker(1, nu=2.0).gate == pytest.approx(198.0)


def test_student_t_smoother_resists_gross_errors_and_costs_little_without():
    """Fixes with 10 % gross errors that R does not admit: the EM Student-t smoother (default)
    beats the gated Gaussian one (measured 0.95x) and stays near its clean-fix error; on clean
    fixes it loses a few %."""
    rng = np.random.default_rng(3)
    steps, n, sa, rsd = 150, 200, 0.3, 3.0
    x, z, R = _simulate_cv(rng, n, steps, 1.0, sa, rsd)
    t = np.arange(float(steps))
    bad = rng.uniform(size=(steps, n)) < 0.1
    zb = z + bad[..., None] * rng.normal(0, 10.0, (steps, n, 2))
    rm = lambda a: np.sqrt(np.mean(np.sum((a[..., :2] - x[..., :2]) ** 2, -1)))
    kw = dict(sigma_a=sa, v_max=1e3, v0=1.5)
    gauss_clean, t_clean = rm(rts_smooth(t, z, R, nu=None, **kw).x), rm(rts_smooth(t, z, R, **kw).x)
    gauss_bad, t_bad = rm(rts_smooth(t, zb, R, nu=None, **kw).x), rm(rts_smooth(t, zb, R, **kw).x)
    print(f"RMSE clean: gaussian {gauss_clean:.2f} t {t_clean:.2f}; 10 % gross: gaussian {gauss_bad:.2f} t {t_bad:.2f}")
    assert t_clean < 1.1 * gauss_clean  # measured 1.06x
    assert t_bad < 0.97 * gauss_bad and t_bad < 1.1 * t_clean


def test_batched_equals_one_device_at_a_time_with_per_device_dt():
    rng = np.random.default_rng(1)
    n = 5
    kf = KalmanTracker(n, sigma_a=0.8)
    singles = [KalmanTracker(1, sigma_a=0.8) for _ in range(n)]
    t = np.zeros(n)
    for k in range(30):
        dt = rng.uniform(0.5, 3.0, n)
        t += dt
        z = rng.uniform(0, 20, (n, 2))
        R = np.broadcast_to(np.diag([4.0, 9.0]), (n, 2, 2)).copy()
        mask = rng.uniform(size=n) < 0.8
        kf.predict(np.where(kf.active, dt, 0.0))
        kf.update(z, R, mask)
        for i, s in enumerate(singles):
            s.predict(dt[i] if s.active[0] else 0.0)
            s.update(z[i:i + 1], R[i:i + 1], mask[i:i + 1])
    for i, s in enumerate(singles):
        np.testing.assert_allclose(kf.x[i], s.x[0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(kf.P[i], s.P[0], rtol=1e-12, atol=1e-12)


def test_speed_cap_clips_and_inflates():
    kf = KalmanTracker(1, sigma_a=3.0, v_max=2.5, gate=1e9)
    R = np.eye(2)[None] * 0.01
    for k in range(10):  # fixes that say 6 m/s
        kf.step(float(k), np.array([[6.0 * k, 0.0]]), R)
        assert np.hypot(*kf.x[0, 2:]) <= 2.5 + 1e-9
    p_capped = kf.P[0, 2, 2]
    free = KalmanTracker(1, sigma_a=3.0, v_max=1e3, gate=1e9)
    for k in range(10):
        free.step(float(k), np.array([[6.0 * k, 0.0]]), R)
    assert free.x[0, 2] > 5.5 and p_capped > free.P[0, 2, 2]


def test_gating_rejects_outliers_then_restarts():
    kf = KalmanTracker(2, sigma_a=0.3, max_gated=3)
    R = np.broadcast_to(np.eye(2) * 4.0, (2, 2, 2)).copy()
    for k in range(20):
        kf.step(float(k), np.array([[10.0, 10.0], [30.0, 5.0]]), R)
    x_before = kf.x[0].copy()
    st = kf.step(20.0, np.array([[60.0, 10.0], [30.0, 5.0]]), R)  # device 0: a 50 m jump
    assert st.gated.tolist() == [True, False] and st.used.tolist() == [False, True] and st.d2[0] > 100
    np.testing.assert_allclose(kf.x[0, :2], x_before[:2], atol=1e-9)
    st = kf.step(21.0, np.array([[60.0, 10.0], [30.0, 5.0]]), R)
    assert st.gated[0] and not st.started[0]
    st = kf.step(22.0, np.array([[60.0, 10.0], [30.0, 5.0]]), R)  # third in a row: it really moved
    assert st.started[0] and st.used[0] and not st.gated[0]
    np.testing.assert_allclose(kf.x[0], [60.0, 10.0, 0.0, 0.0])
    # A missing fix (NaN) neither updates nor counts as an outlier.
    st = kf.step(23.0, np.array([[np.nan, np.nan], [30.0, 5.0]]), R)
    assert not st.used[0] and not st.gated[0] and np.isnan(st.d2[0])


def test_slots_add_remove_expire_and_reset():
    kf = KalmanTracker(3, expiry_s=30.0)
    s = kf.slots(["a", "b"])
    assert sorted(s.tolist()) == [0, 1] and kf.slots(["b"], create=False).tolist() == [s[1]]
    assert kf.slots(["zz"], create=False).tolist() == [-1]
    R = np.broadcast_to(np.eye(2), (3, 2, 2)).copy()
    z = np.full((3, 2), np.nan)
    z[s] = [[1.0, 1.0], [2.0, 2.0]]
    kf.step(100.0, z, R)
    assert kf.active[s].all()
    s2 = kf.slots(["c", "d"])  # one free slot left: "d" does not fit
    assert s2[1] == -1 and s2[0] not in s
    z2 = np.full((3, 2), np.nan)
    z2[s[1]] = [2.5, 2.0]
    z2[s2[0]] = [9.0, 9.0]
    kf.step(120.0, z2, R)
    # "a" has had no fix since t=100: expired at 135; "b" and "c" were fixed at 120.
    assert kf.expire(125.0) == []
    assert kf.expire(135.0) == ["a"]
    assert not kf.active[s[0]] and kf.ids[s[0]] is None
    s3 = kf.slots(["d"])  # the freed slot is reused and starts clean
    assert s3[0] == s[0] and not kf.active[s3[0]] and np.isnan(kf.x[s3[0]]).all()
    # An address change: the caller resets the slot; the next fix restarts the track there.
    kf.reset(np.array([s[1]]))
    z3 = np.full((3, 2), np.nan)
    z3[s[1]] = [40.0, 0.0]
    st = kf.step(121.0, z3, R)
    assert st.started[s[1]] and np.allclose(kf.x[s[1]], [40.0, 0.0, 0.0, 0.0])
    kf.remove(["b", "nope"])
    assert kf.slots(["b"], create=False).tolist() == [-1]


def test_validation():
    with pytest.raises(InvalidParameterError) as e:
        KalmanTracker(2, sigma_a=0.0)
    assert e.value.parameter == "sigma_a"
    kf = KalmanTracker(2)
    with pytest.raises(InvalidParameterError) as e:
        kf.update(np.zeros((3, 2)), np.zeros((3, 2, 2)))
    assert e.value.parameter == "z"
    with pytest.raises(InvalidParameterError) as e:
        rts_smooth(np.array([0.0, 0.0]), np.zeros((2, 1, 2)), np.zeros((2, 1, 2, 2)))
    assert e.value.parameter == "t"
    for bad, name in (({"nu": 0.0}, "nu"), ({"iters": 0}, "iters")):
        with pytest.raises(InvalidParameterError) as e:
            rts_smooth(np.arange(2.0), np.zeros((2, 1, 2)), np.broadcast_to(np.eye(2), (2, 1, 2, 2)), **bad)
        assert e.value.parameter == name
    with pytest.raises(InvalidParameterError) as e:
        KalmanTracker(2, nu=-1.0)
    assert e.value.parameter == "nu"


def test_smoother_cuts_at_restarts_and_leaves_gaps_nan_before_first_fix():
    t = np.arange(40.0)
    z = np.full((40, 1, 2), np.nan)
    z[5:20, 0] = [[1.0 + 0.1 * k, 0.0] for k in range(15)]
    z[25:, 0] = [80.0, 5.0]  # far away: gated, then restarted after max_gated
    R = np.broadcast_to(np.eye(2), (40, 1, 2, 2)).copy()
    res = rts_smooth(t, z, R, max_gated=3)
    assert np.isnan(res.x[:5]).all() and np.isfinite(res.x[5:]).all()
    # The segment before the restart is not dragged towards the later position.
    assert np.all(np.abs(res.x[5:20, 0, 0] - z[5:20, 0, 0]) < 1.0)
    np.testing.assert_allclose(res.x[30:, 0, :2], [[80.0, 5.0]] * 10, atol=0.5)


def _scenario_rmse():
    """(single fix, filter, smoother) RMSE over the scenario mall's seeds, ride seconds excluded.

    Fixes: FloorModel's per-window posterior mean on the Viterbi floor, with its covariance as
    R; the same fixes feed the filter and the smoother.
    """
    e_fix, e_f, e_s = [], [], []
    for seed in scn.SEEDS:
        r = scn.run(seed)
        tr = r.scenario.truth
        ok = np.isfinite(r.fix).all(-1) & ~tr.riding
        e_fix.append(np.sum((r.fix - tr.xy) ** 2, -1)[ok])
        e_f.append(np.sum((r.track.x_filt[..., :2] - tr.xy) ** 2, -1)[ok])
        e_s.append(np.sum((r.track.x[..., :2] - tr.xy) ** 2, -1)[ok])
    fix, filt, smooth = (np.sqrt(np.concatenate(e).mean()) for e in (e_fix, e_f, e_s))
    print(f"RMSE: single fix {fix:.2f} m, filter {filt:.2f} m (ratio {filt / fix:.3f}), "
          f"RTS smoother {smooth:.2f} m (ratio {smooth / fix:.3f})")
    return fix, filt, smooth


def test_tracking_gains_what_correlated_shadowing_allows():
    """DESIGN.md: with spatially correlated shadowing a filter gains about 1.2x over single
    fixes and a smoother about 1.4x.  Guard those gains: measured 1.245x and 1.431x on these
    seeds (1.243x and 1.403x pooled over seeds 7-12) with the Student-t EM smoother; the
    Gaussian CV smoother with sigma_a 0.5 made 1.21x and 1.37x."""
    fix, filt, smooth = _scenario_rmse()
    assert fix / filt >= 1.22
    assert fix / smooth >= 1.40


def test_tracking_rmse_on_scenario_mall():
    """The issue's target: the RTS smoother's RMSE at least 30 % below the single-fix RMSE.

    Met with a thin margin (ratio 0.699; pooled over seeds 7-12 it is 0.713): 72 % of
    device-seconds are stops whose error is mostly the static shadowing bias that every fix of
    a stop shares, and no smoothing of the fixes removes that.  The Student-t fix errors
    (heavy tails) and a stiffer motion model made the gain (the Gaussian CV smoother: 0.732).
    """
    fix, filt, smooth = _scenario_rmse()
    assert filt < fix
    assert smooth <= 0.70 * fix
