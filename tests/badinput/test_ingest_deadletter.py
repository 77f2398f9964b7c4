"""A few hundred hostile payloads through the real broker into a running IngestService: every one
reaches the deadletter topic with its reason, and good traffic keeps flowing meanwhile."""
from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.wire import DeadLetter, Topic
from tests.badinput.corpus import expected, hand_crafted, hostile
from tests.faults.harness import (
    IngestThread,
    fresh_db,
    sim_batches,
    site,
    topic_of,
    wait_for,
)

pytestmark = pytest.mark.servers


def _subscribed(topic: str) -> bool:
    """Only what ingest subscribes to can reach it: sightings, status, pos of its site."""
    parts = topic.split("/")
    if parts[:3] != ["mallsense", "v1", site().id]:
        return False
    rest = parts[3:]
    return rest == ["pos"] or (len(rest) == 3 and rest[0] == "gw" and rest[2] in ("sightings", "status")
                               and rest[1] and all(c not in rest[1] for c in "+#\x00"))


def test_hostile_payloads_reach_deadletter_over_mqtt(tmp_path, mosquitto, influxdb):
    db = fresh_db(influxdb, "badinput_mqtt")
    corpus = [(t, p) for t, p in hand_crafted() + hostile(400, 7)
              if expected(t, p) is not None and len(p) < 256 * 1024 and _subscribed(t)]
    good = list(sim_batches())[: 2 * len(corpus)]
    got: list[DeadLetter] = []
    ready = threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="dl-watch", protocol=mqtt.MQTTv5)
    sub.on_connect = lambda c, u, f, rc, p: c.subscribe(str(Topic.deadletter(site().id)), qos=1)
    sub.on_subscribe = lambda *a: ready.set()
    sub.on_message = lambda c, u, m: got.append(DeadLetter.decode(m.payload))
    sub.connect("127.0.0.1", mosquitto.port)
    sub.loop_start()
    assert ready.wait(10)
    ing = IngestThread(mosquitto.port, influxdb.url, db, tmp_path / "sink.sqlite3",
                       client_id="badinput-ingest").start()
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="dl-producer", protocol=mqtt.MQTTv5)
    pub.max_inflight_messages_set(1000)
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    want: list[tuple[str, str]] = []
    try:
        gi = 0
        for i, (topic, payload) in enumerate(corpus):
            for _ in range(2):                        # real traffic keeps arriving
                if gi < len(good):
                    _t, b = good[gi]
                    gi += 1
                    pub.publish(topic_of(b), b.encode(), qos=1)
            info = pub.publish(topic, payload, qos=1)
            want.append((topic, expected(topic, payload)))
            info.wait_for_publish(10)
        assert wait_for(lambda: len(got) >= len(corpus), 60), (len(got), len(corpus))
        assert wait_for(lambda: ing.stats["batches"] >= gi, 60), ing.stats
    finally:
        pub.loop_stop()
        pub.disconnect()
        ing.close()
        sub.loop_stop()
        sub.disconnect()
    assert len(corpus) >= 300
    assert not ing.error
    assert sorted((d.topic, d.reason) for d in got) == sorted(want)
    assert ing.svc.counters["deadletters"] == len(corpus)
    fed = good[:gi]
    assert ing.stats["sightings"] == sum(len(b.s) for _t, b in fed)   # good traffic kept flowing
    assert gi == len(good) and ing.stats["windows"] >= int(fed[-1][0] - fed[0][0])  # all closed
