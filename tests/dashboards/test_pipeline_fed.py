"""End to end: firmware_sim -> analytics.pipeline.Pipeline -> analytics.sink -> real InfluxDB,
then the operator and tenant dashboards' queries against what the real pipeline wrote.

A short crowd (2.5 min, 25 shoppers at once) keeps this under half a minute on a busy machine;
the longer afternoon in test_queries.py covers the shapes and the field dashboard (gateway
heartbeats and the coverage plan are not part of the radio simulation). Panels comparing with
last week (timeShift) have no last week here and are left to test_queries.py.
"""
from __future__ import annotations

import time
from collections import Counter

import pytest

from analytics.pipeline import Pipeline
from analytics.sink import InfluxSink, V1HttpTransport
from dashboards.build import build_all
from firmware_sim import SimConfig, simulate
from gateway.site import load_site, sample_site_path
from tests.dashboards.grafana import Range, data_panels, interpolate, targets

pytestmark = pytest.mark.servers

SITE = load_site(sample_site_path())
MODELS = build_all(SITE)
DB = "dash_pipeline"
SECRET = b"dashboards-test-site-secret"
DURATION_S = 150
PANELS = [(uid, p) for uid in ("mallsense-operator", "mallsense-tenant")
          for p in data_panels(MODELS[uid]) if not p.get("timeShift")]


@pytest.fixture(scope="module")
def pipeline_db(influxdb):
    start = int(time.time()) - DURATION_S - 5
    res = simulate(SITE, SimConfig(seed=7, start=start, duration_s=DURATION_S, level="windows",
                                   concurrent=25), progress=False)
    pipe = Pipeline(SITE)
    points = []
    for t, batch in res.batches(SECRET):
        points += pipe.process(batch, now=t + 1.0).points
    points += pipe.flush().points
    influxdb.create_database(DB)
    sink = InfluxSink(V1HttpTransport(influxdb.url, DB), precision="ns")
    sink.write(points)
    assert sink.close().spooled_lines == 0
    store_visits = Counter(p.tags["store"] for p in points if p.measurement == "store_visit")
    assert store_visits, "the pipeline finished no store visit"
    store = store_visits.most_common(1)[0][0]
    written = Counter(p.measurement for p in points)
    return {"range": Range(start - start % 3600, int(time.time()) + 1), "written": written,
            "vars": {"mallsense-operator": {"site": SITE.id, "floor": ".*"},
                     "mallsense-tenant": {"site": SITE.id, "store": store,
                                          "floor": SITE.zone(store).floor}}}


def test_pipeline_writes_the_live_measurements(pipeline_db):
    for m in ("floor_occupancy", "zone_occupancy", "heat_cell", "store_visit", "funnel"):
        assert pipeline_db["written"][m] > 0, m


@pytest.mark.parametrize("uid,panel", PANELS, ids=[f"{u}:{p['id']}:{p['type']}" for u, p in PANELS])
def test_panel_has_data_from_the_real_pipeline(influxdb, pipeline_db, uid, panel):
    rng = pipeline_db["range"].for_panel(panel)
    for t in targets(panel):
        q = interpolate(t["query"], pipeline_db["vars"][uid], rng)
        res = influxdb.query(q, DB)["results"][0]
        assert "error" not in res, (res.get("error"), q)
        series = res.get("series", [])
        vals = [v for s in series for row in s["values"] for v in row[1:] if isinstance(v, (int, float))]
        assert vals, f"{panel['title']!r}: no data from the pipeline for {q}"
