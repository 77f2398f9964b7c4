"""Floors and floor changes on firmware_sim's sample mall (4 floors, atrium on L1-L3,
escalators and lifts), judged against the simulator's truth.

The shoppers with the mall app advertise over BLE (a member frame every 2 s) and are tracked by
their device index (the analytics link them by member token).  Everything the model knows
comes from the site file: gateway positions and calibration, radio defaults, floor elevations
and outlines, atrium voids, escalator and lift zones.  The scan duty cycle (50 %) sets the
probability that a gateway misses a device it could hear in a window.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

from firmware_sim import SimConfig, simulate
from gateway.site import load_site, sample_site_path
from locate import PathLoss
from locate.connectors import landing_loglik
from locate.events import drop_excursions, floor_changes
from locate.floors import Connectors, FloorHMM, FloorModel
from locate.track import rts_smooth

DURATION = 900
EDGE_S = 15.0  # changes this close to either end of the data cannot be confirmed


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    site = load_site(sample_site_path())
    cfg = SimConfig(seed=3, duration_s=DURATION, level="windows", concurrent=60, passersby_per_hour=0)
    out = tmp_path_factory.mktemp("sim")
    res = simulate(site, cfg, out_dir=out)
    w = res.windows
    floors = [f.id for f in site.floors]
    fidx = {f: i for i, f in enumerate(floors)}
    assert tuple(res.floor_ids) == tuple(floors)
    ble = w[w["kind"] == 0]
    dev, cnt = np.unique(ble["device"], return_counts=True)
    sel = dev[(res.roles[dev] == 0) & (cnt >= 150)]  # shoppers with the app
    col = np.full(len(res.device_ids), -1)
    col[sel] = np.arange(len(sel))
    b = ble[col[ble["device"]] >= 0]
    T, N, K = DURATION, len(sel), len(site.gateways)
    sec = np.clip(np.floor(b["t"] - cfg.start).astype(int), 0, T - 1)
    rssi = np.full((T, N, K), np.nan)
    rssi[sec, col[b["device"]], b["gw"]] = b["rssi"]
    floor = np.full((T, N), -1)
    zone = np.full((T, N), "", dtype=object)
    num = {d: i for i, d in enumerate(res.device_ids)}
    with open(out / "truth" / "positions.csv", newline="") as f:
        rows = csv.reader(f)
        next(rows)
        for t, d, _x, _y, fl, z in rows:
            n, k = col[num[d]], int(float(t) - cfg.start)
            if n >= 0 and 0 <= k < T:
                floor[k, n], zone[k, n] = fidx[fl], z
    return {"site": site, "cfg": cfg, "rssi": rssi, "floor": floor, "zone": zone, "floors": floors,
            "fidx": fidx}


def _models(sim):
    site, fidx = sim["site"], sim["fidx"]
    rb = site.radio["ble"]
    gws = site.gateways
    p0 = np.array([rb.p0_dbm + g.p0_offset_db for g in gws])
    n = np.array([g.exponent or rb.exponent for g in gws])
    sens = np.array([g.sensitivity_dbm or rb.sensitivity_dbm for g in gws])
    fm = FloorModel(
        site.gateway_xyz(), [fidx[g.floor] for g in gws], [f.elevation_m for f in site.floors],
        # sigma: the site's shadowing plus the sim's fast fading (3 dB, medians of few packets)
        PathLoss(p0, n, np.hypot(rb.sigma_db, 3.0)),
        slab_db=rb.floor_atten_db, sensitivity_dbm=sens,
        p_miss=1.0 - sim["cfg"].ble_scan_duty,
        voids=[[np.array(z.polygon) for z in site.zones_on(f) if z.kind == "atrium"] for f in sim["floors"]],
        outlines=[np.array(f.outline) for f in site.floors], grid_step=4.0,
        # phones differ (model TX power) and sit in hands, pockets, bags (0 / 4 / 8 dB)
        offsets_db=(-10.0, -5.0, 0.0, 5.0), offset_sd_db=5.0,
    )
    cz = [z for z in site.zones if z.kind in ("escalator", "lift")]
    con = Connectors([np.array(z.polygon) for z in cz], [[fidx[c] for c in z.connects] for z in cz],
                     ids=[z.id for z in cz], kinds=[z.kind for z in cz], floor=[fidx[z.floor] for z in cz])
    return fm, con


@pytest.fixture(scope="module")
def pipeline(sim):
    fm, con = _models(sim)
    rssi = sim["rssi"]
    T, N, K = rssi.shape
    F = fm.n_floors
    lk = fm.loglik(rssi.reshape(T * N, K))
    ll, xyf = lk.loglik.reshape(T, N, F), lk.xy.reshape(T, N, F, 2)
    allowed = con.allowed(xyf.reshape(T * N, F, 2), F).reshape(T, N, F, F)
    hmm = FloorHMM(F, dt=1.0, min_dwell_s=15.0)
    path = drop_excursions(np.arange(T, dtype=float), hmm.viterbi(ll, allowed), max_s=60.0)
    filt = hmm.filter(ll, allowed).argmax(-1)
    # The connector is named from the smoothed track on the chosen floors: single BLE
    # windows (a third of the seconds, a few gateways each) cannot tell the west escalator
    # from the east one 16 m away across the atrium.
    covf = lk.cov.reshape(T, N, F, 2, 2)
    fix = np.take_along_axis(xyf, path[..., None, None], axis=2)[:, :, 0]
    cov = np.take_along_axis(covf, path[..., None, None, None], axis=2)[:, :, 0]
    track = rts_smooth(np.arange(T, dtype=float), fix, cov)
    # Whether two rides in a row were one lift ride is decided on the radio evidence at each
    # landing: the track is least sure of itself during a ride.
    via_ll = landing_loglik(fm, rssi.reshape(T * N, K), con).reshape(T, N, -1)
    # An escalator climbs about 0.25 m/s (0.5 m/s on a 30 degree incline): the ride time per
    # floor from the site's floor heights.  It spaces the rides of one trip and bounds how far
    # each trip's time is moved on the floor evidence.
    ride_s = 4.0 * float(np.mean(np.diff([f.elevation_m for f in sim["site"].floors])))
    ev = floor_changes(np.arange(T, dtype=float), path, track.x[..., :2], con, via_loglik=via_ll,
                       ride_s=ride_s, floor_loglik=ll)
    return {"ll": ll, "path": path, "filt": filt, "events": ev, "con": con,
            "heard": lk.n_heard.reshape(T, N) > 0}


def test_floor_hit_rate_on_sim(sim, pipeline):
    tf = sim["floor"]
    present = tf >= 0
    n = present.sum()
    hit = (pipeline["path"] == tf)[present].mean()
    single = (pipeline["ll"].argmax(-1) == tf)[present & pipeline["heard"]].mean()
    online = (pipeline["filt"] == tf)[present].mean()
    print(f"sim floors: viterbi {hit:.4f}, online filter {online:.4f}, single windows {single:.4f} "
          f"over {n} device-seconds of {tf.shape[1]} shoppers")
    assert n > 20_000
    assert hit >= 0.99


def test_floor_changes_on_sim(sim, pipeline):
    """from, to, via and time (within 10 s of the truth's switch): precision and recall."""
    tf, zone, con = sim["floor"], sim["zone"], pipeline["con"]
    T = tf.shape[0]
    ev = pipeline["events"]
    ev = ev[(ev["t"] >= EDGE_S) & (ev["t"] <= T - EDGE_S)]
    connector_ids = set(con.ids)
    true = []
    for n in range(tf.shape[1]):
        k = np.flatnonzero(tf[:, n] >= 0)
        s = tf[k, n]
        for j in np.flatnonzero(s[1:] != s[:-1]) + 1:
            kk = k[j]
            if EDGE_S <= kk <= T - EDGE_S:
                near = {z for z in zone[max(0, kk - 40):kk + 40, n] if z in connector_ids}
                true.append((n, kk, s[j - 1], s[j], near))
    via = np.array([con.ids[v] if v >= 0 else "" for v in ev["via"]], dtype=object)
    used = np.zeros(len(ev), bool)
    tp = 0
    for n, kk, a, b, near in true:
        ok = (~used & (ev["device"] == n) & (ev["from_floor"] == a) & (ev["to_floor"] == b)
              & (np.abs(ev["t"] - kk) <= 10.0) & np.array([v in near for v in via], bool))
        if ok.any():
            used[np.flatnonzero(ok)[0]] = True
            tp += 1
    precision, recall = tp / max(len(ev), 1), tp / max(len(true), 1)
    print(f"sim floor changes: precision {precision:.3f} recall {recall:.3f} ({len(ev)} found, {len(true)} true)")
    assert len(true) >= 20
    assert precision >= 0.95 and recall >= 0.95
