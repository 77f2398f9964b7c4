"""Every dashboard builds to valid Grafana JSON, and the CLI writes it with provisioning files."""
from __future__ import annotations

import json
import re

import pytest

from dashboards import schema
from dashboards.build import build_all
from dashboards.influxql import DATASOURCE_UID
from gateway.site import load_site, sample_site_path
from mallsense.cli import main
from tests.dashboards.grafana import data_panels, targets

SITE = load_site(sample_site_path())
MODELS = build_all(SITE)
EXPECTED_VARIABLES = {
    "mallsense-operator": {"site", "floor"},
    "mallsense-tenant": {"site", "store", "floor"},
    "mallsense-field": {"site", "floor"},
}
KNOWN_MEASUREMENTS = {m.name for m in schema.ALL}


def test_the_three_dashboards_are_built():
    assert set(MODELS) == set(EXPECTED_VARIABLES)


@pytest.mark.parametrize("uid", sorted(MODELS))
def test_dashboard_is_valid_json_with_unique_ids_and_targets(uid):
    model = json.loads(json.dumps(MODELS[uid]))  # round-trips as plain JSON
    assert model["uid"] == uid and model["title"]
    ids = [p["id"] for p in model["panels"]]
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {uid}: {ids}"
    panels = data_panels(model)
    assert len(panels) >= 6
    for p in panels:
        ts = targets(p)
        assert ts, f"{uid}: panel {p['title']!r} has no target"
        assert p["datasource"]["uid"] == DATASOURCE_UID
        for t in ts:
            assert t["rawQuery"] is True and t["query"].startswith("SELECT ")
            assert t["datasource"]["uid"] == DATASOURCE_UID
            used = set(re.findall(r'FROM "([a-z_]+)"', t["query"]))
            assert used and used <= KNOWN_MEASUREMENTS, (p["title"], used)
        gp = p["gridPos"]
        assert 0 < gp["w"] <= 24 and gp["h"] > 0 and gp["x"] + gp["w"] <= 24


@pytest.mark.parametrize("uid", sorted(MODELS))
def test_template_variables_select_site_floor_store(uid):
    variables = {v["name"]: v for v in MODELS[uid]["templating"]["list"]}
    assert set(variables) == EXPECTED_VARIABLES[uid]
    for v in variables.values():
        assert v["type"] == "query" and v["query"].startswith("SHOW TAG VALUES FROM")
        assert v["datasource"]["uid"] == DATASOURCE_UID
    used = " ".join(t["query"] for p in data_panels(MODELS[uid]) for t in targets(p))
    for name in variables:
        assert f"${name}" in used, f"variable {name} is not used by any panel of {uid}"


def test_operator_is_live_and_has_heat_views_footfall_shift_and_funnel():
    op = MODELS["mallsense-operator"]
    assert op["refresh"] in ("5s", "10s")
    panels = data_panels(op)
    canvases = [p for p in panels if p["type"] == "canvas"]
    assert len(canvases) == len(SITE.floors)
    for c, f in zip(canvases, SITE.floors):
        root = c["options"]["root"]
        assert root["background"]["image"]["fixed"].endswith(f"{SITE.id}-{f.id}.png")
        names = {e["name"] for e in root["elements"]}
        assert names == {z.id for z in SITE.zones_on(f.id) if z.kind == "store"}
        for e in root["elements"]:
            pl = e["placement"]
            assert 0 <= pl["left"] < 100 - pl["right"] and 0 <= pl["top"] < 100 - pl["bottom"]
    assert any(p["type"] == "xychart" for p in panels)
    assert any(p.get("timeShift") == "7d" for p in panels)
    funnel = next(p for p in panels if "funnel" in p["title"].lower())
    for stage in schema.FUNNEL_STAGES:
        assert f'"{stage}"' in funnel["targets"][0]["query"]


def test_cli_build_writes_dashboards_floorplans_and_provisioning(tmp_path):
    assert main(["dashboards", "build", "--out", str(tmp_path)]) == 0
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert [f for f in files if f.startswith("dashboards/")] == sorted(
        f"dashboards/{u}.json" for u in MODELS)
    assert len([f for f in files if f.startswith("floorplans/")]) == len(SITE.floors)
    for uid in MODELS:
        assert json.loads((tmp_path / "dashboards" / f"{uid}.json").read_text())["uid"] == uid
    ds = (tmp_path / "provisioning/datasources/mallsense.yaml").read_text()
    assert f"uid: {DATASOURCE_UID}" in ds and "type: influxdb" in ds and "dbName: mallsense" in ds
    pv = (tmp_path / "provisioning/dashboards/mallsense.yaml").read_text()
    assert str((tmp_path / "dashboards").resolve()) in pv
    png = (tmp_path / "floorplans" / f"{SITE.id}-L1.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


SCHEMA = {m.name: m for m in schema.ALL}


@pytest.mark.parametrize("uid", sorted(MODELS))
def test_queries_use_only_schema_names(uid):
    """Every quoted identifier is a measurement, or a tag/field of the measurement it reads,
    or an alias the query itself defines: names come from dashboards/schema.py only."""
    queries = [t["query"] for p in data_panels(MODELS[uid]) for t in targets(p)]
    queries += [v["query"] for v in MODELS[uid]["templating"]["list"]]
    for q in queries:
        measurements = re.findall(r'FROM "([A-Za-z_]+)"', q)
        assert measurements and all(m in SCHEMA for m in measurements), q
        allowed = set(measurements) | set(re.findall(r'AS "([A-Za-z_]+)"', q))
        for m in measurements:
            allowed |= set(SCHEMA[m].tags) | set(SCHEMA[m].fields)
        used = set(re.findall(r'"([A-Za-z_]+)"', q))
        assert used <= allowed, f"{sorted(used - allowed)} not in schema for {q}"
