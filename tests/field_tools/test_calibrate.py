"""`mallsense calibrate` on a firmware_sim commissioning survey: reference beacons at surveyed
positions, gateways with hidden per-gateway offsets (truth in gateways.csv).

What a survey can identify is a gateway's offset plus its static shadowing averaged over the
positions it heard (or missed) beacons at: firmware_sim's shadowing is 5.5 dB, decorrelating
over 5 m, independent per gateway, and no fit can tell a gateway whose beacons sit in a shadowed
corridor from a weak gateway. So the tests check two things: the fit recovers that identifiable
offset (within 1 dB for 90 % of gateways), and the error against the sim's truth, which is
bounded by how many independent positions the survey covers (the median gateway within 1 dB).
"""
from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest

from firmware_sim import SimConfig, simulate
from gateway.calibrate import (DECORRELATION_M, MAX_RANGE_M, BeaconSurvey, CalibrationError, fit_survey,
                               load_beacons, shadow_weights)
from gateway.site import load_site, sample_site_path

SECRET = b"calibration-test-secret-0123456789"


@pytest.fixture(scope="module", params=[3, 4])
def survey_run(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"cal{request.param}")
    site = load_site(sample_site_path())
    res = simulate(site, SimConfig(seed=request.param, duration_s=240, concurrent=5,
                                   passersby_per_hour=0, reference_beacons_per_floor=150,
                                   level="windows"),
                   out_dir=out, progress=False)
    sightings = out / "sightings.jsonl"
    with open(sightings, "wb") as f:
        for _, batch in res.batches(SECRET):
            f.write(batch.encode() + b"\n")
    registry = out / "beacons.csv"
    with open(out / "truth" / "beacons.csv") as src, open(registry, "w") as dst:
        dst.write("beacon,floor,x,y\n")
        for r in csv.DictReader(src):
            dst.write(f"{r['beacon']},{r['floor']},{r['x']},{r['y']}\n")
    with open(out / "truth" / "gateways.csv") as f:
        truth = {r["gateway"]: float(r["true_offset_db"]) for r in csv.DictReader(f)
                 if r["radio"] == "ble"}
    return site, out, sightings, registry, truth, res.world, _survey(site, sightings, registry)


def _survey(site, sightings, registry):
    from gateway.wire import SightingsBatch

    sv = BeaconSurvey(tuple(g.id for g in site.gateways), tuple(load_beacons(registry, site)))
    with open(sightings, "rb") as f:
        sv.add_all(SightingsBatch.decode(line) for line in f)
    return sv


def _survey_shadow(world, survey, gateways):
    """The sim's static shadowing (dB) at each gateway's same-floor survey beacons, averaged
    with the fit's beacon weights: the part of the offset no survey fit can separate."""
    rx, geo = world.receivers, world.geo
    out, weights = [], {}
    for gw in gateways:
        k = rx.ids.index(gw)
        xy = np.array([[x.x, x.y] for x in survey.beacons if geo.floor_ix[x.floor] == rx.floor[k]])
        near = np.hypot(*(xy - rx.xyz[k, :2]).T) <= MAX_RANGE_M
        key = (int(rx.floor[k]), near.tobytes())
        if key not in weights:
            weights[key] = shadow_weights(xy[near], DECORRELATION_M)
        iy, ix = rx.cell(xy[near, 0], xy[near, 1])
        w = weights[key]
        out.append(float((w * rx.static[0, rx.floor[k], iy, ix, k]).sum() / w.sum()))
    return np.array(out)


