"""The durable sink: state machine with a scripted transport (failure patterns no server
produces on demand), then the real servers: InfluxDB 1.x over v1, VictoriaMetrics over v2."""
from __future__ import annotations

import os
import threading
import time
import urllib.request

import pytest

from analytics.errors import SinkError
from analytics.sink import (DOWN, UP, InfluxSink, Point, Spool, V1HttpTransport,
                            V2ClientTransport, make_sink)


class ScriptedTransport:
    """Fails while `down` is set; records what it accepted."""

    name = "scripted"

    def __init__(self):
        self.down = False
        self.refuse = False
        self.accepted: list[bytes] = []
        self.calls = 0

    def send(self, body, precision):
        self.calls += 1
        if self.refuse:
            raise SinkError("bad", status=400, transient=False)
        if self.down:
            raise SinkError("connection refused", transient=True)
        self.accepted.append(body)

    def close(self):
        pass


def lines_of(t: ScriptedTransport) -> list[str]:
    return [ln for b in t.accepted for ln in b.decode().splitlines()]


def mk(transport, tmp_path, **kw):
    clock = [0.0]
    sink = InfluxSink(transport, tmp_path / "spool.db", clock=lambda: clock[0],
                      sleep=lambda s: None, **kw)
    return sink, clock


def test_batches_at_batch_lines(tmp_path):
    t = ScriptedTransport()
    sink, _ = mk(t, tmp_path, batch_lines=3)
    sink.write(Point("m", {}, {"v": i}, i) for i in range(7))
    assert len(t.accepted) == 2 and sink.pending() == 1
    res = sink.flush()
    assert lines_of(t) == [f"m v={i}i {i}" for i in range(7)]
    assert res.spooled_lines == 0 and res.sent_lines == 1


def test_outage_spools_then_replays_in_order(tmp_path):
    t = ScriptedTransport()
    sink, clock = mk(t, tmp_path, batch_lines=2, backoff_s=1.0, backoff_cap_s=8.0)
    t.down = True
    sink.write(Point("m", {}, {"v": i}, i) for i in range(5))
    res = sink.flush()
    assert sink.state == DOWN
    assert res.spooled_lines == 5 and t.accepted == []
    # Still down at the next retry: backoff doubles, capped.
    clock[0] += 1.0
    sink.flush()
    assert sink.state == DOWN and sink._delay == 2.0
    for _ in range(5):
        clock[0] += 100
        sink.flush()
    assert sink._delay == 8.0
    t.down = False
    clock[0] += 100
    res = sink.flush()
    assert sink.state == UP and res.spooled_lines == 0
    assert lines_of(t) == [f"m v={i}i {i}" for i in range(5)]


def test_down_sink_does_not_hammer_before_retry_at(tmp_path):
    t = ScriptedTransport()
    sink, clock = mk(t, tmp_path, batch_lines=1, max_attempts=2, backoff_s=5.0)
    t.down = True
    sink.write([Point("m", {}, {"v": 1}, 1)])
    calls = t.calls
    sink.write(Point("m", {}, {"v": i}, i) for i in range(10))
    assert t.calls == calls  # spooled without attempts while DOWN
    assert sink.spool.depth() == (11, 11)


def test_spool_survives_restart(tmp_path):
    t = ScriptedTransport()
    t.down = True
    sink, _ = mk(t, tmp_path)
    sink.write([Point("m", {"a": "b"}, {"v": 1.5}, 10)])
    sink.flush()
    sink.spool.close()
    t2 = ScriptedTransport()
    sink2, _ = mk(t2, tmp_path)
    assert sink2.spool.depth() == (1, 1)
    sink2.flush()
    assert lines_of(t2) == ["m,a=b v=1.5 10"]


def test_refused_batch_goes_to_rejected_not_retried(tmp_path):
    t = ScriptedTransport()
    t.refuse = True
    sink, _ = mk(t, tmp_path)
    sink.write([Point("m", {}, {"v": 1}, 1)])
    res = sink.flush()
    assert res.rejected_batches == 1 and sink.spool.rejected_count() == 1
    assert t.calls == 1 and sink.spool.depth() == (0, 0)


def test_bad_options():
    with pytest.raises(ValueError):
        InfluxSink(ScriptedTransport(), batch_lines=0)


