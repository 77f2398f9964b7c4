"""`mallsense demo` stopped half way (SIGTERM, as a service manager or `kill` does): it exits
with 130 and leaves nothing running that it started - edge replay workers, ingest, mosquitto,
InfluxDB."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import psutil
import pytest

pytestmark = pytest.mark.servers


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def test_sigterm_during_replay_stops_everything_started(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mallsense.cli", "demo", "--out", str(out), "--duration", "20m",
         "--shoppers-per-hour", "60", "--budget-minutes", "0", "--edge-processes", "2",
         "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    log = out / "logs" / "demo.log"
    started: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 240
        # Replay under way: the agents' publishers are connected to the demo's broker.
        while time.monotonic() < deadline and proc.poll() is None:
            if log.exists() and log.read_text().count("edge.publisher: connected") >= 10:
                break
            time.sleep(0.5)
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        started = _descendants(proc.pid)
        names = " ".join(" ".join(p.cmdline()) for p in started)
        assert "mosquitto" in names and "influxd" in names and "demo_ingest" in names, names
        assert names.count("multiprocessing.spawn") >= 2, names   # the edge replay workers
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert b"interrupted" in err
    _gone, alive = psutil.wait_procs(started, timeout=10)
    assert not alive, [" ".join(p.cmdline()) for p in alive]
