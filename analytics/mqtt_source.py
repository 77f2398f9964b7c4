"""MQTT 5 input for ingest: a persistent session at QoS 1, with an explicit reconnect state machine.

- ``clean_start=False`` and a session expiry interval: while ingest restarts, the broker queues
  QoS 1 messages for our client id, so nothing published meanwhile is lost.
- Manual acknowledgement: a message is acknowledged only after the caller says its effects are
  durable, so a crash means redelivery, and redelivery is harmless (dedupe by (gateway, seq)).
  The ``on_message`` callback returns a *hold* per message (opaque here); ``take_ready(ready)``
  hands out the longest prefix of received messages whose holds are ``ready`` (for ingest: the
  window the batch fed is closed), and ``ack(taken)`` acknowledges them once the caller flushed.
  PUBACKs go out in the order the PUBLISH packets arrived, as MQTT requires of a QoS 1 receiver
  ([MQTT-4.6.0-2]); paho's ``ack(mid, qos)`` sends what it is told, the order is ours. Messages
  of an earlier connection are handed out too (their effects count) but not acknowledged: the
  broker redelivers them on the new connection and dedupe drops them.
- CONNECT asks for a Receive Maximum of 65535, so the broker keeps sending while up to a few
  seconds of messages wait for their windows to close.
- Topic filters may be shared subscriptions (``$share/ingest/...``) so several ingest workers
  split one site's load.
- The client runs in the caller's thread (``poll()`` drives paho's ``loop()``), so callbacks
  and the pipeline never race.

States: DISCONNECTED -> CONNECTING -> CONNECTED; on loss -> BACKOFF (capped exponential) ->
CONNECTING. The first failure of a cycle logs at WARNING, repeats at DEBUG.
"""
from __future__ import annotations

import logging
import urllib.parse
from dataclasses import dataclass
from typing import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from analytics.errors import ConfigError

log = logging.getLogger(__name__)

DISCONNECTED, CONNECTING, CONNECTED, BACKOFF = "disconnected", "connecting", "connected", "backoff"


@dataclass(frozen=True)
class BrokerUrl:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> "BrokerUrl":
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ConfigError("--mqtt", f"scheme must be mqtt:// or mqtts://, got {url!r}")
        if not u.hostname:
            raise ConfigError("--mqtt", f"no host in {url!r}")
        tls = u.scheme in ("mqtts", "ssl")
        return cls(u.hostname, u.port or (8883 if tls else 1883), tls,
                   urllib.parse.unquote(u.username) if u.username else None,
                   urllib.parse.unquote(u.password) if u.password else None)


