"""The ingest service against the real broker and the real InfluxDB 1.x."""
from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt
import pytest

from gateway.site import load_site, sample_site_path
from gateway.wire import DeadLetter, Event, PosTransaction, Status, Topic

from analytics.ingest import IngestService
from analytics.pipeline import Pipeline
from analytics.sink import make_sink
from tests.analytics.synth import T0, Walker, batches, line, stay

pytestmark = pytest.mark.servers


@pytest.fixture(scope="module")
def site():
    return load_site(sample_site_path())


def shopper():
    into = (line("L1", (60, -7), (60, 30), 1.2) + line("L1", (60, 30), (96, 30), 1.2)
            + line("L1", (96, 30), (110, 25), 1.2))
    return Walker([(0, "ble-a")], "ble", into + stay("L1", (110, 25), 200) + into[::-1]
                  + stay("L1", (60, -7), 10))


class Listener:
    def __init__(self, url_host, port, topic):
        self.got: list[tuple[str, bytes]] = []
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.c.on_message = lambda c, u, m: self.got.append((m.topic, m.payload))
        subscribed = threading.Event()
        self.c.on_subscribe = lambda *_: subscribed.set()
        self.c.connect(url_host, port)
        self.c.subscribe(topic, qos=1)
        self.c.loop_start()
        assert subscribed.wait(10), "listener never subscribed"

    def publish_all(self, msgs):
        infos = [self.c.publish(t, p, qos=1) for t, p in msgs]
        for i in infos:
            i.wait_for_publish(10)

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


