"""The pure pipeline on the small synthetic world: one known journey per test."""
from __future__ import annotations

import pytest

from gateway.site import load_site, sample_site_path
from gateway.wire import PosTransaction, SightingsBatch, Topic

from analytics.pipeline import Output, Pipeline, PipelineConfig
from analytics.visitors import VisitorConfig
from tests.analytics.synth import T0, Walker, batches, line, stay


@pytest.fixture(scope="module")
def site():
    return load_site(sample_site_path())


def shopper_path(store_s: int = 240):
    """South entrance, up the spur, east along the corridor into the east anchor store."""
    into = (line("L1", (60, -7), (60, 30), 1.2) + line("L1", (60, 30), (96, 30), 1.2)
            + line("L1", (96, 30), (110, 25), 1.2))
    return into + stay("L1", (110, 25), store_s) + into[::-1] + stay("L1", (60, -7), 10)


def run(site, feed, cfg=None, pos=()):
    pl = Pipeline(site, cfg or PipelineConfig())
    out = Output()
    pos = sorted(pos, key=lambda p: p.t)
    for t, b in feed:
        while pos and pos[0].t <= t:
            out.extend(pl.pos(pos.pop(0)))
        out.extend(pl.process(b, now=t + 0.5))
    out.extend(pl.flush())
    return pl, out


def types(out):
    return [e.type for e in out.events]


def test_shopper_entry_store_visit_purchase_exit(site):
    w = Walker([(0, "ble-a")], "ble", shopper_path())
    feed = batches(site, [w], len(w.path) + 5)
    txn = PosTransaction(site.id, T0 + 150, "l1-anchor-e", 19.9, "EUR", "t-1")
    pl, out = run(site, feed, pos=[txn])
    ev = {}
    for e in out.events:
        if e.type not in ev or (e.type.startswith("zone") and e.zone == "l1-anchor-e"):
            ev[e.type] = e
    assert types(out).count("entry") == 1 and ev["entry"].entrance == "l1-entrance-s"
    assert ev["zone_enter"].zone == "l1-anchor-e"
    assert abs(ev["zone_exit"].dwell_s - 240) <= 45
    assert ev["purchase"].zone == "l1-anchor-e" and ev["purchase"].txn_id == "t-1"
    assert ev["exit"].entrance == "l1-entrance-s"
    assert abs(ev["exit"].duration_s - (len(w.path) - 10)) <= 40
    assert len({e.visitor for e in out.events}) == 1
    (rec,) = out.visits
    assert rec.entered and rec.visits[0].purchases and not rec.excluded


def test_metrics_points_for_the_visit(site):
    w = Walker([(0, "ble-a")], "ble", shopper_path())
    _, out = run(site, batches(site, [w], len(w.path) + 5),
                 pos=[PosTransaction(site.id, T0 + 150, "l1-anchor-e", 19.9, "EUR", "t-1")])
    lines = [p.to_line() for p in out.points]
    ff = [ln for ln in lines if ln.startswith("footfall,")]
    assert any("entrance=l1-entrance-s" in ln and "entries=1i" in ln for ln in ff)
    sv = [ln for ln in lines if ln.startswith("store_visits,") and "store=l1-anchor-e" in ln]
    assert len(sv) == 1 and "conversion=1.0" in sv[0] and "buyers=1i" in sv[0]
    vis = [ln for ln in lines if ln.startswith("visitors,")]
    assert vis and "visitors=1i" in vis[-1] and "passersby=0i" in vis[-1]
    occ = [ln for ln in lines if ln.startswith("floor_occupancy,floor=L1")]
    assert any("visitors=1i" in ln for ln in occ)
    assert any(ln.startswith("heat_cell,") for ln in lines)


def test_passerby_never_enters(site):
    w = Walker([(0, "ble-p")], "ble", line("L1", (5, -6), (115, -6)))
    _, out = run(site, batches(site, [w], len(w.path) + 5, seed=3))
    assert "entry" not in types(out)
    assert types(out).count("passby") == 1
    (rec,) = out.visits
    assert not rec.entered and rec.passby_entrance == "l1-entrance-s"


def test_address_rotation_in_store_is_one_visitor_one_visit(site):
    w = Walker([(0, "ble-old"), (150, "ble-new")], "ble", shopper_path(300))
    _, out = run(site, batches(site, [w], len(w.path) + 5, seed=5))
    assert len({e.visitor for e in out.events}) == 1
    assert types(out).count("zone_enter") == 1 and types(out).count("entry") == 1
    assert len(out.visits) == 1 and out.visits[0].n_devices == 2