class MqttSource:
    def __init__(self, url: str, client_id: str, filters: list[str], on_message: Callable,
                 *, session_expiry_s: int = 3600, keepalive_s: int = 30,
                 backoff_s: float = 0.5, backoff_cap_s: float = 30.0, ca_file: str | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        import time

        self.url = BrokerUrl.parse(url)
        self.filters = filters
        self.session_expiry_s = session_expiry_s
        self.keepalive_s = keepalive_s
        self.backoff_s = backoff_s
        self.backoff_cap_s = backoff_cap_s
        self._clock = clock or time.monotonic
        self._on_message = on_message
        self.state = DISCONNECTED
        self._delay = backoff_s
        self._retry_at = 0.0
        self._failures = 0
        # (mid, qos, hold, connection number) in arrival order
        self._pending_acks: list[tuple[int, int, object, int]] = []
        # mid of this connection's SUBSCRIBE until its SUBACK: a fresh session hears nothing
        # published before that, so whoever starts publishers waits for ``subscribed``.
        self._suback_mid: int | None = None
        self.refused_filters: list[str] = []
        self._conn = 0
        self.connected_at = 0.0
        self.session_present = False
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5, manual_ack=True)
        if self.url.username:
            self.client.username_pw_set(self.url.username, self.url.password)
        if self.url.tls:
            self.client.tls_set(ca_certs=ca_file)
        self.client.on_connect = self._connected
        self.client.on_disconnect = self._disconnected
        self.client.on_message = self._message
        self.client.on_subscribe = self._subscribed
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)

    # -- state machine ---------------------------------------------------------------------
    def _try_connect(self) -> None:
        self.state = CONNECTING
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.session_expiry_s
        props.ReceiveMaximum = 65535
        try:
            self.client.connect(self.url.host, self.url.port, keepalive=self.keepalive_s,
                                clean_start=False, properties=props)
        except (OSError, mqtt.WebsocketConnectionError) as exc:
            self._fail(f"connect to {self.url.host}:{self.url.port} failed: {exc}")

    def _fail(self, why: str) -> None:
        self._failures += 1
        if self._failures == 1:
            log.warning("MQTT %s; retrying with backoff", why)
        else:
            log.debug("MQTT still failing (%d): %s", self._failures, why)
        self.state = BACKOFF
        self._retry_at = self._clock() + self._delay
        self._delay = min(self._delay * 2, self.backoff_cap_s)

    def _connected(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._fail(f"broker refused: {reason_code}")
            return
        if self._failures:
            log.warning("MQTT connected again after %d failures", self._failures)
        self.state = CONNECTED
        self._failures = 0
        self._delay = self.backoff_s
        self.session_present = bool(getattr(flags, "session_present", False))
        # Acks for a previous connection's messages are meaningless now (they stay pending for
        # take_ready(), but ack() skips them).
        self._conn += 1
        self.connected_at = self._clock()
        rc, self._suback_mid = client.subscribe([(f, 1) for f in self.filters])
        if rc != mqtt.MQTT_ERR_SUCCESS:
            self._suback_mid = None
            self._fail(f"subscribe failed: {mqtt.error_string(rc)}")

    def _subscribed(self, client, userdata, mid, reason_codes, properties) -> None:
        if mid != self._suback_mid:
            return
        self._suback_mid = None
        self.refused_filters = [f for f, rc in zip(self.filters, reason_codes) if rc.is_failure]
        for f, rc in zip(self.filters, reason_codes):
            if rc.is_failure:
                log.error("MQTT broker refused the subscription to %s: %s", f, rc)

    @property
    def subscribed(self) -> bool:
        """Connected and every filter's SUBACK received (refused ones are in refused_filters)."""
        return self.state == CONNECTED and self._suback_mid is None

    def _disconnected(self, client, userdata, flags, reason_code, properties) -> None:
        if self.state == CONNECTED:
            self._fail(f"connection lost: {reason_code}")

    def _message(self, client, userdata, msg) -> None:
        hold = self._on_message(msg.topic, msg.payload)
        self._pending_acks.append((msg.mid, msg.qos, hold, self._conn))

    # -- driving ---------------------------------------------------------------------------
    def poll(self, timeout_s: float = 0.1) -> None:
        """Connect if due, then run the network loop once (callbacks happen in here)."""
        if self.state in (DISCONNECTED, BACKOFF) and self._clock() >= self._retry_at:
            self._try_connect()
        if self.state in (CONNECTING, CONNECTED):
            rc = self.client.loop(timeout=timeout_s)
            if rc != mqtt.MQTT_ERR_SUCCESS and self.state != BACKOFF:
                self._fail(f"network loop: {mqtt.error_string(rc)}")
        else:
            import time
            time.sleep(min(timeout_s, max(self._retry_at - self._clock(), 0.0)))

    @property
    def pending(self) -> int:
        return len(self._pending_acks)

    def take_ready(self, ready: Callable[[object], bool] | None = None) -> list:
        """Remove and return the longest prefix of received messages whose hold is ready
        (all of them when ``ready`` is None), in arrival order."""
        q = self._pending_acks
        n = len(q)
        if ready is not None:
            n = 0
            while n < len(q) and ready(q[n][2]):
                n += 1
        taken, self._pending_acks = q[:n], q[n:]
        return taken

    def ack(self, taken: list) -> int:
        """Acknowledge messages from ``take_ready()`` (call once their effects are durable)."""
        n = 0
        if self.state == CONNECTED:
            for mid, qos, _hold, conn in taken:
                if qos > 0 and conn == self._conn:
                    self.client.ack(mid, qos)
                    n += 1
        return n

    def ack_pending(self, ready: Callable[[object], bool] | None = None) -> int:
        """Acknowledge every received message whose hold is ready (all when ``ready`` is None)."""
        return self.ack(self.take_ready(ready))

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        if self.state == CONNECTED:
            self.client.publish(topic, payload, qos=qos, retain=retain)

    def close(self, ready: Callable[[object], bool] | None = None) -> None:
        try:
            self.ack_pending(ready)
            self.state = DISCONNECTED        # our own disconnect is not a lost connection
            self.client.disconnect()
            self.client.loop(timeout=0.2)
        except Exception:  # closing a broken connection must not mask the real error
            log.debug("MQTT close", exc_info=True)
        self.state = DISCONNECTED
