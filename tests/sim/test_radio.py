"""The receiver model recovers its configuration: path loss, shadowing, gateway offsets."""
from __future__ import annotations

import numpy as np
import pytest

from firmware_sim.radio import PHONE_HEIGHT_M, Receivers, shadow_fields
from firmware_sim.walk import SiteGeometry

from .conftest import small_config


@pytest.fixture(scope="module")
def receivers(site):
    cfg = small_config(packet_loss=0.0, ble_scan_duty=1.0)
    return Receivers(SiteGeometry(site), cfg, np.random.default_rng(11)), cfg


def _same_floor_packets(rx, k, r, rng, n=40000, dmax=10.0):
    """Packets from random positions 1.5..dmax m (horizontal) from gateway k on its floor."""
    gx, gy, _ = rx.xyz[k]
    ang = rng.uniform(0, 2 * np.pi, n)
    rad = rng.uniform(1.5, dmax, n)
    x, y = gx + rad * np.cos(ang), gy + rad * np.sin(ang)
    floor = np.full(n, rx.floor[k])
    t = rng.uniform(0, 1000, n)
    ch = np.array([1, 6, 11])[rng.integers(0, 3, n)]
    pi, ki, rssi, _ = rx.hear(r, rng, t, x, y, floor, np.zeros(n), np.zeros(n), ch)
    sel = ki == k
    pi, rssi = pi[sel], rssi[sel]
    z = rx.geo.elev[floor[pi]] + PHONE_HEIGHT_M
    d = np.sqrt((x[pi] - gx) ** 2 + (y[pi] - gy) ** 2 + (z - rx.xyz[k, 2]) ** 2)
    return d, rssi.astype(float)


@pytest.mark.parametrize("r", [0, 1])
def test_fit_recovers_p0_exponent_and_sigma(receivers, site, r):
    """Pool packets from every gateway (its true offset removed, as a calibrated gateway
    would): one log-distance fit gives back p0, n and the total spread (shadowing + fading +
    rounding); the shadowing field only averages out over many gateways and places."""
    rx, cfg = receivers
    rng = np.random.default_rng(5 + r)
    xs, ys = [], []
    for k in range(len(rx.ids)):
        d, rssi = _same_floor_packets(rx, k, r, rng, n=3000)
        xs.append(-10 * np.log10(d))
        ys.append(rssi - rx.offset[r, k])
    x, y = np.concatenate(xs), np.concatenate(ys)
    slope, icpt = np.polyfit(x, y, 1)
    sigma = (y - (icpt + slope * x)).std()
    radio = site.radio[("ble", "wifi")[r]]
    assert slope == pytest.approx(radio.exponent, abs=0.15)
    assert icpt == pytest.approx(radio.p0_dbm, abs=1.0)
    expected = np.sqrt(radio.sigma_db ** 2 + cfg.fast_fading_db ** 2 + 1 / 12)
    assert sigma == pytest.approx(expected, rel=0.1)


def test_gateway_offsets_are_recoverable_from_repeated_packets(receivers):
    """Calibration check: many packets at one spot per gateway give offset + shadowing."""
    rx, cfg = receivers
    rng = np.random.default_rng(3)
    est, true = [], []
    for k in range(len(rx.ids)):
        n = 400
        gx, gy, _ = rx.xyz[k]
        x, y = np.full(n, gx + 3.0), np.full(n, gy)
        fl = np.full(n, rx.floor[k])
        pi, ki, rssi, _ = rx.hear(0, rng, rng.uniform(0, 100, n), x, y, fl, np.zeros(n),
                                  np.zeros(n))
        m = ki == k
        mean_model = rx.mean_rssi(0, np.array([k]), x[:1], y[:1], fl[:1], 0.0, 0.0)[0]
        est.append(rssi[m].mean())
        true.append(mean_model)
    assert np.abs(np.array(est) - np.array(true)).max() < 1.0
    assert np.std(rx.offset[0]) > 0.5  # the hidden offsets really differ per gateway


