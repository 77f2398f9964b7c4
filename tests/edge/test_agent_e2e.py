"""The whole agent against a real mosquitto: broker outage, SIGKILL mid-stream, no raw address out.

Every batch must arrive exactly once after dedupe by (gw, seq). The outage length comes from
EDGE_OUTAGE_S (default 20 s; run `EDGE_OUTAGE_S=120 pytest tests/edge/test_agent_e2e.py -k outage`
by hand for the two-minute case).
"""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edge.aggregate import Aggregator
from edge.config import EdgeConfig
from edge.decode import FrameDecoder
from edge.pcap import LINKTYPE_BLE_LL_PHDR, LINKTYPE_RADIOTAP, read_capture
from edge.privacy import Pseudonymizer
from edge.publisher import MqttSettings
from edge.scanners.frames import FrameFeedScanner
from tests.edge.framegen import device_addr, ibeacon_ad, ll_phdr_frame, probe_frame, write_pcap
from tests.edge.mqtt_helpers import Collector

pytestmark = pytest.mark.servers

REPO = Path(__file__).resolve().parents[2]
SECRET = b"test-site-secret-0123456789abcdef"
OUTAGE_S = float(os.environ.get("EDGE_OUTAGE_S", "20"))
BEACON = "41424344-4546-4748-4940-414243444546"
WIFI_PHONE = bytes.fromhex("da5e00000007")  # locally administered: a randomized address


