"""A committed floor change over several floors is each ride: escalators go one floor at a
time (firmware_sim's routes do too), lifts go straight (analytics.devices.DeviceTable._rides)."""
from __future__ import annotations

import pytest

from analytics.devices import DeviceConfig, DeviceTable
from gateway.site import load_site, sample_site_path


@pytest.fixture(scope="module")
def tab():
    return DeviceTable(load_site(sample_site_path()), config=DeviceConfig(capacity=4))


def landing(tab, kind, floor):
    z = next(z for z in tab.site.zones if z.kind == kind and z.floor == floor and z.shaft)
    return tab.zone_ids.index(z.id), z.shaft


def test_escalator_over_two_floors_is_two_rides_with_their_landings(tab):
    fl = tab.loc.floor_ix
    via, shaft = landing(tab, "escalator", "B1")
    rides = tab._rides(fl["B1"], fl["L2"], via)
    assert [(a, b) for a, b, _ in rides] == [(fl["B1"], fl["L1"]), (fl["L1"], fl["L2"])]
    assert rides[0][2] == via
    second = tab.site.zones[rides[1][2]]
    assert second.shaft == shaft and second.floor == "L1"


def test_down_by_escalator_and_unknown_connector(tab):
    fl = tab.loc.floor_ix
    rides = tab._rides(fl["L3"], fl["L1"], -1)
    assert [(a, b, v) for a, b, v in rides] == [(fl["L3"], fl["L2"], -1), (fl["L2"], fl["L1"], -1)]


def test_lift_goes_straight_and_one_floor_is_one_ride(tab):
    fl = tab.loc.floor_ix
    via, _ = landing(tab, "lift", "B1")
    assert tab._rides(fl["B1"], fl["L3"], via) == [(fl["B1"], fl["L3"], via)]
    esc, _ = landing(tab, "escalator", "L1")
    assert tab._rides(fl["L1"], fl["L2"], esc) == [(fl["L1"], fl["L2"], esc)]
