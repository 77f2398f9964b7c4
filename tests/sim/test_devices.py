"""Device behaviour matches the configuration: MAC randomization, burst gaps, rotations."""
from __future__ import annotations

import numpy as np
import pytest

from edge.privacy import member_token as edge_member_token
from firmware_sim import devices as dv
from firmware_sim.crowd import Crowd
from firmware_sim.emit import Emitters

from .conftest import small_config


def _static_crowd(n: int, t0: float, t1: float, members: int = 0) -> Crowd:
    """n phones standing still for [t0, t1] (only the emitters are under test)."""
    member = np.full(n, -1, np.int32)
    member[:members] = np.arange(members)
    return Crowd(role=np.zeros(n, np.int8), kind=["phone"] * n, home_zone=np.full(n, -1),
                 member=member, portal=np.zeros(n, bool),
                 offsets=np.arange(0, 2 * n + 1, 2), kt=np.tile([t0, t1], n),
                 kx=np.zeros(2 * n), ky=np.zeros(2 * n), kf=np.zeros(2 * n, np.int8))


def _emit(cfg, n=400, seconds=1800, members=0, seed=1):
    crowd = _static_crowd(n, cfg.start, cfg.start + seconds + 10, members)
    em = Emitters(crowd, cfg, np.random.default_rng(seed))
    live = np.ones(n, bool)
    ble, wifi = [], []
    for i in range(seconds):
        b, w = em.step(cfg.start + i, live)
        ble.append(b)
        wifi.append(w)
    cat = lambda parts, key: np.concatenate([p[key] for p in parts])  # noqa: E731
    return em, {k: cat(ble, k) for k in ble[0]}, {k: cat(wifi, k) for k in wifi[0]}


@pytest.mark.parametrize("share", [0.3, 0.8])
def test_randomized_address_share(share):
    cfg = small_config(wifi_randomized_share=share)
    em, _, wifi = _emit(cfg, n=600, seconds=300)
    devs = np.unique(wifi["dev"])
    rnd = np.array([bool(wifi["rnd"][wifi["dev"] == d][0]) for d in devs])
    laa = np.array([bool((wifi["addr"][wifi["dev"] == d][0] >> 41) & 1) for d in devs])
    assert (rnd == laa).all()  # the flag is the locally administered bit
    sd = np.sqrt(share * (1 - share) / devs.size)
    assert abs(rnd.mean() - share) < 4 * sd
    # randomizers use a new MAC every burst, the others one global MAC all along
    for d in devs[:50]:
        a = wifi["addr"][wifi["dev"] == d]
        t = np.sort(wifi["t"][wifi["dev"] == d])
        bursts = t[np.concatenate([[True], np.diff(t) > 5])]
        if em.randomizes[d]:
            assert len(np.unique(a)) == len(bursts)
        else:
            assert len(np.unique(a)) == 1 and (a[0] >> 24) == dv.MODELS[em.model[d]].oui


def test_burst_intervals_match_the_configuration():
    cfg = small_config(probe_interval_on_s=(30.0, 60.0), probe_interval_off_s=(60.0, 120.0),
                       screen_on_share=0.35)
    em, _, wifi = _emit(cfg, n=200, seconds=3600)
    gaps = []
    for d in np.unique(wifi["dev"]):
        t = np.sort(wifi["t"][wifi["dev"] == d])
        starts = t[np.concatenate([[True], np.diff(t) > 5])]
        gaps.extend(np.diff(starts))
        # one burst = frames on channels 1, 6 and 11 within 0.2 s
        ch = wifi["channel"][wifi["dev"] == d]
        assert set(np.unique(ch)) == {1, 6, 11}
    gaps = np.array(gaps)
    assert gaps.min() >= 30.0 - 0.01 and gaps.max() <= 120.0 + 0.01
    expected = 0.35 * 45.0 + 0.65 * 90.0
    assert gaps.mean() == pytest.approx(expected, rel=0.05)
    assert (gaps < 60).mean() == pytest.approx(0.35 * 1.0, abs=0.05)


def test_sequence_numbers_run_per_device():
    cfg = small_config(wifi_randomized_share=0.0)
    em, _, wifi = _emit(cfg, n=50, seconds=600)
    for d in np.unique(wifi["dev"]):
        s = wifi["seq"][wifi["dev"] == d]
        assert ((np.diff(s) % 4096) == 1).all()  # one counter, every frame +1 (mod 4096)


def test_rpa_rotation_and_member_tokens():
    cfg = small_config(rpa_rotation_s=900.0, member_token_period_s=900.0)
    em, ble, _ = _emit(cfg, n=100, seconds=3000, members=30)
    spans = [(d, f, t) for d, kind, a, f, t in em.addr_log if kind == "ble" and f > cfg.start]
    lengths = np.array([t - f for _, f, t in spans])
    assert lengths.size > 50
    assert lengths.min() >= 0.9 * 900 - 1 and lengths.max() <= 1.1 * 900 + 1
    # all BLE addresses of phones are resolvable private addresses (top bits 0b01)
    assert (((ble["addr"] >> 46) & 0b11) == 0b01).all()
    mem = ble["kind"] == dv.BLE_MEMBER
    assert mem.any() and (em.member[ble["dev"][mem]] >= 0).all()
    epochs = np.floor(ble["t"][mem] / 900.0)
    for d in np.unique(ble["dev"][mem])[:10]:
        sel = ble["dev"][mem] == d
        tok = ble["member"][mem][sel]
        for e in np.unique(epochs[sel]):
            assert len(np.unique(tok[epochs[sel] == e])) == 1
        assert len(np.unique(tok)) == len(np.unique(epochs[sel]))
    t = int(ble["member"][mem][0])
    assert dv.token_str(t) == edge_member_token(t >> 16, t & 0xFFFF)


def test_transmit_power_differs_by_model_and_device():
    cfg = small_config(tx_sd_db=2.0)
    crowd = _static_crowd(3000, cfg.start, cfg.start + 10)
    em = Emitters(crowd, cfg, np.random.default_rng(2))
    means = [em.tx[0][em.model == m].mean() for m in range(len(dv.PHONES))]
    assert np.ptp(means) > 3.0  # several dB between models
    m0 = em.model == 0
    assert em.tx[0][m0].std() == pytest.approx(2.0, rel=0.15)