def _frames(t0: float, seconds: float, rate: float = 40.0):
    """BLE adverts of 8 phones + a registered iBeacon, and Wi-Fi probe bursts on 3 channels."""
    n = int(seconds * rate)
    for i in range(n):
        t = t0 + i / rate
        dev = i % 10
        if dev < 8:
            yield t, None, LINKTYPE_BLE_LL_PHDR, ll_phdr_frame(device_addr(dev), b"\x02\x01\x1a",
                                                                rssi=-50 - dev - i % 7)
        elif dev == 8:
            yield t, None, LINKTYPE_BLE_LL_PHDR, ll_phdr_frame(
                device_addr(99, random=False), ibeacon_ad(BEACON, 1, 2), rssi=-70)
        else:
            # one burst seen on channels 1, 6, 11: same sequence number, counted once
            for freq in (2412, 2437, 2462):
                yield t, None, LINKTYPE_RADIOTAP, probe_frame(WIFI_PHONE, i // 10, -66, freq)


def _config(tmp_path: Path, port: int, **kw) -> EdgeConfig:
    secret = tmp_path / "secret"
    secret.write_bytes(SECRET)
    return EdgeConfig(site="mall1", gw="gw-01", secret_file=str(secret),
                      state_dir=str(tmp_path / "state"), status_interval_s=2.0,
                      beacons=(f"{BEACON}:1:2",),
                      mqtt=MqttSettings("127.0.0.1", port, backoff_initial_s=0.2,
                                        backoff_cap_s=2.0), **kw)


def test_broker_outage_loses_nothing(tmp_path, fresh_mosquitto):
    from edge.agent import Agent

    broker = fresh_mosquitto
    col = Collector(broker.port, "e2e-outage")
    seconds = OUTAGE_S + 6
    t0 = time.time() + 0.3
    cfg = _config(tmp_path, broker.port, grace_s=0.3, drain_timeout_s=30.0)
    feed = lambda gw, sink, dec: FrameFeedScanner(gw, sink, _frames(t0, seconds), dec, speed=1.0)  # noqa: E731
    agent = Agent(cfg, extra_scanners=(feed,))
    codes = []
    th = threading.Thread(target=lambda: codes.append(asyncio.run(agent.run())))
    th.start()
    try:
        assert col.wait(lambda: len(col.batches()) >= 2, 15)
        broker.stop()
        down_at = time.monotonic()
        max_depth = 0
        while time.monotonic() - down_at < OUTAGE_S:  # the outage itself is the test
            max_depth = max(max_depth, agent.spool.depth)
            time.sleep(0.2)
        broker.start()
        th.join(seconds + 60)
        assert not th.is_alive() and codes == [0]
        made = agent.aggregator.stats.batches
        assert col.wait(lambda: len(col.batches()) == made, 30)
    finally:
        agent.request_stop()
        th.join(30)
        col.close()
    batches = col.batches()
    assert sorted(batches) == list(range(made))  # every batch, each seq once
    assert max_depth >= 0.6 * OUTAGE_S / cfg.window_s  # they really waited in the spool
    assert agent.publisher.connects >= 2
    # Every frame counted exactly once: BLE frames plus one per probe burst (3 channels -> 1).
    frames = list(_frames(t0, seconds))
    expected = sum(1 for f in frames if f[2] == LINKTYPE_BLE_LL_PHDR) + \
        sum(1 for f in frames if f[2] == LINKTYPE_RADIOTAP) // 3
    assert sum(s.n for b in batches.values() for s in b.s) == expected
    assert any(s.beacon == f"{BEACON}:1:2" and s.tx == -59 for b in batches.values() for s in b.s)
    assert all(s.rnd and s.fp for b in batches.values() for s in b.s if s.k == "wifi")


def _write_toml(path: Path, port: int, state: Path, secret: Path, files: list[Path],
                speed: float, window_s: float = 0.5) -> Path:
    files_toml = ", ".join(f'"{f}"' for f in files)
    path.write_text(f"""
[gateway]
site = "mall1"
id = "gw-01"
window_s = {window_s}
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
backoff_cap_s = 1.0
[replay]
files = [{files_toml}]
speed = {speed}
""")
    return path


def _expected(files: list[Path], window_s: float) -> dict[float, list]:
    """The batches an uninterrupted run produces, by window start (seq aside)."""
    dec = FrameDecoder("gw-01")
    agg = Aggregator("mall1", "gw-01", Pseudonymizer(SECRET), iter(range(10**6)).__next__,
                     window_s)
    for f in files:
        for rec in read_capture(f):
            obs = dec.decode(rec.t, rec.linktype, rec.data)
            if obs is not None:
                agg.add(obs)
    return {b.t: sorted(b.s, key=lambda s: (s.k, s.id)) for b in agg.flush_all()}


def _agent(toml: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "edge", "-vv", "--config", str(toml)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=open(log, "ab"))


def test_sigkill_mid_stream_then_restart(tmp_path, fresh_mosquitto):
    broker = fresh_mosquitto
    secret = tmp_path / "secret"
    secret.write_bytes(SECRET)
    pcap = write_pcap(tmp_path / "ble.pcap", LINKTYPE_BLE_LL_PHDR,
                      [(t, f) for t, _gw, _lt, f in _frames(1_700_000_000.0, 12.0, rate=100.0)
                       if _lt == LINKTYPE_BLE_LL_PHDR])
    toml = _write_toml(tmp_path / "edge.toml", broker.port, tmp_path / "state", secret, [pcap],
                       speed=4.0)
    col = Collector(broker.port, "e2e-kill")
    try:
        first = _agent(toml, tmp_path / "agent.log")
        assert col.wait(lambda: len(col.batches()) >= 6, 30)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        # The broker publishes the last will: the gateway is offline (retained).
        assert col.wait(lambda: col.status and col.status[-1]["state"] == "offline", 10)
        second = _agent(toml, tmp_path / "agent.log")
        assert second.wait(60) == 0
        expected = _expected([pcap], 0.5)
        assert col.wait(lambda: sum(1 for b in col.batches().values()) >=
                        len(expected) + 6, 20)
    finally:
        for p in ("first", "second"):
            proc = locals().get(p)
            if proc is not None and proc.poll() is None:
                proc.kill()
        col.close()
    batches = col.batches()
    seqs = sorted(batches)
    assert seqs == list(range(len(seqs)))  # no gap, no seq delivered twice with other content
    # The second run replays the recording from its start: its batches are the restart point.
    restart = next(s for s in seqs[1:] if batches[s].t < batches[s - 1].t)
    run1 = [batches[s] for s in seqs[:restart]]
    run2 = [batches[s] for s in seqs[restart:]]
    assert len(run1) >= 6
    assert {b.t: sorted(b.s, key=lambda s: (s.k, s.id)) for b in run2} == expected
    for b in run1:  # what the killed run sent is exactly what it should have been
        assert sorted(b.s, key=lambda s: (s.k, s.id)) == expected[b.t]
    # Heartbeats: online with frame rates and counters while running (retained, QoS 1).
    beats = [s for s in col.status if s["state"] == "online" and s["uptime_s"] > 0]
    assert beats and any(s["frames_per_s"].get("ble", 0) > 0 for s in beats)
    assert all(s["version"] and s["spool_dropped"] == 0 for s in beats)


def test_no_raw_address_leaves_the_gateway(tmp_path, fresh_mosquitto, real_data):
    # Real recordings (README: probe-fryza-brno position_1, MIT; ble-adv-mitll Ubertooth 0°,
    # CC BY 4.0) replayed through the agent process, first with the broker down (the spool holds
    # every batch), then up (the spool drains and the recordings replay again).
    broker = fresh_mosquitto
    files = [real_data / "probe-fryza-brno/position_1/sc6-61_2024-03-16_anonymized.pcap",
             real_data / "ble-adv-mitll/5-May_Conference_Room/Ubertooth/ubertooth_capture_0.pcapng"]
    secret = tmp_path / "secret"
    secret.write_bytes(SECRET)
    state = tmp_path / "state"
    toml = _write_toml(tmp_path / "edge.toml", broker.port, state, secret, files, speed=0.0,
                       window_s=1.0)
    text = toml.read_text().replace("drain_timeout_s = 20.0", "drain_timeout_s = 0.5")
    toml.write_text(text)
    log = tmp_path / "agent.log"
    broker.stop()
    assert _agent(toml, log).wait(60) == 0
    spool_bytes = b"".join(p.read_bytes() for p in state.iterdir())
    assert b"mallsense/v1/mall1/gw/gw-01/sightings" in spool_bytes  # batches are in there
    broker.start()
    col = Collector(broker.port, "e2e-privacy")
    try:
        toml.write_text(text.replace("drain_timeout_s = 0.5", "drain_timeout_s = 20.0"))
        assert _agent(toml, log).wait(60) == 0
        assert col.wait(lambda: len(col.batches()) > 100, 20)
    finally:
        col.close()
    addrs = set()
    dec = FrameDecoder("gw-01")
    for f in files:
        for rec in read_capture(f):
            obs = dec.decode(rec.t, rec.linktype, rec.data)
            if obs is not None:
                addrs.add(obs.addr)
    assert len(addrs) > 50
    payloads = b"\n".join(col.raw)
    logs = log.read_bytes()
    assert b"DEBUG" in logs and b"INFO" in logs  # the log was verbose, and is still clean
    for where, blob in (("mqtt", payloads), ("log", logs), ("spool", spool_bytes)):
        low = blob.lower()
        for a in addrs:
            for form in (a.hex(":"), a.hex(), a.hex("-"), a[::-1].hex(":"), a[::-1].hex()):
                assert form.encode() not in low, (where, form)
            if where == "spool":
                assert a not in blob and a[::-1] not in blob, (where, a.hex(":"))
