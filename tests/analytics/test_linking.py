"""Linking a phone's ids: radio signatures, Wi-Fi burst chains by 802.11 sequence numbers, and
fixtures told apart by their public BLE address."""
from __future__ import annotations

import numpy as np
import pytest

from analytics.linking import signature_distance, update_signature
from analytics.visitors import VisitorConfig, VisitorRegistry
from gateway.site import load_site, sample_site_path
from tests.analytics.synth import Walker, batches, stay
from tests.analytics.test_pipeline import run, shopper_path

NAN = np.nan


def test_same_place_is_close_another_place_is_far():
    rng = np.random.default_rng(1)
    place = rng.normal(-20.0, 6.0, 12)                  # readings re 1 m at one spot
    other = rng.normal(-20.0, 6.0, 12)                  # another spot: other shadowing
    again = place + rng.normal(0.0, 1.0, 12)            # the same phone seconds later
    d = signature_distance(place, np.vstack([again, other]))
    assert d[0] < 1.5 and d[1] > 3.0


def test_offset_is_profiled_out_only_when_asked():
    a = np.array([-10.0, -20.0, -25.0, -30.0])
    b = a - 7.0                                          # Wi-Fi vs BLE: other transmit power
    assert signature_distance(a, b[None])[0] == pytest.approx(7.0)
    assert signature_distance(a, b[None], profile_offset=True)[0] == pytest.approx(0.0)


def test_a_loud_gateway_only_one_heard_is_a_miss_and_few_common_is_no_answer():
    a = np.array([-10.0, -20.0, -22.0, NAN])
    b = np.array([-10.0, -20.0, NAN, -60.0])            # missed a loud one; a faint extra
    d = signature_distance(a, b[None], miss_cost_db=8.0)[0]
    assert d == pytest.approx(8.0 / 3)
    assert signature_distance(a, np.array([[-10.0, NAN, NAN, NAN]]))[0] == np.inf
    assert signature_distance(a, np.zeros((0, 4))).shape == (0,)


def test_signature_is_an_ema_that_keeps_what_was_not_heard():
    s = np.full(3, NAN)
    s = update_signature(s, np.array([-10.0, NAN, -30.0]), alpha=0.5)
    s = update_signature(s, np.array([-20.0, -5.0, NAN]), alpha=0.5)
    assert s.tolist() == [-15.0, -5.0, -30.0]


def _burst(reg, vid_of, name, t, sq, fp="fpA", xy=(10.0, 10.0)):
    vid = reg.chain_match(fp, sq, t, 0, np.array(xy))
    v = reg.assign(name, "wifi", t, 0, np.array(xy), fp, None, rotation_vid=vid, legacy=False)
    reg.note_burst(v.id, fp, sq, t, 0, np.array(xy), True, {})
    vid_of[name] = v.id
    return v


def test_bursts_chain_by_sequence_number_fingerprint_and_time():
    reg = VisitorRegistry(VisitorConfig())
    ids = {}
    _burst(reg, ids, "a1", 0.0, 4093)
    _burst(reg, ids, "a2", 45.0, 4)           # wraps past 4095: 7 frames later
    _burst(reg, ids, "a3", 100.0, 9)
    assert ids["a1"] == ids["a2"] == ids["a3"]
    _burst(reg, ids, "b1", 130.0, 2000)       # a count far away: another phone
    _burst(reg, ids, "c1", 140.0, 12, fp="fpB")   # close count, other model
    assert len({ids["a1"], ids["b1"], ids["c1"]}) == 3
    # A burst has one successor: a3's head is taken by the first that continues it.
    _burst(reg, ids, "a4", 160.0, 12)
    _burst(reg, ids, "e1", 161.0, 13)
    assert ids["a4"] == ids["a1"] and ids["e1"] != ids["a1"]


def test_burst_too_soon_after_the_last_is_another_phone():
    reg = VisitorRegistry(VisitorConfig())
    ids = {}
    _burst(reg, ids, "a1", 0.0, 100)
    _burst(reg, ids, "d1", 5.0, 103)          # phones probe every 30 s or more
    assert ids["a1"] != ids["d1"]


def test_chain_beyond_walking_range_is_not_linked():
    reg = VisitorRegistry(VisitorConfig())
    ids = {}
    _burst(reg, ids, "a1", 0.0, 100, xy=(0.0, 0.0))
    _burst(reg, ids, "a2", 30.0, 103, xy=(500.0, 0.0))
    assert ids["a1"] != ids["a2"]


@pytest.fixture(scope="module")
def site():
    return load_site(sample_site_path())


def test_public_ble_address_is_a_fixture_not_a_shopper(site):
    pos = Walker([(0, "pos-terminal")], "ble", stay("L1", (110, 25), 300), rnd=False)
    shopper = Walker([(0, "ble-s")], "ble", shopper_path(120), rnd=True)
    _, out = run(site, batches(site, [pos, shopper], max(len(shopper.path), 300) + 5, seed=6))
    by_dev = {r.device_ids[0]: r for r in out.visits}
    assert by_dev["pos-terminal"].excluded
    assert not by_dev["ble-s"].excluded and by_dev["ble-s"].entered
