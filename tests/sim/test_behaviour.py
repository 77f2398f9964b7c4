"""Crowd behaviour: day profile, store choice, dwell, purchases, members, floor changes."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from firmware_sim import behaviour
from firmware_sim.crowd import PASSERBY, SHOPPER, STAFF, plan
from firmware_sim.walk import SiteGeometry

from .conftest import small_config


@pytest.fixture(scope="module")
def geo(site):
    return SiteGeometry(site)


def test_arrivals_have_lunch_and_evening_peaks():
    rng = np.random.default_rng(1)
    t0 = 0.0  # local midnight
    t = behaviour.arrivals(rng, t0, t0 + 86400, 0.0, 1000.0, 9.5, 21.5)
    per_hour = np.bincount((t // 3600).astype(int), minlength=24)
    assert per_hour[:9].sum() == 0 and per_hour[22:].sum() == 0  # closed
    assert per_hour[12] > 1.5 * per_hour[10] and per_hour[18] > 1.5 * per_hour[15]
    assert per_hour.sum() == pytest.approx(12 * 1000, rel=0.05)  # rate = mean while open


def test_purchase_chance_grows_with_dwell():
    rng = np.random.default_rng(2)
    short = np.mean([behaviour.purchase(rng, "fashion", 60) is not None for _ in range(4000)])
    long = np.mean([behaviour.purchase(rng, "fashion", 3600) is not None for _ in range(4000)])
    assert long > 3 * short
    med, sd, _, _ = behaviour.category("food")
    d = np.array([behaviour.dwell_s(rng, "food") for _ in range(4000)])
    assert np.median(d) == pytest.approx(med * 60, rel=0.1)
    assert np.log(d).std() == pytest.approx(sd, rel=0.1)


def test_plan_roles_members_and_store_choice(geo):
    cfg = small_config(duration=1800, concurrent=None, shoppers_per_hour=600,
                       member_share=0.25)
    crowd = plan(geo, cfg, np.random.default_rng(3))
    shoppers = crowd.role == SHOPPER
    assert shoppers.sum() > 500
    assert (crowd.member[shoppers] >= 0).mean() == pytest.approx(0.25, abs=0.05)
    assert (crowd.member[~shoppers] < 0).all()
    assert (crowd.portal <= (crowd.member >= 0)).all()
    staff = crowd.role == STAFF
    assert set(crowd.home_zone[staff]) == set(geo.doors)  # every store has staff
    assert (crowd.role == PASSERBY).any()
    # big, popular stores draw more visits
    visits = Counter(s for _, s, _, _ in crowd.visits)
    w = {s: geo.polys[s].area * geo.zones[s].popularity for s in geo.doors}
    top = sorted(w, key=w.get)[-8:]
    bottom = sorted(w, key=w.get)[:8]
    assert sum(visits[s] for s in top) > 3 * sum(visits[s] for s in bottom)
    # journeys use several floors, through the escalators or lifts
    multi = [j for j in crowd.journeys if len(j[3]) > 1]
    assert len(multi) > 0.3 * len(crowd.journeys)


@pytest.mark.parametrize("prefer", ["escalator", "lift"])
def test_floor_changes_use_the_preferred_shaft(geo, prefer):
    b1 = [d for s, d in geo.doors.items() if geo.floor_ids[geo.zone_floor[s]] == "B1"][0]
    l3 = [d for s, d in geo.doors.items() if geo.floor_ids[geo.zone_floor[s]] == "L3"][0]
    path = geo.path(b1.node, l3.node, prefer)
    floors = geo.node_floor[path]
    hops = [(int(a), int(b)) for a, b in zip(path, path[1:])
            if geo.node_floor[a] != geo.node_floor[b]]
    assert hops and floors[0] != floors[-1]
    kinds = {geo.shaft_kind(a) for a, _ in hops}
    assert kinds == {prefer}