def wait_for(cond, timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


def start(svc):
    stop = threading.Event()
    th = threading.Thread(target=svc.run, args=(stop,), daemon=True)
    th.start()
    return stop, th


def test_ingest_end_to_end(site, mosquitto, influxdb, tmp_path):
    influxdb.create_database("ingest_e2e")
    sink = make_sink(url=influxdb.url, db="ingest_e2e", spool_path=str(tmp_path / "spool.db"),
                     precision="ns", batch_lines=500)
    svc = IngestService(Pipeline(site), sink, mosquitto.url, client_id="ingest-e2e",
                        share_group="ingest", flush_s=0.5)
    listener = Listener(mosquitto.host, mosquitto.port, f"mallsense/v1/{site.id}/#")
    stop, th = start(svc)
    assert wait_for(lambda: svc.source.subscribed, 20)
    time.sleep(0.5)
    w = shopper()
    feed = [(t, b) for t, b in batches(site, [w], len(w.path) + 5) if b.s]
    msgs = [(str(Topic.sightings(site.id, b.gw)), b.encode()) for _, b in feed]
    msgs += msgs[:50]                                     # redeliveries
    msgs.insert(10, (str(Topic.sightings(site.id, site.gateways[0].id)), b"{not json"))
    msgs.insert(20, (str(Topic.status(site.id, site.gateways[3].id)),
                     Status(site.id, site.gateways[3].id, T0 + 20, "online", "1.2.3", 120.0,
                            {"ble": 40.0, "wifi": 3.5}, 0, 7, 0, 51.5).encode()))
    msgs.insert(30, (str(Topic.pos(site.id)),
                     PosTransaction(site.id, T0 + 150, "l1-anchor-e", 42.0, "EUR", "tx-9").encode()))
    listener.publish_all(msgs)
    assert wait_for(lambda: svc.counters["messages"] >= len(msgs), 60), svc.counters
    stop.set()
    th.join(30)
    assert not th.is_alive()
    assert svc.pipeline.stats["duplicates"] == 50
    # Dead letter published with its reason; events published on events/{type}.
    dls = [DeadLetter.decode(p) for t, p in listener.got if t.endswith("/deadletter")]
    assert [d.reason for d in dls] == ["bad_json"] and dls[0].payload == b"{not json"
    evs = [Event.decode(p) for t, p in listener.got if "/events/" in t]
    kinds = [e.type for e in evs]
    assert kinds.count("entry") == 1 and "purchase" in kinds and "zone_enter" in kinds
    assert {t.rsplit("/", 1)[1] for t, p in listener.got if "/events/" in t} == set(kinds)
    listener.close()
    q = lambda s: influxdb.query(s, db="ingest_e2e")["results"][0].get("series", [])
    ff = q("SELECT sum(entries) FROM footfall WHERE entrance = 'l1-entrance-s'")
    assert ff[0]["values"][0][1] == 1
    gs = q("SELECT online, spool_depth, cpu_temp_c FROM gateway_status")
    assert gs[0]["values"][0][1:] == [1, 7, 51.5]
    je = q("SELECT count(visitor) FROM journey_event WHERE \"type\" = 'purchase'")
    assert je[0]["values"][0][1] == 1
    sv = q("SELECT dwell_s, purchase FROM store_visit WHERE store = 'l1-anchor-e'")
    assert sv and sv[0]["values"][0][2] == 1 and 150 < sv[0]["values"][0][1] < 300
    assert q("SELECT count(visitors) FROM floor_occupancy")[0]["values"][0][1] > 10


def test_persistent_session_gets_what_was_published_while_down(site, mosquitto, influxdb, tmp_path):
    influxdb.create_database("ingest_ps")

    def service():
        sink = make_sink(url=influxdb.url, db="ingest_ps", spool_path=str(tmp_path / "s.db"))
        return IngestService(Pipeline(site), sink, mosquitto.url, client_id="ingest-ps", flush_s=0.3)

    svc = service()
    stop, th = start(svc)
    assert wait_for(lambda: svc.source.subscribed, 20)
    time.sleep(0.3)
    stop.set()
    th.join(30)
    w = Walker([(0, "ble-z")], "ble", stay("L1", (40, 30), 60))
    feed = [b for _, b in batches(site, [w], 60) if b.s]
    pub = Listener(mosquitto.host, mosquitto.port, "unused/none")
    pub.publish_all([(str(Topic.sightings(site.id, b.gw)), b.encode()) for b in feed])
    pub.close()
    svc2 = service()
    stop, th = start(svc2)
    assert wait_for(lambda: svc2.counters["messages"] >= len(feed), 30), svc2.counters
    assert svc2.source.session_present
    stop.set()
    th.join(30)
    assert svc2.pipeline.stats["sightings"] == sum(len(b.s) for b in feed)


def _drive(svc, until, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        svc.source.poll(0.05)
        svc.flush()
        if until():
            return True
    return until()


def test_batches_of_open_windows_are_acknowledged_only_once_closed(site, mosquitto, influxdb,
                                                                  tmp_path):
    """A crash loses no window: what is still open is unacknowledged, so it is redelivered to
    the next process; the acknowledged part is what the durable counters show."""
    import socket
    import struct

    import uuid

    influxdb.create_database("ingest_hold")
    client_id = f"ingest-hold-{uuid.uuid4().hex[:8]}"     # a session of its own

    def service():
        sink = make_sink(url=influxdb.url, db="ingest_hold", spool_path=str(tmp_path / "h.db"))
        return IngestService(Pipeline(site), sink, mosquitto.url, client_id=client_id,
                             flush_s=0.1, idle_close_s=None)

    svc = service()
    assert _drive(svc, lambda: svc.source.subscribed)
    w = Walker([(0, "ble-h")], "ble", stay("L1", (40, 30), 20))
    feed = [b for _, b in batches(site, [w], 20) if b.s]
    total = sum(len(b.s) for b in feed)
    pub = Listener(mosquitto.host, mosquitto.port, "unused/none")
    pub.publish_all([(str(Topic.sightings(site.id, b.gw)), b.encode()) for b in feed])
    pub.close()
    assert _drive(svc, lambda: svc.pipeline.stats["sightings"] >= total)
    svc.flush()
    # The last lateness_s of windows is open: their batches wait, everything before is acked.
    # (Counted in batches: a retained status message from another test may arrive too.)
    held = len(feed) - svc.committed["batches"]
    assert 0 < held < len(feed) and svc.pipeline.windows.has_open
    assert svc.source.pending >= held
    assert svc.committed["sightings"] < svc.pipeline.stats["sightings"] == total
    # Power cut: no DISCONNECT, no more acks.
    sock = svc.source.client.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    svc.sink.close()
    svc2 = service()
    assert _drive(svc2, lambda: svc2.pipeline.stats["batches"] >= held)
    assert svc2.source.session_present
    svc2.close()
    assert svc2.pipeline.stats["batches"] == held         # exactly the unacknowledged ones
    assert svc2.pipeline.stats["duplicates"] == 0
    assert svc.committed["sightings"] + svc2.committed["sightings"] == total
    assert svc.committed["batches"] + svc2.committed["batches"] == len(feed)
