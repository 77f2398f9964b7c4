"""Coverage planning grids: asserted properties of the expected accuracy and floor margin."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import locate.coverage
from locate import PathLoss, crlb
from locate.coverage import accuracy_grid, floor_margin_grid
from locate.errors import InvalidParameterError

MODEL = PathLoss(-59.0, 2.5, 6.0)
GX = np.arange(0.0, 80.1, 2.0)
GY = np.arange(0.0, 50.1, 2.0)


def grid_anchors(nx, ny, z=3.5):
    xs = np.linspace(80 / nx / 2, 80 - 80 / nx / 2, nx)
    ys = np.linspace(50 / ny / 2, 50 - 50 / ny / 2, ny)
    gx, gy = np.meshgrid(xs, ys)
    return np.c_[gx.ravel(), gy.ravel(), np.full(gx.size, z)]


def test_shape_and_agreement_with_crlb():
    a = grid_anchors(4, 4)
    g = accuracy_grid(a, MODEL, GX, GY, sensitivity_dbm=-200.0)  # every anchor counts
    assert g.shape == (GY.size, GX.size)
    xx, yy = np.meshgrid(GX, GY)
    np.testing.assert_allclose(g.ravel(), crlb(a, np.c_[xx.ravel(), yy.ravel()], MODEL), rtol=1e-12)


def test_worse_far_from_anchors():
    a = grid_anchors(2, 2)  # anchors at (20|60, 12.5|37.5)
    gx = np.array([40.0, 80.0, 120.0, 200.0])
    g = accuracy_grid(a, MODEL, gx, [25.0], sensitivity_dbm=-200.0)[0]
    assert np.all(np.diff(g) > 0)
    assert g[-1] > 5 * g[0]
    # with a real sensitivity the far cells hear fewer than two anchors: no fix at all
    cut = accuracy_grid(a, MODEL, gx, [25.0], sensitivity_dbm=-100.0)[0]
    assert np.isfinite(cut[0]) and np.isinf(cut[-1])


def test_better_with_more_anchors():
    few = accuracy_grid(grid_anchors(2, 2), MODEL, GX, GY)
    many = accuracy_grid(grid_anchors(4, 4), MODEL, GX, GY)
    assert np.median(many) < 0.7 * np.median(few)
    assert np.all(many <= few * 1.01)  # more anchors never hurt much (sensitivity cut aside)


def test_sensitivity_cuts_anchors_and_offset_raises_bound():
    a = grid_anchors(4, 4)
    loose = accuracy_grid(a, MODEL, GX, GY, sensitivity_dbm=-200.0)
    tight = accuracy_grid(a, MODEL, GX, GY, sensitivity_dbm=-85.0)
    assert np.all(tight >= loose - 1e-9) and np.mean(tight > loose * 1.05) > 0.5
    off = accuracy_grid(a, MODEL, GX, GY, estimate_offset=True)
    ratio = np.median(off / accuracy_grid(a, MODEL, GX, GY))
    assert 1.05 < ratio < 1.8


def two_floors():
    a0 = grid_anchors(3, 2, z=3.5)
    a1 = grid_anchors(3, 2, z=3.5 + 5.0)
    return np.r_[a0, a1], np.r_[np.zeros(6, int), np.ones(6, int)], np.array([0.0, 5.0])


def test_margin_grows_with_slab_loss():
    a, af, elev = two_floors()
    low = floor_margin_grid(a, af, elev, 5.0, (GX, GY), 0)
    high = floor_margin_grid(a, af, elev, 15.0, (GX, GY), 0)
    assert low.shape == (GY.size, GX.size)
    assert np.all(high >= low) and np.median(high) > 3 * np.median(low)
    assert np.all(low > 0)


def test_margin_smaller_in_atrium_void():
    a, af, elev = two_floors()
    void = np.zeros((GY.size, GX.size), bool)
    void[:, (GX > 30) & (GX < 50)] = True
    m = floor_margin_grid(a, af, elev, 15.0, (GX, GY), 1, void_mask=void)
    solid = floor_margin_grid(a, af, elev, 15.0, (GX, GY), 1)
    assert np.all(m[void] < solid[void])
    np.testing.assert_array_equal(m[~void], solid[~void])
    assert np.median(m[void]) < 0.3 * np.median(m[~void])


def test_single_floor_is_unambiguous_and_margin_is_the_closest_rival():
    a, af, elev = two_floors()
    one = floor_margin_grid(a[:6], af[:6], elev[:1], [], (GX, GY), 0)
    assert np.all(np.isinf(one))
    a3 = np.r_[a, a[:6] + [0, 0, 10.0]]
    af3 = np.r_[af, np.full(6, 2)]
    m3 = floor_margin_grid(a3, af3, [0.0, 5.0, 10.0], 12.0, (GX, GY), 1)
    # the same three floors with 40 dB slabs around floor 1: both rivals are far easier
    m3_thick = floor_margin_grid(a3, af3, [0.0, 5.0, 10.0], [40.0, 40.0], (GX, GY), 1)
    assert np.all(m3_thick > m3)
    # per-slab losses, every anchor counted (no sensitivity cut, which otherwise changes who is
    # heard): thickening only the slab to floor 2 leaves the floor-0 rival as it is, so the
    # margin lies between the all-thin and the all-thick cases
    kw = dict(sensitivity_dbm=-300.0)
    thin = floor_margin_grid(a3, af3, [0.0, 5.0, 10.0], 12.0, (GX, GY), 1, **kw)
    thick = floor_margin_grid(a3, af3, [0.0, 5.0, 10.0], 40.0, (GX, GY), 1, **kw)
    mixed = floor_margin_grid(a3, af3, [0.0, 5.0, 10.0], [12.0, 40.0], (GX, GY), 1, **kw)
    assert np.all(mixed >= thin - 1e-9) and np.all(mixed <= thick + 1e-9)
    assert np.any(mixed > thin + 1e-6) and np.any(mixed < thick - 1e-6)


@pytest.mark.parametrize("kw,name", [
    (dict(anchor_floor_idx=[0, 1]), "anchor_floor_idx"),
    (dict(floor_idx=5), "floor_idx"),
    (dict(slab_db=-3.0), "slab_db"),
    (dict(void_mask=np.zeros((2, 2), bool)), "void_mask"),
    (dict(grid=np.zeros(3)), "grid"),
])
def test_margin_bad_options(kw, name):
    a, af, elev = two_floors()
    args = dict(anchors_xyz=a, anchor_floor_idx=af, floor_elevations=elev, slab_db=10.0,
                grid=(GX, GY), floor_idx=0)
    args.update(kw)
    with pytest.raises(InvalidParameterError) as info:
        floor_margin_grid(**args)
    assert info.value.parameter == name


def test_accuracy_bad_grid():
    with pytest.raises(InvalidParameterError) as info:
        accuracy_grid(grid_anchors(2, 2), MODEL, [], GY)
    assert info.value.parameter == "grid_x"


def test_docstring_examples_run():
    res = doctest.testmod(locate.coverage)
    assert res.attempted > 0 and res.failed == 0