# ---- real servers ------------------------------------------------------------------------

def test_v1_write_and_read_back(influxdb, tmp_path):
    influxdb.create_database("sinkt")
    sink = make_sink(url=influxdb.url, db="sinkt", spool_path=str(tmp_path / "s.db"),
                     batch_lines=50)
    pts = [Point("footfall", {"site": "demo", "entrance": "north gate"},
                 {"entries": i, "note": 'a "q"'}, 1700000000 + 60 * i) for i in range(120)]
    sink.write(pts)
    res = sink.close()
    assert res.spooled_lines == 0
    ans = influxdb.query('SELECT entries, note FROM footfall WHERE entrance = \'north gate\'', db="sinkt")
    rows = ans["results"][0]["series"][0]["values"]
    assert len(rows) == 120
    assert rows[5] == [1700000300, 5, 'a "q"']


def test_v1_precision_ms(influxdb, tmp_path):
    influxdb.create_database("sinkms")
    sink = InfluxSink(V1HttpTransport(influxdb.url, "sinkms"), precision="ms")
    sink.write([Point("m", {}, {"v": 1}, 1700000000.5)])
    sink.close()
    ans = influxdb.query("SELECT v FROM m", db="sinkms")
    # epoch=s in the query rounds down; the ms value is there with its half second.
    assert ans["results"][0]["series"][0]["values"] == [[1700000000, 1]]
    data = urllib.request.urlopen(
        f"{influxdb.url}/query?db=sinkms&epoch=ms&q=SELECT+v+FROM+m").read()
    assert b"1700000000500" in data


def test_v2_write_to_victoriametrics_and_read_back(victoriametrics, tmp_path):
    sink = InfluxSink(V2ClientTransport(victoriametrics.url, "mallsense", "mallsense", "unused"),
                      tmp_path / "s.db", batch_lines=40)
    sink.write(Point("occupancy", {"site": "demo", "floor": "L1"}, {"devices": i},
                     1700000000 + 10 * i) for i in range(100))
    assert sink.close().spooled_lines == 0
    deadline = time.monotonic() + 30
    rows = []
    while time.monotonic() < deadline:
        rows = victoriametrics.export('{__name__="occupancy_devices",floor="L1"}')
        if rows and len(rows[0]["values"]) == 100:
            break
        time.sleep(0.5)
    assert rows and rows[0]["metric"]["site"] == "demo"
    assert rows[0]["values"] == [float(i) for i in range(100)]
    assert rows[0]["timestamps"][0] == 1700000000 * 1000


def test_influxdb_outage_loses_nothing(fresh_influxdb, tmp_path):
    """Stop the real server for OUTAGE_S (env MALLSENSE_OUTAGE_S, 20 s by default) mid-stream."""
    outage_s = float(os.environ.get("MALLSENSE_OUTAGE_S", "20"))
    db = fresh_influxdb
    db.create_database("outage")
    sink = InfluxSink(V1HttpTransport(db.url, "outage", timeout_s=2.0), tmp_path / "spool.db",
                      batch_lines=100, backoff_s=0.2, backoff_cap_s=2.0)
    n = 0

    def write_some(k):
        nonlocal n
        sink.write(Point("outage_m", {"gw": f"g{i % 5}"}, {"v": i}, 1700000000 + i)
                   for i in range(n, n + k))
        n += k

    write_some(1000)
    sink.flush()
    db.stop()
    t_end = time.monotonic() + outage_s
    while time.monotonic() < t_end:
        write_some(250)
        res = sink.flush()
        time.sleep(0.5)
    assert sink.state == DOWN and res.spooled_lines > 0
    db.start()
    deadline = time.monotonic() + 60
    while sink.flush().spooled_lines and time.monotonic() < deadline:
        time.sleep(0.3)
    res = sink.close()
    assert res.spooled_lines == 0
    ans = db.query("SELECT count(v) FROM outage_m", db="outage")
    assert ans["results"][0]["series"][0]["values"][0][1] == n
    ans = db.query("SELECT sum(v) FROM outage_m", db="outage")
    assert ans["results"][0]["series"][0]["values"][0][1] == n * (n - 1) // 2
