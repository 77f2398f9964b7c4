"""The tenant report against the real InfluxDB, rendered in headless Chromium."""
from __future__ import annotations

import csv
import re
import shutil
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone

import pytest

from analytics.report.figures import Cell
from gateway.site import load_site, sample_site_path
from mallsense.cli import main
from tests.dashboards import afternoon

pytestmark = pytest.mark.servers

SITE = load_site(sample_site_path())
DB = "report_afternoon"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def filled(influxdb):
    end = int(time.time())
    days = [afternoon.simulate(SITE, end - d * 86400, seed=10 + d) for d in (7, 1, 0)]
    influxdb.create_database(DB)
    for a in days:
        afternoon.write(a, influxdb.url, DB)
    visits = [Visit(sv.zone, sv.enter_t, sv.exit_t, int(bool(sv.purchases)), int(bool(r.member)),
                    r.visitor) for a in days for r in a.records if r.entered for sv in r.visits]
    counts = Counter(v.store for v in visits)
    busy, _ = counts.most_common(1)[0]
    return {"url": influxdb.url, "visits": visits, "busy": busy, "counts": counts,
            "start": days[0].start, "end": end + 1}


@dataclass(frozen=True)
class Visit:
    store: str
    t0: float
    t1: float
    purchase: int
    member: int
    visitor: str


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat()


def make(filled, store, out, k=5) -> int:
    return main(["report", "--influx", filled["url"], "--db", DB, "--site", SITE.id,
                 "--store", store, "--from", iso(filled["start"]), "--to", iso(filled["end"]),
                 "--out", str(out), "--k", str(k)])


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_cell_suppression_rule():
    assert Cell(12, visitors=4).shown(5) == "<5"
    assert Cell(12, visitors=5).shown(5) == "12"
    assert Cell(25.0, 40, numerator_visitors=3, unit="%", digits=1).shown(5) == "<5"
    assert Cell(0.0, 40, numerator_visitors=0, unit="%", digits=1).shown(5) == "0.0%"
    assert Cell(7, visitors=2).shown(2) == "7"


def test_report_files_and_figures_match_the_truth(filled, tmp_path):
    store = filled["busy"]
    assert make(filled, store, tmp_path) == 0
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == sorted(f"{n}.png" for n in
                          ("per_day", "per_hour", "dwell", "conversion", "members", "mean_dwell"))
    for p in tmp_path.glob("*.png"):
        assert p.read_bytes()[:8] == PNG_MAGIC
    html = (tmp_path / "index.html").read_text()
    for p in pngs:
        assert f'src="{p}"' in html
    rows = read_csv(tmp_path / "report.csv")
    mine = [v for v in filled["visits"] if v.store == store]
    per_day = [r for r in rows if r["table"] == "per_day" and r["column"] == "visits"]
    assert len(per_day) == 3  # three simulated afternoons
    shown = [int(r["value"]) for r in per_day if r["value"] != "<5"]
    assert sum(shown) == len(mine)  # the busiest store has no suppressed day
    comp = {r["row"].split(" ")[0]: r for r in rows
            if r["table"] == "comparison" and r["column"] == "visits"}
    assert int(comp["store"]["value"]) == len(mine)
    assert int(comp["mall"]["value"]) == len(filled["visits"])
    conv = next(r for r in rows if r["table"] == "comparison" and r["row"].startswith("store")
                and r["column"] == "conversion")
    assert conv["value"] == f"{100.0 * sum(v.purchase for v in mine) / len(mine):.1f}%"


def test_cells_under_k_distinct_visitors_are_suppressed(filled, tmp_path):
    store = filled["busy"]
    mine = [v for v in filled["visits"] if v.store == store]
    assert make(filled, store, tmp_path, k=5) == 0
    dwell = {r["row"]: r["value"] for r in read_csv(tmp_path / "report.csv")
             if r["table"] == "dwell" and r["column"] == "visits"}
    bins = [(0, 2), (2, 5), (5, 10), (10, 20), (20, 30), (30, 60), (60, None)]
    for lo, hi in bins:
        inside = [v for v in mine if v.t1 - v.t0 >= lo * 60 and (hi is None or v.t1 - v.t0 < hi * 60)]
        label = f"{lo:g}-{hi:g} min" if hi is not None else f">= {lo:g} min"
        distinct = len({v.visitor for v in inside})
        assert dwell[label] == ("<5" if distinct < 5 else str(len(inside))), label
    assert "<5" in dwell.values(), "the simulated store should have a rare dwell bin"
    # With k larger than the whole store's visitors, every store cell is suppressed.
    big = len({v.visitor for v in mine}) + 1
    out2 = tmp_path / "k"
    assert make(filled, store, out2, k=big) == 0
    store_cells = [r["value"] for r in read_csv(out2 / "report.csv")
                   if r["table"] in ("per_day", "per_hour", "dwell")]
    assert store_cells and set(store_cells) == {f"<{big}"}


def test_unknown_store_is_refused(filled, tmp_path, capsys):
    assert make(filled, "no-such-store", tmp_path) == 2
    assert "no visits" in capsys.readouterr().err


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe, "Debian package chromium is not installed (scripts/setup.sh installs it)"
    return exe


def _run_chromium(args, tmp_path) -> subprocess.CompletedProcess:
    base = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-dev-shm-usage", "--allow-file-access-from-files",
            f"--user-data-dir={tmp_path / 'profile'}"]
    return subprocess.run(base + args, capture_output=True, timeout=90)


def test_report_renders_in_headless_chromium(filled, tmp_path):
    out = tmp_path / "report"
    assert make(filled, filled["busy"], out) == 0
    url = (out / "index.html").resolve().as_uri()
    dom = _run_chromium(["--virtual-time-budget=5000", "--dump-dom", url], tmp_path)
    text = dom.stdout.decode("utf-8", "replace")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-images-loaded="yes"' in text, text[:500]
    assert 'data-images="6"' in text
    tables = re.findall(r"<table[^>]*>.*?</table>", text, flags=re.S)
    assert len(tables) == 4
    for t in tables:
        assert len(re.findall(r"<td>", t)) >= 2, "a table is empty"
    shot = tmp_path / "page.png"
    res = _run_chromium([f"--screenshot={shot}", "--window-size=1200,1600", url], tmp_path)
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == PNG_MAGIC
    import matplotlib.image as mpimg
    import numpy as np
    img = mpimg.imread(shot)
    assert img.shape[0] >= 1000 and img.shape[1] >= 1000
    # Non-blank: many distinct colours and the chart blue is present.
    flat = (img[..., :3] * 255).astype(np.uint8).reshape(-1, 3)
    assert len(np.unique(flat, axis=0)) > 50
    assert img[..., :3].std() > 0.05
