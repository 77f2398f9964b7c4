"""The positioning core on a real recording: Kolakowski's BLE robot dataset (CC BY 4.0).

Source: github.com/marckolak/ble-rss-fingerprints-calib2021 (Zenodo 10.5281/zenodo.5457591);
M. Kolakowski, Sensors 21(18):6270, 2021. 6 anchors in a furnished flat, a tag on a robot at
1.3 m, LiDAR-SLAM ground truth. Reference figures, from /work/shared/data/real/README.md:

    "Simple reference points (not published): RSSI-weighted centroid mean 2.15 m / median 1.98 m;
    log-distance fit on the calibration set (P0 -47.4 dBm at 1 m, n 1.99) + weighted
    trilateration at z 1.3 m: mean 1.95 m, median 1.70 m, p90 3.50 m, on test_robot_df.
    Beat them."

We calibrate on calibration/calibration_df.csv only and locate tests/test_robot_df.csv.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from locate import PathLoss, multilaterate
from locate.calibrate import PathLossFit

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "real" / "ble-robot-kolakowski"
Z_TAG = 1.3  # m, README: tag height on the robot

REF_TRILAT = dict(mean=1.95, median=1.70, p90=3.50)
REF_CENTROID_MEAN = 2.15


def _read(path: Path) -> dict[str, np.ndarray]:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows, f"{path} is empty"
    return {k: np.array([float(r[k]) if r[k] != "" else np.nan for r in rows])
            for k in rows[0] if k}


@pytest.fixture(scope="module")
def flat():
    assert DATA.is_dir(), f"real dataset missing at {DATA} (CI clones shared/ beside the repo)"
    an = _read(DATA / "anchors.csv")
    anchors = np.c_[an["x"], an["y"], an["z"]]
    lay = _read(DATA / "layout.csv")
    box = (lay["x"].min(), lay["y"].min(), lay["x"].max(), lay["y"].max())
    cal = _read(DATA / "calibration" / "calibration_df.csv")
    test = _read(DATA / "tests" / "test_robot_df.csv")
    rssi = lambda t: np.stack([t[f"rssi_{i}"] for i in range(1, 7)], axis=1)  # noqa: E731
    return dict(anchors=anchors, box=box,
                cal_xyz=np.c_[cal["x"], cal["y"], np.full(cal["x"].size, Z_TAG)], cal_rssi=rssi(cal),
                test_xy=np.c_[test["x"], test["y"]], test_rssi=rssi(test))


def _stats(xy, truth):
    e = np.hypot(*(xy - truth).T)
    assert np.all(np.isfinite(e))
    return dict(mean=float(e.mean()), median=float(np.median(e)), p90=float(np.percentile(e, 90)))


def test_dataset_shape(flat):
    assert flat["anchors"].shape == (6, 3)
    assert flat["cal_rssi"].shape == (4104, 6)
    assert flat["test_rssi"].shape == (719, 6)


def test_global_fit_reproduces_readme_calibration(flat):
    """One P0 / n for all anchors, as the README's reference: P0 -47.4 dBm, n 1.99."""
    d = np.sqrt(((flat["cal_xyz"][:, None] - flat["anchors"]) ** 2).sum(2))
    heard = ~np.isnan(flat["cal_rssi"])
    fit = PathLossFit(exponent="shared").fit(d[heard], flat["cal_rssi"][heard])
    assert abs(fit.p0_[0] - (-47.4)) < 0.1
    assert abs(fit.exponent_[0] - 1.99) < 0.01


def test_plain_ml_loses_to_the_centroid_reference(flat):
    """DESIGN.md: a plain log-distance ML fix (global fit, no bounds) is worse here than an
    RSSI-weighted centroid (README mean 2.15 m). Asserted so that the claim stays true."""
    d = np.sqrt(((flat["cal_xyz"][:, None] - flat["anchors"]) ** 2).sum(2))
    heard = ~np.isnan(flat["cal_rssi"])
    fit = PathLossFit(exponent="shared").fit(d[heard], flat["cal_rssi"][heard])
    model = PathLoss(fit.p0_[0], fit.exponent_[0], fit.sigma_[0])
    s = _stats(multilaterate(flat["anchors"], flat["test_rssi"], model, z=Z_TAG).xy, flat["test_xy"])
    print("plain global ML:", {k: round(v, 3) for k, v in s.items()})
    assert s["mean"] > REF_CENTROID_MEAN


@pytest.mark.parametrize("fit_loss,loc_loss", [("l2", "l2"), ("tukey", "huber")])
def test_calibrated_ml_in_the_flat_outline_beats_the_references(flat, fit_loss, loc_loss):
    """Per-anchor P0 / n / sigma fitted on the calibration set, ML fix kept inside the flat's
    layout bbox: beats the README's trilateration on mean, median and p90, and the centroid."""
    fit = PathLossFit(exponent="per_gateway", loss=fit_loss).fit_positions(
        flat["anchors"], flat["cal_xyz"], flat["cal_rssi"])
    fix = multilaterate(flat["anchors"], flat["test_rssi"], fit.model(), z=Z_TAG,
                        bounds=flat["box"], loss=loc_loss)
    assert fix.ok.all()
    s = _stats(fix.xy, flat["test_xy"])
    print(f"fit {fit_loss} / locate {loc_loss} in bbox:", {k: round(v, 3) for k, v in s.items()},
          "reference trilateration", REF_TRILAT)
    assert s["mean"] < REF_TRILAT["mean"]
    assert s["median"] < REF_TRILAT["median"]
    assert s["p90"] < REF_TRILAT["p90"]
    assert s["mean"] < REF_CENTROID_MEAN


def test_box_alone_rescues_the_global_model(flat):
    """Bounds are part of the core: the same global model inside the outline beats the
    centroid reference and about matches the README's trilateration."""
    d = np.sqrt(((flat["cal_xyz"][:, None] - flat["anchors"]) ** 2).sum(2))
    heard = ~np.isnan(flat["cal_rssi"])
    fit = PathLossFit(exponent="shared").fit(d[heard], flat["cal_rssi"][heard])
    model = PathLoss(fit.p0_[0], fit.exponent_[0], fit.sigma_[0])
    s = _stats(multilaterate(flat["anchors"], flat["test_rssi"], model, z=Z_TAG,
                             bounds=flat["box"]).xy, flat["test_xy"])
    print("global ML in bbox:", {k: round(v, 3) for k, v in s.items()})
    assert s["mean"] < REF_CENTROID_MEAN
    assert s["median"] < REF_TRILAT["median"]
