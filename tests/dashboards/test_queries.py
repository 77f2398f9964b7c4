"""Every panel's InfluxQL runs against the real InfluxDB filled with a simulated afternoon.

A panel whose query errors or returns nothing fails; each panel kind is checked for the shape it
renders (time series over time, one value per store, x/y/devices columns...), and a few values
are checked against the simulation's own ground truth.
"""
from __future__ import annotations

import re
import time
from collections import Counter

import pytest

from dashboards.build import build_all
from gateway.site import load_site, sample_site_path
from tests.dashboards import afternoon
from tests.dashboards.grafana import Range, data_panels, interpolate, seconds, targets

pytestmark = pytest.mark.servers

SITE = load_site(sample_site_path())
MODELS = build_all(SITE)
DB = "dash_afternoon"
PANELS = [(uid, p) for uid, m in MODELS.items() for p in data_panels(m)]


@pytest.fixture(scope="module")
def filled(influxdb):
    end = int(time.time())
    today = afternoon.simulate(SITE, end, seed=1)
    last_week = afternoon.simulate(SITE, end - 7 * 86400, seed=2)
    influxdb.create_database(DB)
    assert afternoon.write(today, influxdb.url, DB) == len(today.points)
    assert afternoon.write(last_week, influxdb.url, DB) == len(last_week.points)
    top_store, _ = Counter(v.zone for v in today.store_visits).most_common(1)[0]
    floor = SITE.zone(top_store).floor
    return {
        # From the top of the hour: hourly buckets are stamped with the hour they start.
        "aft": today, "range": Range(today.start - today.start % 3600, end + 1), "store": top_store,
        "vars": {
            "mallsense-operator": {"site": SITE.id, "floor": "L1"},
            "mallsense-tenant": {"site": SITE.id, "store": top_store, "floor": floor},
            "mallsense-field": {"site": SITE.id, "floor": ".*"},
        },
    }


def run(influxdb, q: str) -> list[dict]:
    ans = influxdb.query(q, DB)
    res = ans["results"][0]
    assert "error" not in res, f"{res['error']} in {q}"
    return res.get("series", [])


def values(series: list[dict], column: str | None = None) -> list[float]:
    out = []
    for s in series:
        cols = s["columns"]
        idx = [cols.index(column)] if column else range(1, len(cols))
        for row in s["values"]:
            out.extend(row[i] for i in idx if isinstance(row[i], (int, float)))
    return out


def table_rows(series: list[dict]) -> list[dict]:
    """Rows as Grafana's table format shows them: GROUP BY tags become columns."""
    return [{**s.get("tags", {}), **dict(zip(s["columns"], r))} for s in series for r in s["values"]]


def panel_results(influxdb, filled, uid, panel) -> list[list[dict]]:
    rng = filled["range"].for_panel(panel)
    out = []
    for t in targets(panel):
        q = interpolate(t["query"], filled["vars"][uid], rng)
        series = run(influxdb, q)
        assert series, f"{uid}: panel {panel['title']!r} target {t['refId']} returned nothing: {q}"
        assert values(series), f"{uid}: {panel['title']!r}: only nulls from {q}"
        out.append(series)
    return out


