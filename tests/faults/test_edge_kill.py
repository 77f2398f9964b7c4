"""An edge agent (`mallsense edge`) killed with SIGKILL while the broker is down, restarted after
the broker is back: the SQLite spool replays what the killed agent had stored, the seq counter
continues without a gap, ingest counts every stored batch exactly once.

What a SIGKILL may lose is only what was never stored: the window being aggregated in memory
(a live radio would not have heard anything while the agent was dead either)."""
from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from edge.pcap import LINKTYPE_BLE_LL_PHDR
from tests.edge.framegen import device_addr, ll_phdr_frame, write_pcap
from tests.edge.mqtt_helpers import Collector
from tests.faults.harness import REPO, SECRET, IngestThread, fresh_db, site, wait_for

pytestmark = pytest.mark.servers


def _pcap(path: Path, t0: float, seconds: float, rate: float = 60.0) -> Path:
    frames = []
    for i in range(int(seconds * rate)):
        dev = i % 12
        frames.append((t0 + i / rate, ll_phdr_frame(device_addr(dev), b"\x02\x01\x1a",
                                                    rssi=-50 - dev - i % 9)))
    return write_pcap(path, LINKTYPE_BLE_LL_PHDR, frames)


def _toml(path: Path, port: int, state: Path, secret: Path, pcap: Path, speed: float) -> Path:
    path.write_text(f"""
[gateway]
site = "{site().id}"
id = "{site().gateways[0].id}"
window_s = 1.0
state_dir = "{state}"
status_interval_s = 1.0
drain_timeout_s = 20.0
grace_s = 0.3
[privacy]
secret_file = "{secret}"
[mqtt]
host = "127.0.0.1"
port = {port}
backoff_initial_s = 0.2
backoff_cap_s = 0.5
[replay]
files = ["{pcap}"]
speed = {speed}
""")
    return path


def _agent(cmd_toml: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "edge", "-v", "--config", str(cmd_toml)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=open(log, "ab"),
                            start_new_session=True)


def _spooled(db: Path) -> list[int]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [r[0] for r in con.execute("SELECT seq FROM batches ORDER BY seq")]
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()


def test_edge_sigkill_spool_replays_exactly_once(tmp_path, fresh_mosquitto, influxdb):
    broker = fresh_mosquitto
    gw = site().gateways[0].id
    db = fresh_db(influxdb, "fault_edge_kill")
    secret = tmp_path / "secret"
    secret.write_bytes(SECRET)
    state = tmp_path / "state"
    t0 = 1_700_038_800.0
    pcap_a = _pcap(tmp_path / "a.pcap", t0, 40.0)
    pcap_b = _pcap(tmp_path / "b.pcap", t0 + 60.0, 10.0)
    log = tmp_path / "agent.log"
    spool_db = state / f"spool-{gw}.sqlite3"
    col = Collector(broker.port, "fault-edge-collector")
    ing = IngestThread(broker.port, influxdb.url, db, tmp_path / "sink.sqlite3",
                       client_id="fault-edge-ingest").start()
    first = second = None
    try:
        first = _agent(_toml(tmp_path / "a.toml", broker.port, state, secret, pcap_a, 2.0), log)
        assert wait_for(lambda: len(col.batches()) >= 4, 30), log.read_text()[-2000:]
        broker.stop()
        assert wait_for(lambda: len(_spooled(spool_db)) >= 4, 30), "nothing spooled"
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        pending = _spooled(spool_db)          # stored, never acknowledged: must not be lost
        sent_before = set(col.batches())
        broker.start()
        second = _agent(_toml(tmp_path / "b.toml", broker.port, state, secret, pcap_b, 0.0), log)
        assert second.wait(90) == 0, log.read_text()[-3000:]
        final = set(pending) | sent_before
        assert wait_for(lambda: final <= set(col.batches()), 30)
        top = max(col.batches())
        assert wait_for(lambda: ing.stats["batches"] - ing.stats["duplicates"] >= top + 1, 60), \
            ing.stats
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.kill()
        ing.close()
        col.close()
    assert pending, "the killed agent had nothing in its spool"
    batches = col.batches()                   # asserts redeliveries are byte-identical
    seqs = sorted(batches)
    assert seqs == list(range(len(seqs)))     # seq continues across the kill: no gap, no reuse
    assert set(pending) <= set(seqs)
    assert min(b.t for s, b in batches.items() if s > max(pending)) >= t0 + 60.0 - 1
    st = ing.stats
    assert st["batches"] - st["duplicates"] == len(seqs)
    assert st["sightings"] == sum(len(b.s) for b in batches.values())
    assert st["deadletters"] == 0
