"""A subscriber with a persistent session that collects what the edge publishes."""
from __future__ import annotations

import json
import threading
import time
from collections import defaultdict

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.wire import SightingsBatch


class Collector:
    """Subscribes QoS 1 to everything under mallsense/v1/ with clean_start False and a session
    expiry, so nothing published while it reconnects (broker restarts) is lost to it."""

    def __init__(self, port: int, client_id: str = "edge-test-collector") -> None:
        self.lock = threading.Lock()
        self.sightings: dict[tuple[str, int], list[bytes]] = defaultdict(list)
        self.status: list[dict] = []
        self.raw: list[bytes] = []
        c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id,
                        protocol=mqtt.MQTTv5)
        c.reconnect_delay_set(min_delay=0.2, max_delay=1)
        self.subscribed = threading.Event()
        c.on_connect = lambda cl, u, f, rc, p: cl.subscribe("mallsense/v1/#", qos=1)
        c.on_subscribe = lambda *_: self.subscribed.set()
        c.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        c.connect("127.0.0.1", port, clean_start=False, properties=props)
        c.loop_start()
        self.client = c
        # SUBACK, not CONNACK: what is published before it never reaches a fresh session.
        assert self.wait(self.subscribed.is_set, 10), "collector never subscribed"

    def _on_message(self, client, userdata, msg) -> None:
        with self.lock:
            self.raw.append(bytes(msg.payload))
            if msg.topic.endswith("/sightings"):
                b = SightingsBatch.decode(msg.payload)
                self.sightings[(b.gw, b.seq)].append(bytes(msg.payload))
            elif msg.topic.endswith("/status"):
                self.status.append(json.loads(msg.payload))

    def batches(self) -> dict[int, SightingsBatch]:
        """One batch per (gw, seq) after dedupe; asserts redeliveries are byte-identical."""
        with self.lock:
            out = {}
            for (gw, seq), payloads in self.sightings.items():
                assert len(set(payloads)) == 1, f"seq {seq} delivered with different payloads"
                out[seq] = SightingsBatch.decode(payloads[0])
            return out

    @staticmethod
    def wait(pred, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return True
            time.sleep(0.05)
        return pred()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