def test_fit_recovers_offsets(survey_run):
    site, _, _, _, truth, world, sv = survey_run
    rows = fit_survey(site, sv)
    assert len(rows) == len(site.gateways)  # the censored fit calibrates even street gateways
    err = np.array([r.offset_db - truth[r.gateway] for r in rows])
    ident = _survey_shadow(world, sv, [r.gateway for r in rows])
    fit_err = np.abs(err - ident)
    print("offset error vs truth dB: median %.2f p90 %.2f max %.2f; vs identifiable: "
          "median %.2f p90 %.2f max %.2f" % (np.median(np.abs(err)), np.percentile(np.abs(err), 90),
                                             np.abs(err).max(), np.median(fit_err),
                                             np.percentile(fit_err, 90), fit_err.max()))
    # the fit: within 1 dB of what the survey identifies for 90 % of gateways (measured
    # p90 0.45 / 0.42 dB on seeds 3 / 4; the rest are corner gateways that hear few beacons)
    assert np.median(fit_err) < 0.3
    assert np.percentile(fit_err, 90) < 1.0
    # against the sim's truth: the 1 dB holds for the median gateway (measured 0.91 /
    # 0.89 dB); the worst is its survey-area shadowing (measured max 3.6 / 2.7 dB, p90 3.0 /
    # 2.2 dB), which only more independent beacon positions average away
    assert np.median(np.abs(err)) < 1.0
    assert np.percentile(np.abs(err), 90) < 3.25
    assert np.abs(err).max() < 4.0
    assert abs(np.mean(err)) < 0.5


def test_shared_exponent_matches_the_site(survey_run):
    site, *_, sv = survey_run
    rows = fit_survey(site, sv, exponent="shared")
    shared = [r.exponent for r in rows if site.gateway(r.gateway).exponent is None]
    assert abs(shared[0] - site.radio["ble"].exponent) < 0.15
    assert all(r.exponent == 2.8 for r in rows if r.gateway == "gw-b1-12")  # its own, kept


def test_cli_prints_residuals_and_writes_offsets(survey_run, tmp_path):
    site, _, sightings, registry, *_ = survey_run
    out = tmp_path / "offsets.toml"
    proc = subprocess.run([sys.executable, "-m", "mallsense.cli", "calibrate",
                           "--site", str(sample_site_path()), "--beacons", str(registry),
                           "--sightings", str(sightings), "--out", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "gw-l1-01" in proc.stdout and "resid" in proc.stdout
    assert 'p0_offset_db = ' in out.read_text()


def test_censored_level_undoes_the_up_fade_bias():
    """A pair near the sensitivity is heard only on up-fades: its median is biased high; the
    windows it was missed in give its level back."""
    from gateway.calibrate import censored_level

    rng = np.random.default_rng(0)
    mu = np.repeat(np.arange(-102.0, -85.0), 40)  # true mean RSSI per pair
    listening = 120
    x = np.rint(mu[:, None] + rng.normal(0, 3.0, (mu.size, listening)))
    heard = x >= -96
    n = heard.sum(1)
    s1, s2 = (x * heard).sum(1), (x * x * heard).sum(1)
    lev = censored_level(n, s1, s2, listening - n, -96.5, 3.0)
    med = np.array([np.median(r[h]) if h.any() else np.nan for r, h in zip(x, heard)])
    ok = n >= 3
    for lo in (-100, -97, -94, -88):
        m = ok & (mu == lo)
        print(lo, "level bias %.2f, median bias %.2f" % ((lev - mu)[m].mean(), (med - mu)[m].mean()))
        assert abs((lev - mu)[m].mean()) < 0.3
    assert (med - mu)[ok & (mu == -97)].mean() > 1.5


def test_registry_with_unknown_floor_is_refused(tmp_path):
    site = load_site(sample_site_path())
    reg = tmp_path / "b.csv"
    reg.write_text("beacon,floor,x,y\nu:1:1,L9,1,2\nu:1:2,L1,x,2\n")
    with pytest.raises(CalibrationError) as err:
        load_beacons(reg, site)
    text = str(err.value)
    assert "b.csv:2: floor 'L9' is not in the site" in text
    assert "b.csv:3:" in text  # every bad line is listed


def test_no_beacon_heard_is_a_clear_error(tmp_path):
    site = load_site(sample_site_path())
    reg = tmp_path / "b.csv"
    reg.write_text("beacon,floor,x,y\nu:1:1,L1,10,10\n")
    sv = BeaconSurvey(tuple(g.id for g in site.gateways), tuple(load_beacons(reg, site)))
    with pytest.raises(CalibrationError, match="no gateway heard 2 registered beacons"):
        fit_survey(site, sv)