def test_two_shoppers_are_two_visitors(site):
    a = Walker([(0, "ble-a")], "ble", shopper_path(200))
    b = Walker([(0, "ble-b")], "ble", line("L1", (60, 75), (60, 55)) + stay("L1", (60, 55), 60)
               + line("L1", (60, 55), (60, 75)), start_s=30)
    _, out = run(site, batches(site, [a, b], 400, seed=7))
    assert len(out.visits) == 2
    assert sorted(e.entrance for e in out.events if e.type == "entry") == ["l1-entrance-n", "l1-entrance-s"]


def test_floor_change_via_escalator(site):
    path = (line("L1", (60, -7), (60, 27)) + line("L1", (60, 27), (68, 35)) + stay("L1", (68, 35), 10)
            + stay("L2", (68, 35), 10) + line("L2", (68, 35), (85, 35)) + stay("L2", (85, 35), 60))
    w = Walker([(0, "ble-f")], "ble", path)
    _, out = run(site, batches(site, [w], len(path), seed=11))
    fc = [e for e in out.events if e.type == "floor_change"]
    assert len(fc) == 1 and (fc[0].floor_from, fc[0].floor_to) == ("L1", "L2")
    assert fc[0].via in ("l1-esc-e", "l2-esc-e")


def test_redelivered_batches_change_nothing(site):
    w = Walker([(0, "ble-a")], "ble", shopper_path(120))
    feed = batches(site, [w], len(w.path) + 5, seed=2)
    _, once = run(site, feed)
    doubled = [x for pair in zip(feed, feed) for x in pair]
    pl, twice = run(site, doubled)
    assert types(once) == types(twice)
    assert pl.stats["duplicates"] == len(feed)
    assert [p.to_line() for p in once.points if not p.measurement.startswith("ingest")] == \
        [p.to_line() for p in twice.points if not p.measurement.startswith("ingest")]


def test_late_spool_replay_counted_once(site):
    """One gateway's batches arrive an hour late (spool replay): its sightings count once,
    a device only it heard still becomes a visitor."""
    w = Walker([(0, "ble-a")], "ble", shopper_path(120))
    feed = batches(site, [w], len(w.path) + 5, seed=2)
    gw = "gw-l1-08" if any(b.gw == "gw-l1-08" for _, b in feed) else feed[0][1].gw
    live = [x for x in feed if x[1].gw != gw]
    late = [x for x in feed if x[1].gw == gw]
    pl, out = run(site, live + late + late)
    assert pl.stats["sightings"] == sum(len(b.s) for _, b in feed)
    # The last lateness_s (3) windows were still open when the replay came: not late.
    assert pl.stats["late_batches"] == len(late) - 3
    assert pl.stats["duplicates"] == len(late)
    assert len(out.visits) == 1


def test_fixed_device_excluded(site):
    cfg = PipelineConfig(visitor=VisitorConfig(fixed_min_s=300.0))
    w = Walker([(0, "ble-fixed")], "ble", stay("L1", (35, 30), 420))
    _, out = run(site, batches(site, [w], 420, seed=4), cfg)
    (rec,) = out.visits
    assert rec.excluded
    vis = [p.to_line() for p in out.points if p.measurement == "visitors"]
    assert "excluded=1i" in vis[-1] and "visitors=0i" in vis[-1]


def test_shopper_walking_that_long_is_not_a_fixed_device(site):
    """The fixed-device rule needs the track's spread: a phone walking the corridor back and
    forth for as long as fixed_min_s is a shopper (the spread once never reached visitors)."""
    cfg = PipelineConfig(visitor=VisitorConfig(fixed_min_s=300.0))
    leg = line("L1", (20, 30), (100, 30)) + line("L1", (100, 30), (20, 30))
    w = Walker([(0, "ble-walker")], "ble", (leg * 3)[:420])
    still = Walker([(0, "ble-fixed")], "ble", stay("L1", (35, 30), 420))
    _, out = run(site, batches(site, [w, still], 420, seed=5), cfg)
    by_id = {r.device_ids[0]: r for r in out.visits}
    assert not by_id["ble-walker"].excluded
    assert by_id["ble-fixed"].excluded


def test_bad_payload_goes_to_deadletter(site):
    pl = Pipeline(site)
    topic = str(Topic.sightings(site.id, site.gateways[0].id))
    out = pl.process_payload(topic, b'{"v":1,"site":"sample-mall"', T0)
    (dl,) = out.deadletters
    assert dl.reason == "bad_json" and dl.topic == topic
    other = SightingsBatch(site.id, site.gateways[1].id, 0, T0, 1.0, ()).encode()
    out = pl.process_payload(topic, other, T0)
    assert out.deadletters[0].reason == "topic_mismatch"
    assert pl.stats["deadletters"] == 2
