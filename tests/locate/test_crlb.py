"""Cramér-Rao bound: closed-form properties and agreement with an efficient estimator."""

from __future__ import annotations

import numpy as np
import pytest

from locate import PathLoss, crlb, fisher_information, multilaterate
from locate.errors import InvalidParameterError

ANCH = np.array([[0, 0, 3.0], [30, 0, 3.0], [0, 30, 3.0], [30, 30, 3.0], [15, 15, 3.0], [15, 0, 3.0]])


def test_high_snr_ml_attains_the_bound():
    """At sigma 1 dB the ML estimator is efficient: its error covariance equals the CRB."""
    rng = np.random.default_rng(0)
    model = PathLoss(-59.0, 2.5, 1.0)
    truth = np.array([11.0, 19.0])
    n = 20_000
    d = np.linalg.norm(np.r_[truth, 1.2] - ANCH, axis=1)
    rssi = model.mean_rssi(d) + rng.normal(0, 1.0, (n, 6))
    fix = multilaterate(ANCH, rssi, model)
    err = fix.xy - truth
    emp = np.cov(err.T)
    info = fisher_information(ANCH, truth[None], model)[0]
    crb = np.linalg.inv(info)
    np.testing.assert_allclose(emp, crb, rtol=0.06, atol=0.002)
    rmse = np.sqrt((err**2).sum(1).mean())
    assert abs(rmse / crlb(ANCH, truth[None], model)[0] - 1) < 0.03
    # the reported covariance is the same CRB evaluated at the estimate, which scatters by
    # about a metre here (the off-diagonal term moves most); its size agrees
    rep = np.sqrt(np.trace(fix.cov, axis1=1, axis2=2))
    assert abs(np.median(rep) / np.sqrt(np.trace(crb)) - 1) < 0.05


def test_scaling_laws():
    xy = np.array([[5.0, 7.0], [20.0, 12.0], [40.0, 40.0]])
    b = crlb(ANCH, xy, PathLoss(-59.0, 2.5, 6.0))
    np.testing.assert_allclose(crlb(ANCH, xy, PathLoss(-59.0, 2.5, 3.0)), b / 2, rtol=1e-12)
    np.testing.assert_allclose(crlb(ANCH, xy, PathLoss(-59.0, 5.0, 6.0)), b / 2, rtol=1e-12)
    np.testing.assert_allclose(crlb(ANCH, xy, PathLoss(-40.0, 2.5, 6.0)), b, rtol=1e-12)
    # per-anchor sigma: making one anchor noisier can only loosen the bound
    sig = np.full(6, 6.0)
    sig[4] = 12.0
    assert np.all(crlb(ANCH, xy, PathLoss(-59.0, 2.5, sig)) > b)


def test_heard_mask_and_offset():
    xy = np.array([[10.0, 10.0], [25.0, 5.0]])
    model = PathLoss(-59.0, 2.5, 6.0)
    full = crlb(ANCH, xy, model)
    heard = np.ones((2, 6), bool)
    heard[:, 3] = False
    assert np.all(crlb(ANCH, xy, model, heard=heard) > full)
    np.testing.assert_allclose(crlb(ANCH, xy, model, heard=np.ones((2, 6), bool)), full)
    off = crlb(ANCH, xy, model, estimate_offset=True)
    assert np.all(off > full)
    one = np.zeros((2, 6), bool)
    one[:, 0] = True
    assert np.all(np.isinf(crlb(ANCH, xy, model, heard=one)))


def test_singular_geometry_is_inf_not_an_error():
    line = np.array([[0, 0, 3.0], [10, 0, 3.0], [20, 0, 3.0]])
    b = crlb(line, [[5.0, 0.0], [5.0, 8.0]], PathLoss())
    assert np.isinf(b[0]) and np.isfinite(b[1])


def test_fisher_is_symmetric_positive_semidefinite():
    rng = np.random.default_rng(1)
    xy = rng.uniform(-10, 40, (500, 2))
    info = fisher_information(ANCH, xy, PathLoss(-59.0, 2.5, 6.0), z=rng.uniform(0, 2, 500))
    np.testing.assert_array_equal(info[:, 0, 1], info[:, 1, 0])
    assert np.all(np.linalg.eigvalsh(info) > -1e-12)


@pytest.mark.parametrize("kw,name", [
    (dict(xy=np.zeros((3, 3))), "xy"),
    (dict(heard=np.ones((3, 6))), "heard"),
    (dict(heard=np.ones((2, 6), bool)), "heard"),
    (dict(z=np.nan), "z"),
    (dict(model=PathLoss(-59.0, np.full(4, 2.5), 6.0)), "model.exponent"),
])
def test_bad_input_names_the_parameter(kw, name):
    args = dict(anchors_xyz=ANCH, xy=np.zeros((3, 2)), model=PathLoss())
    args.update(kw)
    with pytest.raises(InvalidParameterError) as info:
        crlb(**args)
    assert info.value.parameter == name
