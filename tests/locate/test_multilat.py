"""Maximum-likelihood multilateration: accuracy against the Cramér-Rao bound, options, errors."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import locate.baseline
import locate.bounds
import locate.multilat
import locate.pathloss
from locate import PathLoss, crlb, multilaterate
from locate.baseline import range_ls, weighted_centroid
from locate.errors import InvalidParameterError, LocateError
from locate.multilat import STATUS_NOT_HEARD, STATUS_TOO_FEW

FLOOR = (0.0, 0.0, 80.0, 50.0)
SENS = -100.0


def mall(seed=7, n=20_000, sigma=6.0, offsets_db=None):
    """80 x 50 m floor, 16 ceiling gateways (4 x 4) at 3.5 m, devices at 1.2 m.

    Per-gateway P0 known, spread +-3 dB around -59 dBm; n 2.5; whole-dBm RSSI; a reading
    below -100 dBm is not reported (NaN).
    """
    rng = np.random.default_rng(seed)
    gx, gy = np.meshgrid([10.0, 30.0, 50.0, 70.0], [6.25, 18.75, 31.25, 43.75])
    anchors = np.c_[gx.ravel(), gy.ravel(), np.full(16, 3.5)]
    model = PathLoss(-59.0 + rng.uniform(-3, 3, 16), 2.5, sigma)
    xy = np.c_[rng.uniform(0, 80, n), rng.uniform(0, 50, n)]
    d = np.sqrt(((xy[:, None, :] - anchors[:, :2]) ** 2).sum(2) + (3.5 - 1.2) ** 2)
    mean = model.mean_rssi(d)
    if offsets_db is not None:
        mean = mean + offsets_db[:, None]
    rssi = np.round(mean + rng.normal(0.0, sigma, d.shape))
    rssi[rssi < SENS] = np.nan
    return anchors, model, xy, rssi


@pytest.fixture(scope="module")
def scene():
    anchors, model, xy, rssi = mall()
    # The gateways report whole dBm and drop readings below -100 dBm, so a device is heard
    # iff its continuous RSSI is >= -100.5 dBm: that is the censoring threshold.
    fix = multilaterate(anchors, rssi, model, z=1.2, bounds=FLOOR, sensitivity_dbm=SENS - 0.5)
    return anchors, model, xy, rssi, fix


def _rmse_vs_crlb(anchors, model, xy, rssi, fix):
    heard = ~np.isnan(rssi)
    sel = fix.ok & (heard.sum(1) >= 3)
    err = fix.xy[sel] - xy[sel]
    rmse = float(np.sqrt(np.mean((err**2).sum(1))))
    bound = crlb(anchors, xy[sel], model, z=1.2, heard=heard[sel])
    return rmse, float(np.sqrt(np.mean(bound**2))), sel, err


def test_rmse_within_15_percent_of_crlb(scene):
    """RMSE of ok fixes <= 1.15 x RMS of the per-device CRLB (on the anchors each device heard)."""
    anchors, model, xy, rssi, fix = scene
    rmse, bound, sel, _ = _rmse_vs_crlb(anchors, model, xy, rssi, fix)
    print(f"censored ML in floor box: RMSE {rmse:.3f} m, CRLB {bound:.3f} m, ratio {rmse / bound:.3f}")
    assert sel.sum() > 19_000
    assert rmse <= 1.15 * bound


def test_censored_likelihood_alone_meets_the_bound_target(scene):
    """The gain comes from the likelihood, not the box: without bounds it also holds
    (measured 1.13 x); the box alone does not help the detections-only ML (1.37 x)."""
    anchors, model, xy, rssi, _ = scene
    fix = multilaterate(anchors, rssi, model, z=1.2, sensitivity_dbm=SENS - 0.5)
    rmse, bound, _, _ = _rmse_vs_crlb(anchors, model, xy, rssi, fix)
    print(f"censored ML, no box: ratio {rmse / bound:.3f}")
    assert rmse <= 1.15 * bound


def test_detections_only_ml_figure(scene):
    """Plain ML on detections only (no sensitivity, no box): figure reported, and its known
    weakness asserted - it is pulled towards far gateways heard on lucky fades, so it is
    clearly worse than the censored ML."""
    anchors, model, xy, rssi, fix = scene
    plain = multilaterate(anchors, rssi, model, z=1.2)
    rmse_p, bound, _, _ = _rmse_vs_crlb(anchors, model, xy, rssi, plain)
    rmse_c, _, _, _ = _rmse_vs_crlb(anchors, model, xy, rssi, fix)
    print(f"detections-only ML: RMSE {rmse_p:.3f} m = {rmse_p / bound:.3f} x CRLB")
    assert rmse_c < 0.9 * rmse_p
    assert rmse_p < 1.6 * bound


def test_almost_all_heard_devices_get_ok_fixes(scene):
    anchors, model, xy, rssi, fix = scene
    nh = (~np.isnan(rssi)).sum(1)
    assert np.array_equal(fix.n_heard, nh)
    frac = fix.ok[nh >= 3].mean()
    assert frac >= 0.99
    assert not fix.ok[nh < 3].any()
    assert np.all(np.isfinite(fix.cov[fix.ok]))


def test_beats_range_inversion_least_squares(scene):
    anchors, model, xy, rssi, fix = scene
    rmse, _, sel, _ = _rmse_vs_crlb(anchors, model, xy, rssi, fix)
    for weighted in (False, True):
        base = range_ls(anchors, rssi, model, z=1.2, weighted=weighted)[sel]
        rmse_b = float(np.sqrt(np.mean(((base - xy[sel]) ** 2).sum(1))))
        print(f"range LS (weighted={weighted}) RMSE {rmse_b:.3f} m; ML/LS ratio {rmse / rmse_b:.3f}")
        assert rmse < 0.8 * rmse_b
    cen = weighted_centroid(anchors, rssi, model)[sel]
    assert rmse < 0.8 * np.sqrt(np.mean(((cen - xy[sel]) ** 2).sum(1)))


def test_covariance_is_honest(scene):
    """Median squared Mahalanobis distance of the errors ~ chi2(2) median 1.386 (factor 1.6)."""
    anchors, model, xy, rssi, fix = scene
    _, _, sel, err = _rmse_vs_crlb(anchors, model, xy, rssi, fix)
    inv = np.linalg.inv(fix.cov[sel])
    m2 = np.einsum("ni,nij,nj->n", err, inv, err)
    med = float(np.median(m2))
    print(f"median squared Mahalanobis {med:.3f} (chi2(2) median 1.386)")
    assert 1.386 / 1.6 <= med <= 1.386 * 1.6


def test_second_seed_accuracy():
    anchors, model, xy, rssi = mall(seed=11, n=8000)
    fix = multilaterate(anchors, rssi, model, bounds=FLOOR, sensitivity_dbm=SENS - 0.5)
    rmse, bound, _, _ = _rmse_vs_crlb(anchors, model, xy, rssi, fix)
    print(f"seed 11: ratio {rmse / bound:.3f}")
    assert rmse <= 1.15 * bound


def test_bounds_are_respected(scene):
    _, _, _, _, fix = scene
    ok = fix.ok
    assert np.all((fix.xy[ok] >= [0, 0]) & (fix.xy[ok] <= [80, 50]))


def test_noise_free_exact_with_per_anchor_parameters():
    rng = np.random.default_rng(3)
    anchors = np.c_[rng.uniform(0, 30, 6), rng.uniform(0, 20, 6), rng.uniform(2.5, 4, 6)]
    model = PathLoss(rng.uniform(-65, -55, 6), rng.uniform(1.8, 3.2, 6), rng.uniform(3, 8, 6))
    xy = np.c_[rng.uniform(2, 28, 500), rng.uniform(2, 18, 500)]
    z = rng.uniform(0.5, 1.8, 500)
    d = np.sqrt(((xy[:, None] - anchors[:, :2]) ** 2).sum(2) + (anchors[:, 2] - z[:, None]) ** 2)
    fix = multilaterate(anchors, model.mean_rssi(d), model, z=z, xtol=1e-7)
    assert fix.ok.all()
    exact = np.hypot(*(fix.xy - xy).T) < 1e-4
    # Six random anchors leave genuine near-ties: a mirror point a few metres away that fits
    # almost as well (< 1 chi-square unit: a likelihood ratio below e^0.5, which any noise
    # swamps), inside one start-grid cell of the truth so the multi-start does not separate it.
    # Asserted: 97 % exact (measured 97.8 %), every other fix such a near-tie.
    assert exact.mean() >= 0.97
    np.testing.assert_allclose(fix.cost[exact], 0.0, atol=1e-6)
    assert np.all(fix.cost[~exact] < 1.0)
    assert np.all(np.hypot(*(fix.xy - xy)[~exact].T) < 8.0)  # measured max 6.3 m
    # covariance equals the inverse Fisher information at the truth
    np.testing.assert_allclose(np.sqrt(np.trace(fix.cov[exact], axis1=1, axis2=2)),
                               crlb(anchors, xy[exact], model, z=z[exact]), rtol=1e-4)


def test_multi_start_finds_the_better_basin():
    """Without the second start the same batch ends in more wrong basins."""
    rng = np.random.default_rng(3)
    anchors = np.c_[rng.uniform(0, 30, 6), rng.uniform(0, 20, 6), rng.uniform(2.5, 4, 6)]
    model = PathLoss(rng.uniform(-65, -55, 6), rng.uniform(1.8, 3.2, 6), rng.uniform(3, 8, 6))
    xy = np.c_[rng.uniform(2, 28, 4000), rng.uniform(2, 18, 4000)]
    d = np.sqrt(((xy[:, None] - anchors[:, :2]) ** 2).sum(2) + (anchors[:, 2] - 1.2) ** 2)
    one = multilaterate(anchors, model.mean_rssi(d), model, second_start_gap=0.0)
    two = multilaterate(anchors, model.mean_rssi(d), model, second_start_gap=4.0)
    wrong1 = int((np.hypot(*(one.xy - xy).T) > 1e-2).sum())
    wrong2 = int((np.hypot(*(two.xy - xy).T) > 1e-2).sum())
    print(f"noise-free wrong basins: single start {wrong1}, multi-start {wrong2} of 4000")
    assert wrong2 < wrong1
    # never worse, up to where two runs stop within xtol (1 mm) of the same optimum
    assert np.all(two.cost <= one.cost + 1e-6)


def test_start_does_not_collapse_onto_the_loudest_anchor():
    """A device midway between anchors, heard loudest by one: the fix is not at that anchor."""
    anchors = np.array([[0, 0, 3.0], [20, 0, 3.0], [0, 20, 3.0], [20, 20, 3.0], [10, 10, 3.0]])
    model = PathLoss(-59.0, 2.5, 4.0)
    truth = np.array([[6.0, 4.0]])
    d = np.linalg.norm(np.c_[truth, [[1.2]]] - anchors, axis=1)
    fix = multilaterate(anchors, model.mean_rssi(d)[None], model)
    np.testing.assert_allclose(fix.xy, truth, atol=1e-3)


def test_chunking_does_not_change_results():
    anchors, model, xy, rssi = mall(seed=5, n=3000)
    a = multilaterate(anchors, rssi, model, chunk_size=4096)
    b = multilaterate(anchors, rssi, model, chunk_size=257)
    np.testing.assert_allclose(a.xy, b.xy, rtol=1e-9, atol=1e-9)
    assert np.array_equal(a.ok, b.ok)


def test_unknown_device_offset_is_estimated():
    rng = np.random.default_rng(9)
    offs = rng.uniform(-8, 8, 4000)
    anchors, model, xy, rssi = mall(seed=9, n=4000, sigma=3.0, offsets_db=offs)
    fix = multilaterate(anchors, rssi, model, estimate_offset=True, bounds=FLOOR)
    plain = multilaterate(anchors, rssi, model, bounds=FLOOR)
    ok = fix.ok & plain.ok
    e_off = np.hypot(*(fix.xy[ok] - xy[ok]).T)
    e_plain = np.hypot(*(plain.xy[ok] - xy[ok]).T)
    assert np.sqrt(np.mean(e_off**2)) < 0.8 * np.sqrt(np.mean(e_plain**2))
    # offsets recovered to within the noise
    assert np.median(np.abs(fix.offset_db[ok] - offs[ok])) < 2.0
    assert np.corrcoef(fix.offset_db[ok], offs[ok])[0, 1] > 0.9
    # the bound with an unknown offset is larger, and the reported covariance says so
    heard = ~np.isnan(rssi)
    b_known = crlb(anchors, xy, model, heard=heard)
    b_off = crlb(anchors, xy, model, heard=heard, estimate_offset=True)
    rise = np.median(b_off / b_known)
    print(f"bound rises x{rise:.3f} with an unknown offset")
    assert 1.05 < rise < 1.8
    assert plain.offset_db is None


def test_huber_resists_outlier_readings():
    anchors, model, xy, _ = mall(seed=4, n=3000, sigma=2.0)
    rng = np.random.default_rng(4)
    d = np.sqrt(((xy[:, None, :] - anchors[:, :2]) ** 2).sum(2) + 2.3**2)
    rssi = model.mean_rssi(d) + rng.normal(0, 2.0, d.shape)
    bad = rng.random(d.shape) < 0.1
    rssi[bad] += 25.0  # reflections / a body: +25 dB on 10 % of readings
    l2 = multilaterate(anchors, rssi, model, bounds=FLOOR)
    hub = multilaterate(anchors, rssi, model, bounds=FLOOR, loss="huber")
    cau = multilaterate(anchors, rssi, model, bounds=FLOOR, loss="cauchy")
    e = {k: np.median(np.hypot(*(f.xy - xy).T)) for k, f in (("l2", l2), ("huber", hub), ("cauchy", cau))}
    print("median errors with outliers", e)
    assert e["huber"] < 0.7 * e["l2"]
    assert e["cauchy"] < 0.6 * e["l2"]


def test_prior_pulls_and_tightens():
    anchors, model, xy, rssi = mall(seed=6, n=2000)
    prior_cov = np.eye(2) * 4.0
    fix = multilaterate(anchors, rssi, model, prior_xy=xy, prior_cov=prior_cov)
    free = multilaterate(anchors, rssi, model)
    e_p = np.hypot(*(fix.xy - xy).T)
    e_f = np.hypot(*(free.xy - xy).T)
    assert np.median(e_p) < 0.6 * np.median(e_f)
    # posterior covariance is tighter than both the prior and the measurement-only one
    tr_p = np.trace(fix.cov, axis1=1, axis2=2)
    assert np.all(tr_p < 8.0)
    assert np.all(tr_p[free.ok] < np.trace(free.cov[free.ok], axis1=1, axis2=2))
    # with a prior a device heard by a single gateway still gets a determined fix
    one = np.full((1, 16), np.nan)
    one[0, 5] = -70.0
    f1 = multilaterate(anchors, one, model, prior_xy=[30.0, 20.0], prior_cov=prior_cov)
    assert f1.ok[0]


def test_rows_with_too_few_anchors_are_flagged_not_raised():
    anchors, model, xy, rssi = mall(seed=8, n=10)
    rssi[0] = np.nan
    rssi[1, 2:] = np.nan
    fix = multilaterate(anchors, rssi, model)
    assert fix.status[0] == STATUS_NOT_HEARD and np.isnan(fix.xy[0]).all()
    assert fix.status[1] == STATUS_TOO_FEW and np.isfinite(fix.xy[1]).all()
    assert not fix.ok[:2].any() and np.isnan(fix.cov[:2]).all()
    assert fix.ok[2:].all()
    assert len(fix) == 10


def test_empty_batch():
    anchors, model, _, _ = mall(n=1)
    fix = multilaterate(anchors, np.empty((0, 16)), model)
    assert fix.xy.shape == (0, 2) and fix.cov.shape == (0, 2, 2) and fix.ok.shape == (0,)


BAD = [
    (dict(anchors_xyz=np.zeros((4, 2))), "anchors_xyz"),
    (dict(rssi_dbm=np.zeros((3, 5))), "rssi_dbm"),
    (dict(rssi_dbm=np.full((2, 4), np.inf)), "rssi_dbm"),
    (dict(model=PathLoss(np.full(5, -59.0), 2.5, 6.0)), "model.p0_dbm"),
    (dict(model="pathloss"), "model"),
    (dict(z=np.inf), "z"),
    (dict(z=np.ones(7)), "z"),
    (dict(bounds=(0, 0, -1, 5)), "bounds"),
    (dict(loss="l1"), "loss"),
    (dict(loss="huber", loss_scale=0.0), "loss_scale"),
    (dict(prior_xy=[1.0, 2.0]), "prior_cov"),
    (dict(prior_xy=[1.0, 2.0], prior_cov=-np.eye(2)), "prior_cov"),
    (dict(min_anchors=0), "min_anchors"),
    (dict(max_iter=0), "max_iter"),
    (dict(xtol=-1.0), "xtol"),
    (dict(estimate_offset="yes"), "estimate_offset"),
    (dict(sensitivity_dbm=np.zeros(3)), "sensitivity_dbm"),
    (dict(chunk_size=0), "chunk_size"),
]


@pytest.mark.parametrize("override,name", BAD, ids=[b[1] + str(i) for i, b in enumerate(BAD)])
def test_bad_options_name_the_parameter(override, name):
    args = dict(anchors_xyz=np.array([[0, 0, 3], [9, 0, 3], [0, 9, 3], [9, 9, 3.0]]),
                rssi_dbm=np.full((2, 4), -70.0), model=PathLoss(-59.0, 2.5, 6.0))
    args.update(override)
    with pytest.raises(InvalidParameterError) as info:
        multilaterate(**args)
    assert info.value.parameter == name
    assert isinstance(info.value, LocateError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize("kw,name", [(dict(sigma_db=0.0), "sigma_db"), (dict(exponent=-2.0), "exponent"),
                                     (dict(p0_dbm=np.nan), "p0_dbm"), (dict(p0_dbm=np.zeros((2, 2))), "p0_dbm")])
def test_bad_model_names_the_parameter(kw, name):
    with pytest.raises(InvalidParameterError) as info:
        PathLoss(**kw)
    assert info.value.parameter == name


@pytest.mark.parametrize("mod", [locate.multilat, locate.bounds, locate.pathloss, locate.baseline])
def test_docstring_examples_run(mod):
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.attempted > 0
    assert res.failed == 0


@pytest.mark.parametrize("loss", ["l2", "huber", "cauchy"])
@pytest.mark.parametrize("offset", [False, True])
@pytest.mark.parametrize("censored", [False, True])
def test_option_combinations_solve(loss, offset, censored):
    """Every combination of loss, offset and censoring runs on one batch and locates well."""
    anchors, model, xy, rssi = mall(seed=12, n=1500, sigma=4.0)
    kw = dict(loss=loss, estimate_offset=offset, bounds=FLOOR)
    if censored:
        kw["sensitivity_dbm"] = SENS - 0.5
    fix = multilaterate(anchors, rssi, model, z=np.full(1500, 1.2), **kw)
    nh = (~np.isnan(rssi)).sum(1)
    assert fix.ok[nh >= (4 if offset else 3)].mean() >= 0.99
    err = fix.xy[fix.ok] - xy[fix.ok]
    heard = ~np.isnan(rssi[fix.ok])
    bound = crlb(anchors, xy[fix.ok], model, heard=heard, estimate_offset=offset)
    ratio = np.sqrt(np.mean((err**2).sum(1)) / np.mean(bound**2))
    print(f"loss {loss} offset {offset} censored {censored}: RMSE / CRLB {ratio:.3f}")
    assert ratio < 1.5
    assert (fix.offset_db is not None) == offset
    assert fix.iterations.max() <= 2 * 40
    # a row may stop without iterating only where its start is on the box and the projected
    # step (held across the face) is already below xtol
    still = fix.ok & (fix.iterations == 0)
    assert np.all(np.isin(fix.xy[still, 0], [0.0, 80.0]) | np.isin(fix.xy[still, 1], [0.0, 50.0]))


def test_baselines_handle_missing_and_top():
    anchors = np.array([[0, 0, 3.0], [10, 0, 3.0], [0, 10, 3.0], [10, 10, 3.0]])
    model = PathLoss(-59.0, 2.0, 4.0)
    rssi = np.array([[-60.0, -60.0, -60.0, -60.0], [-60.0, np.nan, -70.0, np.nan],
                     [-50.0, -80.0, -80.0, -90.0]])
    ls = range_ls(anchors, rssi, model)
    np.testing.assert_allclose(ls[0], [5.0, 5.0], atol=1e-6)
    assert np.isnan(ls[1]).all()  # two anchors: range LS undetermined
    wc = weighted_centroid(anchors, rssi, model)
    np.testing.assert_allclose(wc[0], [5.0, 5.0])
    assert np.isfinite(wc[1]).all() and wc[1, 1] < 5.0  # pulled to the louder anchor at y = 0
    top1 = weighted_centroid(anchors, rssi, model, top=1)
    np.testing.assert_allclose(top1[2], [0.0, 0.0])


def test_basement_floor_below_street_level():
    """A metro level at -5 m: anchors and devices with negative z locate like any other floor."""
    rng = np.random.default_rng(11)
    gx, gy = np.meshgrid(np.linspace(5, 75, 4), np.linspace(5, 45, 4))
    anchors = np.c_[gx.ravel(), gy.ravel(), np.full(16, -1.5)]
    xy = rng.uniform([0, 0], [80, 50], (500, 2))
    model = PathLoss(-59.0, 2.5, 3.0)
    d = np.sqrt(((xy[:, None, :] - anchors[None, :, :2]) ** 2).sum(-1) + (-3.8 + 1.5) ** 2)
    rssi = model.p0_dbm - 25.0 * np.log10(d) + rng.normal(0, 3.0, d.shape)
    fix = multilaterate(anchors, rssi, model, z=-3.8)
    assert fix.ok.all()
    err = np.sqrt(((fix.xy - xy) ** 2).sum(1))
    rmse = float(np.sqrt(np.mean(err ** 2)))
    bound = float(np.sqrt(np.mean(crlb(anchors, xy, model, z=-3.8) ** 2)))
    assert rmse < 1.3 * bound