def test_fast_fading_sigma(receivers):
    rx, cfg = receivers
    rng = np.random.default_rng(4)
    k, n = 0, 20000
    gx, gy, _ = rx.xyz[k]
    x, y, fl = np.full(n, gx + 4.0), np.full(n, gy + 1.0), np.full(n, rx.floor[k])
    pi, ki, rssi, _ = rx.hear(0, rng, rng.uniform(0, 100, n), x, y, fl, np.zeros(n), np.zeros(n))
    s = rssi[ki == k].std()
    assert s == pytest.approx(np.sqrt(cfg.fast_fading_db ** 2 + 1 / 12), rel=0.05)


def test_shadowing_is_spatially_correlated():
    f = shadow_fields(np.random.default_rng(1), 40, 120, 120, 5.0)
    assert f.std() == pytest.approx(1.0, rel=0.02)
    a = f[:, :, :-5].ravel()
    b = f[:, :, 5:].ravel()
    c5 = np.corrcoef(a, b)[0, 1]
    c1 = np.corrcoef(f[:, :, :-1].ravel(), f[:, :, 1:].ravel())[0, 1]
    c20 = np.corrcoef(f[:, :, :-20].ravel(), f[:, :, 20:].ravel())[0, 1]
    assert c5 == pytest.approx(np.exp(-1), abs=0.08)  # Gudmundson: exp(-d / 5 m)
    assert c1 > 0.75 and c20 < 0.1


def test_slabs_block_except_through_the_atrium(receivers, site):
    """Slab counts against an independent shapely computation of where the straight path
    crosses each floor and whether that point lies in the atrium void."""
    from shapely.geometry import Point, Polygon

    rx, _ = receivers
    floors = list(site.floors)
    voids = {f.id: [Polygon(z.polygon) for z in site.zones_on(f.id) if z.kind == "atrium"]
             for f in floors}
    atrium = [z for z in site.zones if z.kind == "atrium"][0]
    ax, ay = Polygon(atrium.polygon).centroid.coords[0]
    points = [(ax + 0.3, ay + 0.3), (5.5, 5.5), (ax + 4.3, ay - 3.7), (100.5, 60.5)]
    seen = set()
    for fi, f in enumerate(floors):
        for (px, py) in points:
            iy, ix = rx.cell(np.array([px]), np.array([py]))
            cx, cy = rx.x0 + ix[0] + 0.5, rx.y0 + iy[0] + 0.5  # the map's cell centre
            zd = f.elevation_m + PHONE_HEIGHT_M
            for k in range(len(rx.ids)):
                g = int(rx.floor[k])
                gx, gy, gz = rx.xyz[k]
                expected, edge = 0, False
                for j in range(min(fi, g) + 1, max(fi, g) + 1):
                    lam = (floors[j].elevation_m - zd) / (gz - zd)
                    q = Point(cx + lam * (gx - cx), cy + lam * (gy - cy))
                    expected += not any(v.contains(q) for v in voids[floors[j].id])
                    # within the 0.5 m zone raster of a void's edge either answer is right
                    edge |= any(v.exterior.distance(q) < 0.5 for v in voids[floors[j].id])
                if edge:
                    continue
                assert rx.slabs[k, fi, iy[0], ix[0]] == expected
                if fi != g:
                    seen.add((abs(fi - g), expected))
    assert any(d >= 1 and e == 0 for d, e in seen)  # through the void: no slab loss
    assert (2, 2) in seen and (1, 1) in seen


def test_listening_duty_and_hopping(receivers):
    rx, cfg = receivers
    t = np.linspace(0, 100, 200001)
    k = np.zeros(t.size, np.int64)
    ch = rx.wifi_channel(t, k)
    assert set(np.unique(ch)) == {1, 6, 11}
    assert np.mean(ch == 6) == pytest.approx(1 / 3, abs=0.01)
    scanning, bch = rx.ble_channel(t, k)
    assert scanning.mean() == pytest.approx(1.0, abs=1e-9)  # duty 1.0 in this fixture
    assert set(np.unique(bch)) == {37, 38, 39}
