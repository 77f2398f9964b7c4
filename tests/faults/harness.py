"""Shared machinery of the fault, bad-input and load suites (real broker, real InfluxDB).

- ``site()`` / ``sim_batches()``: a known set of window-level batches from firmware_sim
  (seeded, so every run and the clean reference see the same bytes).
- ``clean_snapshot()``: what a fault-free ingest writes for those batches, computed in-process
  by the same ``Pipeline`` and the same point conversion the service uses, reduced the way
  InfluxDB stores it: one value per (measurement, tag set, timestamp), the last write wins.
- ``influx_snapshot()``: the same reduction read back from a real InfluxDB (all measurements).
- ``SpoolFeeder``: the gateways' side through the edge's own durability path (``edge.spool`` +
  ``edge.publisher``): a batch leaves the spool only on PUBACK, so broker restarts lose nothing.
- ``IngestThread``: ``analytics.ingest.IngestService`` on a thread; ``IngestProcess``: the
  ``mallsense ingest`` command as a subprocess (SIGKILL-able).

``MALLSENSE_FAULT_SITE`` may name another site TOML (default: the packaged sample mall).
"""
from __future__ import annotations

import functools
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

from gateway.site import load_site, sample_site_path
from gateway.wire import SightingsBatch, Topic

REPO = Path(__file__).resolve().parents[2]
SECRET = b"fault-suite-site-secret-0123456789"
SKIP_MEASUREMENTS = {"ingest", "gateway_health", "gateway_status"}  # service counters, heartbeats


def site_path() -> Path:
    return Path(os.environ.get("MALLSENSE_FAULT_SITE") or sample_site_path())


@functools.cache
def site():
    return load_site(site_path())


@functools.cache
def sim_batches(seconds: int = 60, concurrent: float = 60.0, seed: int = 11) -> tuple:
    """((t, SightingsBatch), ...) in time order: every gateway's batch of every 1 s window."""
    from firmware_sim import SimConfig, simulate

    res = simulate(site(), SimConfig(seed=seed, duration_s=seconds, level="windows",
                                     concurrent=concurrent))
    return tuple(res.batches(SECRET))


def topic_of(b: SightingsBatch) -> str:
    return str(Topic.sightings(b.site, b.gw))


def n_sightings(batches) -> int:
    return sum(len(b.s) for _t, b in batches)


# -- the clean reference --------------------------------------------------------------------
def _key(measurement: str, tags: dict, t_ns: int):
    return (measurement, tuple(sorted((k, str(v)) for k, v in tags.items()
                                      if v is not None and v != "")), t_ns)


def points_snapshot(points) -> dict:
    """{(measurement, tags, t_ns): fields} as InfluxDB keeps them (last write wins)."""
    from analytics.sink.lineprotocol import format_field, format_time

    snap: dict = {}
    for p in points:
        if p.measurement in SKIP_MEASUREMENTS:
            continue
        k = _key(p.measurement, dict(p.tags), int(format_time(p.t, "ns")))
        fields = snap.setdefault(k, {})
        for name, v in p.fields.items():
            if format_field(v) is not None:
                fields[name] = v.item() if hasattr(v, "item") else v
    return snap


def clean_run(batches, order=None, config=None):
    """(pipeline, snapshot, outputs) of a fault-free in-process run over the batches."""
    from analytics.ingest import event_point
    from analytics.pipeline import Pipeline

    pl = Pipeline(site(), config)
    points = []
    seq = batches if order is None else [batches[i] for i in order]
    for t, b in seq:
        out = pl.process_payload(topic_of(b), b.encode(), t + 1.5)
        points += out.points + [event_point(e) for e in out.events]
    out = pl.flush()
    points += out.points + [event_point(e) for e in out.events]
    return pl, points_snapshot(points)


def query(url: str, db: str, q: str) -> dict:
    data = urllib.parse.urlencode({"q": q, "db": db, "epoch": "ns"}).encode()
    with urllib.request.urlopen(f"{url}/query", data=data, timeout=60) as r:
        return json.loads(r.read())


