"""`mallsense calibrate` on a firmware_sim commissioning survey: reference beacons at surveyed
positions, gateways with hidden per-gateway offsets (truth in gateways.csv).

What a survey can identify is a gateway's offset plus its static shadowing averaged over the
positions it heard (or missed) beacons at: firmware_sim's shadowing is 5.5 dB, decorrelating
over 5 m, independent per gateway, and no fit can tell a gateway whose beacons sit in a shadowed
area from a weak gateway. So the tests check three things: the fit recovers that identifiable
offset; the error against the sim's truth; and how close that error is to the limit of any
same-floor survey, the gateway's shadowing averaged over its whole floor (what a survey with
beacons everywhere and unlimited range would still leave). That limit is why "every gateway
within 1 dB" cannot hold here: on seeds 3-6 it alone is 1.7-2.4 dB for the worst of the 50
gateways, and 0.72-0.78 dB rms.
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
# A commissioning survey: beacons on a grid of the shadowing's decorrelation distance over every
# floor, stores included (about 325 a floor), heard for 4 minutes. 150 corridor beacons a floor
# left the worst gateway 2.7-3.6 dB off (seeds 3 / 4); a 4 m grid (1.5 times the beacons and
# the simulation time) moves it by 0.13 dB at most; 2 minutes instead of 4 lose up to 0.7 dB.
SURVEY_PITCH_M = 5.0
SURVEY_S = 240


@pytest.fixture(scope="module", params=[3, 4])
def survey_run(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"cal{request.param}")
    site = load_site(sample_site_path())
    res = simulate(site, SimConfig(seed=request.param, duration_s=SURVEY_S, concurrent=5,
                                   passersby_per_hour=0, survey_pitch_m=SURVEY_PITCH_M,
                                   level="windows"),
                   out_dir=out, progress=False)
    registry = out / "beacons.csv"
    with open(out / "truth" / "beacons.csv") as src, open(registry, "w") as dst:
        dst.write("beacon,floor,x,y\n")
        for r in csv.DictReader(src):
            dst.write(f"{r['beacon']},{r['floor']},{r['x']},{r['y']}\n")
    with open(out / "truth" / "gateways.csv") as f:
        truth = {r["gateway"]: float(r["true_offset_db"]) for r in csv.DictReader(f)
                 if r["radio"] == "ble"}
    # the survey takes the batches as they are written: decoding the file (150 MB) again here
    # would only repeat what the CLI test does with it
    sv = BeaconSurvey(tuple(g.id for g in site.gateways), tuple(load_beacons(registry, site)))
    sightings = out / "sightings.jsonl"
    with open(sightings, "wb") as f:
        for _, batch in res.batches(SECRET):
            f.write(batch.encode() + b"\n")
            sv.add(batch)
    return site, out, sightings, registry, truth, res.world, sv


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


def _floor_shadow(world, gateways):
    """The sim's static shadowing (dB) averaged over each gateway's whole floor (indoor zones):
    what a perfect survey of that floor would still leave in the gateway's offset."""
    rx, geo = world.receivers, world.geo
    gx, gy = np.meshgrid(rx.x0 + np.arange(rx.nx) + 0.5, rx.y0 + np.arange(rx.ny) + 0.5)
    out = []
    for gw in gateways:
        k = rx.ids.index(gw)
        zi = geo.zone_at(gx, gy, np.full(gx.shape, rx.floor[k]))
        indoor = (zi >= 0) & ~np.isin(geo.zone_kind[np.maximum(zi, 0)], ("outside", "atrium"))
        iy, ix = rx.cell(gx[indoor], gy[indoor])
        out.append(float(rx.static[0, rx.floor[k], iy, ix, k].mean()))
    return np.array(out)


def _stats(e):
    e = np.abs(e)
    return f"median {np.median(e):.2f} p90 {np.percentile(e, 90):.2f} max {e.max():.2f}"


def test_fit_recovers_offsets(survey_run):
    site, _, _, _, truth, world, sv = survey_run
    rows = fit_survey(site, sv)
    assert len(rows) == len(site.gateways)  # the censored fit calibrates even street gateways
    gateways = [r.gateway for r in rows]
    err = np.array([r.offset_db - truth[r.gateway] for r in rows])
    fit_err = err - _survey_shadow(world, sv, gateways)
    limit = _floor_shadow(world, gateways)
    rms = float(np.sqrt(np.mean(err ** 2)))
    limit_rms = float(np.sqrt(np.mean(limit ** 2)))
    print(f"offset error vs truth dB: {_stats(err)} rms {rms:.2f},",
          f"within 1 dB {(np.abs(err) < 1).sum()}/{err.size} | vs identifiable: {_stats(fit_err)}",
          f"| floor-mean shadowing: {_stats(limit)} rms {limit_rms:.2f}")
    # the fit: what the survey identifies (measured median 0.12 / 0.12, p90 0.26 / 0.32 dB on
    # seeds 3 / 4; the rest are corner gateways that hear few beacons)
    assert np.median(np.abs(fit_err)) < 0.2
    assert np.percentile(np.abs(fit_err), 90) < 0.5
    # against the sim's truth (measured median 0.53 / 0.58, p90 1.48 / 1.35, max 2.62 / 2.07
    # dB, 40 / 40 of 50 gateways within 1 dB, mean -0.18 / -0.24 dB)
    assert np.median(np.abs(err)) < 0.75
    assert np.percentile(np.abs(err), 90) < 1.75
    assert np.abs(err).max() < 3.0
    assert np.mean(np.abs(err) < 1.0) >= 0.7
    assert abs(np.mean(err)) < 0.4
    # close to the floor-mean limit (measured rms 0.83 / 0.79 dB against 0.72 / 0.78 dB)
    assert rms < 1.25 * limit_rms


def test_survey_spreads_beacons_over_floors(survey_run):
    """Beacons cover every floor, stores included, no two closer than half the pitch, and each
    gateway has many independent positions within its range."""
    site, *_, world, sv = survey_run
    geo = world.geo
    for fl in site.floors:
        xy = np.array([[b.x, b.y] for b in sv.beacons if b.floor == fl.id])
        zi = geo.zone_at(xy[:, 0], xy[:, 1], np.full(len(xy), geo.floor_ix[fl.id]))
        kinds = geo.zone_kind[zi]
        assert (zi >= 0).all() and not np.isin(kinds, ("outside", "atrium")).any()
        assert np.mean(kinds == "store") > 0.5, fl.id
        r = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
        np.fill_diagonal(r, np.inf)
        assert r.min() >= SURVEY_PITCH_M / 2 - 1e-9
    for g in site.gateways:
        near = [b for b in sv.beacons if b.floor == g.floor and np.hypot(b.x - g.x, b.y - g.y) < 20]
        assert len(near) >= 10, g.id


def test_survey_pitch_is_validated():
    from firmware_sim.errors import SimError

    with pytest.raises(SimError) as err:
        SimConfig(survey_pitch_m=0.5)
    assert err.value.field == "survey_pitch_m"


def test_shared_exponent_matches_the_site(survey_run):
    site, *_, sv = survey_run
    rows = fit_survey(site, sv, exponent="shared")
    shared = [r.exponent for r in rows if site.gateway(r.gateway).exponent is None]
    assert abs(shared[0] - site.radio["ble"].exponent) < 0.15
    assert all(r.exponent == 2.8 for r in rows if r.gateway == "gw-b1-12")  # its own, kept


@pytest.mark.parametrize("survey_run", [3], indirect=True)  # the CLI's path is seed-blind
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
