"""Coverage planning on the sample mall: maps, weak spots, and a suggestion that helps."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from gateway.plan import (CAP_M, coverage_points, floor_cells, floor_coverage, points_in_polygon,
                          suggest_gateway)
from gateway.site import load_site, sample_site_path
from mallsense.cli import main

SITE = load_site(sample_site_path())
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def plan_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("plan")
    assert main(["plan", "--site", str(sample_site_path()), "--out", str(out),
                 "--threshold-m", "3"]) == 0
    return out


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_points_in_polygon_even_odd():
    square = [(0, 0), (10, 0), (10, 10), (0, 10)]
    x = np.array([5.0, 15.0, -1.0, 9.9, 0.1])
    y = np.array([5.0, 5.0, 5.0, 9.9, 0.1])
    assert points_in_polygon(x, y, square).tolist() == [True, False, False, True, True]
    ell = [(0, 0), (10, 0), (10, 4), (4, 4), (4, 10), (0, 10)]
    assert points_in_polygon(np.array([2.0, 7.0]), np.array([8.0, 8.0]), ell).tolist() == [True, False]


def test_cells_skip_atrium_outside_and_service():
    gx, gy, zone_of, void = floor_cells(SITE, "L1", 2.0)
    scored = {z for z in zone_of.ravel() if z is not None}
    kinds = {SITE.zone(z).kind for z in scored}
    assert kinds and not kinds & {"atrium", "outside", "service"}
    assert void.any(), "the sample L1 has an atrium"
    assert not np.any(np.not_equal(zone_of[void], None))


def test_plan_writes_a_map_per_floor_and_the_weak_spots(plan_dir):
    pngs = sorted(p.name for p in plan_dir.glob("*.png"))
    assert pngs == sorted(f"coverage_{f.id}.png" for f in SITE.floors) and len(pngs) == 4
    for p in plan_dir.glob("*.png"):
        data = p.read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 20_000
    weak = rows(plan_dir / "weak_cells.csv")
    assert weak and all(float(r["crlb_m"]) > 3.0 for r in weak)
    assert {r["floor"] for r in weak} == {f.id for f in SITE.floors}
    zones = rows(plan_dir / "zones.csv")
    cov = floor_coverage(SITE, "L1")
    scores = cov.zone_scores()
    l1 = {r["zone"]: r for r in zones if r["floor"] == "L1"}
    assert set(l1) == set(scores)
    for zid, r in l1.items():
        assert float(r["mean_crlb_m"]) == pytest.approx(scores[zid], abs=0.006)
        assert r["worse_than_3_m"] == ("yes" if scores[zid] > 3.0 else "no")


def test_each_suggestion_lowers_the_worst_zone_error_when_added(plan_dir):
    sugg = rows(plan_dir / "suggestions.csv")
    assert [r["floor"] for r in sugg] == [f.id for f in SITE.floors]
    dropped_max = 0
    for r in sugg:
        f = r["floor"]
        before = floor_coverage(SITE, f)
        worst_zone, worst = before.worst_zone()
        assert r["target_zone"] == worst_zone
        new = (float(r["x_m"]), float(r["y_m"]), float(r["z_above_floor_m"]))
        after = floor_coverage(SITE, f, extra=[new])
        assert after.zone_scores()[worst_zone] < worst - 0.5, f
        assert after.mean_m() < before.mean_m()
        # More information never hurts: no cell's bound rises.
        b, a = np.nan_to_num(before.crlb_m, nan=0, posinf=1e9), np.nan_to_num(after.crlb_m, nan=0, posinf=1e9)
        assert np.all(a <= b + 1e-9)
        dropped_max += after.worst_zone()[1] < worst - 1e-9
        # The new gateway hangs over a scored zone of that floor.
        assert points_in_polygon(np.array([new[0]]), np.array([new[1]]),
                                 SITE.zone(_zone_at(f, new)).polygon)[0]
    assert dropped_max >= 2, "the floor maximum should drop where the worst zone is unique"


def _zone_at(floor_id, xyz):
    gx, gy, zone_of, _ = floor_cells(SITE, floor_id, 2.0)
    return zone_of[np.argmin(abs(gy - xyz[1])), np.argmin(abs(gx - xyz[0]))]


def test_greedy_beats_random_positions():
    rng = np.random.default_rng(3)
    s = suggest_gateway(SITE, "L3")
    gx, gy, zone_of, _ = floor_cells(SITE, "L3", 2.0)
    ok = np.argwhere(np.not_equal(zone_of, None))
    for iy, ix in ok[rng.choice(len(ok), 8, replace=False)]:
        cov = floor_coverage(SITE, "L3", extra=[(gx[ix], gy[iy], s.z)], with_margin=False)
        assert s.worst_after_m <= cov.zone_scores()[s.worst_zone] + 1e-9


def test_coverage_points_for_the_field_dashboard():
    pts = coverage_points(SITE, t=1_700_000_000)
    assert [p.tags["floor"] for p in pts] == [f.id for f in SITE.floors]
    for p in pts:
        f = p.fields
        assert 0 < f["crlb_p50_m"] <= f["crlb_p90_m"] <= f["crlb_max_m"] <= CAP_M
        assert f["floor_margin_p10_nats"] > 0
        assert p.to_line().startswith(f"coverage,floor={p.tags['floor']},site={SITE.id} ")