def influx_snapshot(url: str, db: str) -> dict:
    """Every point of every measurement of ``db`` as {(measurement, tags, t_ns): fields}."""
    res = query(url, db, "SHOW MEASUREMENTS")
    names = [row[0] for s in res["results"][0].get("series", []) for row in s["values"]]
    snap: dict = {}
    for m in names:
        if m in SKIP_MEASUREMENTS:
            continue
        tag_keys = set()
        tk = query(url, db, f'SHOW TAG KEYS FROM "{m}"')
        for s in tk["results"][0].get("series", []):
            tag_keys |= {row[0] for row in s["values"]}
        r = query(url, db, f'SELECT * FROM "{m}"')
        for s in r["results"][0].get("series", []):
            cols = s["columns"]
            for row in s["values"]:
                rec = dict(zip(cols, row))
                t = int(rec.pop("time"))
                tags = {k: rec.pop(k) for k in list(rec) if k in tag_keys}
                fields = {k: v for k, v in rec.items() if v is not None}
                snap[_key(m, tags, t)] = fields
    return snap


def diff_snapshots(got: dict, want: dict, rel: float = 1e-9) -> list[str]:
    """Human-readable differences (empty when equal); floats compared relatively."""
    out = []
    for k in sorted(set(want) - set(got), key=repr)[:20]:
        out.append(f"missing {k}: {want[k]}")
    for k in sorted(set(got) - set(want), key=repr)[:20]:
        out.append(f"extra {k}: {got[k]}")
    for k in sorted(set(got) & set(want), key=repr):
        a, b = got[k], want[k]
        if a.keys() != b.keys() or any(not _same(a[f], b[f], rel) for f in b):
            out.append(f"differs {k}: influx {a} vs clean {b}")
            if len(out) > 40:
                break
    return out


def _same(a, b, rel) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or isinstance(a, str) or isinstance(b, str):
        return a == b
    return math.isclose(float(a), float(b), rel_tol=rel, abs_tol=1e-9)


def summary(snap: dict) -> dict:
    """Points per measurement (for messages and the operations doc)."""
    out: dict = {}
    for (m, _tags, _t) in snap:
        out[m] = out.get(m, 0) + 1
    return out


# -- waiting ------------------------------------------------------------------------------
def wait_for(pred, timeout: float, every: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(every)
    return bool(pred())


# -- the gateways' side: edge spool + publisher ---------------------------------------------
class SpoolFeeder:
    """Stores the batches in an edge spool at ``rate`` batches/s (0 = all at once) and lets
    the edge publisher drain it to the broker. The spool key is the feed position (one spool
    carries every gateway); the payloads keep their own per-gateway seq."""

    def __init__(self, port: int, folder: Path, batches, rate: float = 0.0,
                 client_id: str = "fault-feeder", **mqtt_kw) -> None:
        from edge.publisher import MqttSettings, Publisher
        from edge.spool import Spool

        self.batches = batches
        self.rate = rate
        self.spool = Spool(Path(folder) / "feeder-spool.sqlite3", 512 * 1024 * 1024)
        kw = {"backoff_initial_s": 0.1, "backoff_cap_s": 0.5, "max_inflight": 100}
        kw.update(mqtt_kw)
        settings = MqttSettings("127.0.0.1", port, client_id=client_id, **kw)
        self.publisher = Publisher(settings, site().id, "feeder", self.spool, "fault-suite")
        self.stored = 0
        self.paused = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="spool-feeder", daemon=True)

    def start(self) -> SpoolFeeder:
        self.publisher.start()
        self._thread.start()
        return self

    def _run(self) -> None:
        t0 = time.monotonic()
        for i, (_t, b) in enumerate(self.batches):
            if self._stop.is_set():
                return
            while self.paused.is_set() and not self._stop.is_set():
                time.sleep(0.02)
            if self.rate > 0:
                due = t0 + i / self.rate
                while time.monotonic() < due and not self._stop.is_set():
                    time.sleep(max(0.0, min(0.02, due - time.monotonic())))  # due may pass meanwhile
            self.spool.put(i, topic_of(b), b.encode())
            self.stored = i + 1

    def done(self) -> bool:
        return self.stored == len(self.batches) and self.spool.depth == 0

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.publisher.stop(drain_timeout_s=0.5)
        self.spool.close()