@pytest.mark.parametrize("uid,panel", PANELS, ids=[f"{u}:{p['id']}:{p['type']}" for u, p in PANELS])
def test_panel_query_returns_data_of_its_shape(influxdb, filled, uid, panel):
    results = panel_results(influxdb, filled, uid, panel)
    kind = panel["type"]
    for t, series in zip(targets(panel), results):
        if kind == "timeseries":
            assert all(s["columns"][0] == "time" for s in series)
            m = re.search(r"GROUP BY time\(([\w$]+)\)", t["query"])
            step = seconds(m.group(1).replace("$__interval", "1m")) if m else None
            rng = filled["range"]
            if step and step * 2 <= rng.end - rng.start:
                assert max(len(s["values"]) for s in series) >= 2, "a time series needs buckets"
        elif kind == "canvas":
            # Every series drives an element (a store of that floor); over an afternoon most
            # stores had someone in them (empty zones write no point).
            zones = {s["tags"]["zone"] for s in series}
            elements = {e["name"] for e in panel["options"]["root"]["elements"]}
            assert zones <= elements, f"series for zones not on the plan: {sorted(zones - elements)}"
            assert len(zones) >= 0.8 * len(elements), (len(zones), len(elements))
        elif kind == "xychart":
            rows = table_rows(series)
            assert len(rows) >= 20
            assert all({"x_m", "y_m", "visitors"} <= set(r) for r in rows)
            assert all(r["visitors"] > 0 for r in rows)
            floor = SITE.floor(filled["vars"][uid]["floor"])
            xs = [p[0] for p in floor.outline]
            ys = [p[1] for p in floor.outline]
            assert all(min(xs) <= r["x_m"] <= max(xs) and min(ys) <= r["y_m"] <= max(ys) for r in rows)
        elif kind == "barchart":
            rows = table_rows(series)
            x = panel["options"]["xField"]
            assert len(rows) >= 3 and all(r.get(x) is not None for r in rows)
        elif kind == "table" and panel["transformations"] and "sortBy" in {
                x["id"] for x in panel["transformations"]}:
            field = panel["transformations"][0]["options"]["sort"][0]["field"]
            assert len(series) >= 10 and all(field in s["columns"] for s in series)
        elif kind in ("stat", "bargauge", "piechart", "table"):
            assert all(isinstance(v, (int, float)) for v in values(series))
        else:
            pytest.fail(f"no shape check for panel type {kind}")


@pytest.mark.parametrize("uid", sorted(MODELS))
def test_variable_queries_list_the_values_used(influxdb, filled, uid):
    for v in MODELS[uid]["templating"]["list"]:
        q = interpolate(v["query"], filled["vars"][uid], filled["range"])
        listed = {row[1] for s in run(influxdb, q) for row in s["values"]}
        want = filled["vars"][uid][v["name"]]
        assert listed and (want == ".*" or want in listed), (v["name"], want, listed)


def _panel(uid: str, title_part: str) -> dict:
    return next(p for p in data_panels(MODELS[uid]) if title_part in p["title"])


def test_values_match_the_simulated_truth(influxdb, filled):
    aft, store = filled["aft"], filled["store"]
    # Gateways online now: all but those whose heartbeat stopped (their last will says offline).
    (online,) = panel_results(influxdb, filled, "mallsense-field", _panel("mallsense-field", "online ("))
    assert values(online) == [len(SITE.gateways) - len(aft.offline_gateways)]
    heard, online = panel_results(influxdb, filled, "mallsense-field",
                                  _panel("mallsense-field", "Gateways offline"))
    assert values(heard)[0] - values(online)[0] == len(aft.offline_gateways) > 0
    # Tenant conversion: purchases / visits of the store.
    (conv,) = panel_results(influxdb, filled, "mallsense-tenant",
                            _panel("mallsense-tenant", "Conversion (visits"))
    mine = [v for v in aft.store_visits if v.zone == store]
    assert values(conv)[0] == pytest.approx(100.0 * sum(bool(v.purchases) for v in mine) / len(mine))
    # Funnel entries equal the footfall entries over the same range.
    funnel = panel_results(influxdb, filled, "mallsense-operator", _panel("mallsense-operator", "funnel"))[0]
    cols = funnel[0]["columns"]
    row = dict(zip(cols, funnel[0]["values"][0]))
    assert row["passby"] >= row["entry"] > row["dwell"] * 0 and row["exit"] > 0
    foot = run(influxdb, interpolate('SELECT sum("entries") FROM "footfall" WHERE $timeFilter',
                                     {}, filled["range"]))
    assert values(foot)[0] == row["entry"]