# -- ingest ---------------------------------------------------------------------------------
class IngestThread:
    """The real IngestService (MQTT 5 persistent session -> Pipeline -> InfluxDB) on a thread."""

    def __init__(self, mqtt_port: int, influx_url: str, db: str, spool_path: Path, *,
                 client_id: str = "fault-ingest", flush_s: float = 0.5, config=None) -> None:
        from analytics.ingest import IngestService
        from analytics.pipeline import Pipeline
        from analytics.sink import make_sink

        self.pipeline = Pipeline(site(), config)
        self.sink = make_sink(url=influx_url, db=db, spool_path=str(spool_path),
                              precision="ns", backoff_s=0.1, backoff_cap_s=0.5, max_attempts=1)
        self.svc = IngestService(self.pipeline, self.sink, f"mqtt://127.0.0.1:{mqtt_port}",
                                 client_id=client_id, flush_s=flush_s)
        self.stop = threading.Event()
        self.error: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, name="ingest", daemon=True)

    def _run(self) -> None:
        try:
            self.svc.run(self.stop)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error.append(exc)

    def start(self) -> IngestThread:
        self._thread.start()
        # Subscribed, not just connected: a fresh session hears nothing published before SUBACK.
        assert wait_for(lambda: self.svc.source.subscribed or self.error, 20), \
            "ingest never subscribed"
        return self

    @property
    def stats(self) -> dict:
        return dict(self.pipeline.stats)

    def close(self, timeout: float = 60.0) -> None:
        self.stop.set()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "ingest did not stop"


def mallsense_cmd() -> list[str]:
    exe = shutil.which("mallsense") or str(Path(sys.executable).parent / "mallsense")
    return [exe]


class IngestProcess:
    """`mallsense ingest` as a subprocess: the deployable, killable with SIGKILL."""

    def __init__(self, mqtt_port: int, influx_url: str, db: str, spool_path: Path, log: Path,
                 *, client_id: str = "fault-ingest-proc", flush_s: float = 0.5,
                 extra: tuple[str, ...] = ()) -> None:
        self.cmd = mallsense_cmd() + [
            "-v", "ingest", "--site", str(site_path()), "--mqtt", f"mqtt://127.0.0.1:{mqtt_port}",
            "--client-id", client_id, "--influx", influx_url, "--db", db,
            "--spool", str(spool_path), "--flush-s", str(flush_s), *extra]
        self.log = log
        self.proc: subprocess.Popen | None = None

    def start(self) -> IngestProcess:
        with open(self.log, "ab") as logf:   # the child keeps its own descriptor
            self.proc = subprocess.Popen(self.cmd, cwd=REPO, stdout=subprocess.DEVNULL,
                                         stderr=logf, start_new_session=True)
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def cleanup(self) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait(10)

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log.read_bytes()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""


def ingest_counters(url: str, db: str) -> list[tuple[int, dict]]:
    """The service's own 'ingest' stats points, (t_ns, fields) in time order."""
    r = query(url, db, 'SELECT * FROM "ingest"')
    out = []
    for s in r["results"][0].get("series", []):
        cols = s["columns"]
        for row in s["values"]:
            rec = dict(zip(cols, row))
            out.append((int(rec.pop("time")), rec))
    return sorted(out, key=lambda x: x[0])


@functools.cache
def clean_reference(seconds: int = 60, concurrent: float = 60.0, seed: int = 11):
    """(stats, snapshot) of the fault-free run over ``sim_batches(...)`` (cached per process)."""
    pl, snap = clean_run(sim_batches(seconds, concurrent, seed))
    return dict(pl.stats), snap


def fresh_db(influx, name: str) -> str:
    influx.query(f'DROP DATABASE "{name}"')
    influx.create_database(name)
    return name


def sink_spool_depth(path: Path) -> tuple[int, int]:
    """(batches, lines) left in an ingest sink's spool file (read after the service stopped)."""
    from analytics.sink import Spool

    sp = Spool(path)
    try:
        return sp.depth()
    finally:
        sp.close()


def counts(snap: dict) -> dict:
    """Order-independent totals: per (measurement, field) the sum of every numeric field, and
    journey events per (type, entrance/zone). Visitor ids (assigned in arrival order) and
    timestamps derived from them are left out: they name, they do not count."""
    out: dict = {}
    for (m, tags, _t), fields in snap.items():
        if m == "journey_event":
            k = ("journey_event",) + tuple((a, b) for a, b in tags if a != "site")
            out[k] = out.get(k, 0) + 1
            continue
        for f, v in fields.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            out[(m, f)] = out.get((m, f), 0.0) + float(v)
    return out


def diff_counts(got: dict, want: dict, rel: float = 1e-6) -> list[str]:
    out = []
    for k in sorted(set(got) | set(want), key=repr):
        a, b = got.get(k, 0.0), want.get(k, 0.0)
        if not math.isclose(a, b, rel_tol=rel, abs_tol=1e-6):
            out.append(f"{k}: got {a} want {b}")
    return out
