"""MQTT publisher: spool -> broker with QoS 1, PUBACK-driven acknowledgement, explicit reconnects.

paho-mqtt v2 API, MQTT 5. The publisher owns one thread that drives both the paho client
(``client.loop``) and a small state machine::

    DISCONNECTED --attempt due--> CONNECTING --CONNACK ok--> CONNECTED
         ^                            |  CONNACK refused /           | connection lost
         +------ backoff delay -------+  socket error                +-----> DISCONNECTED

A fresh paho client is made per connection, so paho never replays anything itself: the spool is
the only source of retransmissions (oldest first), and a batch is deleted from it only when its
PUBACK reports success. The first failure of a cycle is logged at WARNING, repeats at DEBUG.
Refused credentials are fatal (``fatal`` holds a BrokerAuthError with operator advice).
"""
from __future__ import annotations

import dataclasses
import enum
import logging
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes

from edge.backoff import Backoff
from edge.errors import BrokerAuthError, EdgeError
from edge.spool import Spool
from gateway.wire import Status, Topic

log = logging.getLogger(__name__)

# CONNACK reason codes that retrying will not fix (MQTT 5.0 section 3.2.2.2).
_AUTH_CODES = {0x86: "bad user name or password", 0x87: "not authorized",
               0x8C: "bad authentication method", 0x85: "client identifier not valid"}


class State(enum.Enum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    STOPPED = "stopped"


@dataclass(frozen=True)
class MqttSettings:
    """host/port: broker. username/password: this gateway's own credentials. tls: use TLS;
    ca_file/cert_file/key_file: PEM paths (client certificate optional). keepalive_s: MQTT keep
    alive. max_inflight: unacknowledged QoS 1 batches at once. connect_timeout_s: TCP + CONNACK."""

    host: str = "localhost"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    client_id: str | None = None
    keepalive_s: int = 30
    max_inflight: int = 50
    connect_timeout_s: float = 10.0
    backoff_initial_s: float = 1.0
    backoff_cap_s: float = 60.0


class Publisher:
    def __init__(self, settings: MqttSettings, site: str, gw: str, spool: Spool, version: str,
                 clock: Callable[[], float] = time.time, backoff: Backoff | None = None) -> None:
        self.settings = settings
        self.site, self.gw, self.version = site, gw, version
        self.spool = spool
        self._clock = clock
        self._backoff = backoff or Backoff(settings.backoff_initial_s, settings.backoff_cap_s)
        self._sightings_topic = str(Topic.sightings(site, gw))
        self._status_topic = str(Topic.status(site, gw))
        self.state = State.DISCONNECTED
        self.fatal: EdgeError | None = None
        self._client: mqtt.Client | None = None
        self._inflight: dict[int, int] = {}  # mid -> seq
        self._acked: list[int] = []  # PUBACKed, not yet deleted from the spool
        self._sent_upto = -1
        self._next_attempt = 0.0
        self._connect_deadline = 0.0
        self._failing = False
        self._status: Status | None = None
        self._status_dirty = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.acked = 0
        self.connects = 0

    # --- called from other threads -------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mqtt-publisher", daemon=True)
        self._thread.start()

    def set_status(self, status: Status) -> None:
        """Publish this heartbeat (retained) as soon as connected; only the latest is kept."""
        with self._lock:
            self._status, self._status_dirty = status, True

    def stop(self, drain_timeout_s: float = 5.0) -> None:
        """Send what the spool holds for up to drain_timeout_s, say offline, disconnect."""
        deadline = time.monotonic() + drain_timeout_s
        while (time.monotonic() < deadline and self.spool.depth and self.fatal is None
               and self._thread is not None and self._thread.is_alive()):
            time.sleep(0.05)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=drain_timeout_s + 5)

    @property
    def topic(self) -> str:
        return self._sightings_topic

    # --- the publisher thread ----------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stop.is_set() and self.fatal is None:
                self._step()
        except Exception:  # noqa: BLE001 - the thread must report, not vanish
            log.exception("publisher thread failed")
            self.fatal = EdgeError("publisher thread failed")
        finally:
            self._goodbye()
            self.state = State.STOPPED

    def _step(self) -> None:
        now = self._clock()
        if self.state is State.DISCONNECTED:
            if now < self._next_attempt:
                self._stop.wait(min(0.2, self._next_attempt - now))
                return
            self._connect(now)
            return
        client = self._client
        assert client is not None
        rc = client.loop(timeout=0.05)
        self._flush_acks()
        if rc != mqtt.MQTT_ERR_SUCCESS and self.state is not State.DISCONNECTED:
            self._lost(f"network loop: {mqtt.error_string(rc)}")
            return
        if self.state is State.CONNECTING and self._clock() > self._connect_deadline:
            self._lost("no CONNACK in time")
            return
        if self.state is State.CONNECTED:
            self._send_status()
            self._drain()

    def _make_client(self) -> mqtt.Client:
        s = self.settings
        client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                             client_id=s.client_id or f"mallsense-edge-{self.site}-{self.gw}",
                             protocol=mqtt.MQTTv5, reconnect_on_failure=False)
        if s.username is not None:
            client.username_pw_set(s.username, s.password)
        if s.tls:
            client.tls_set(ca_certs=s.ca_file, certfile=s.cert_file, keyfile=s.key_file,
                           tls_version=ssl.PROTOCOL_TLS_CLIENT)
        will = Status.last_will(self.site, self.gw, round(self._clock(), 3), self.version)
        client.will_set(self._status_topic, will.encode(), qos=1, retain=True)
        client.max_inflight_messages_set(s.max_inflight)
        client.max_queued_messages_set(s.max_inflight + 10)  # + status messages
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        if log.isEnabledFor(logging.DEBUG):  # paho's own chatter only when asked for
            client.enable_logger(logging.getLogger(__name__ + ".paho"))
        return client

    def _connect(self, now: float) -> None:
        s = self.settings
        self.state = State.CONNECTING
        self._connect_deadline = now + s.connect_timeout_s
        self._client = self._make_client()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 0
        try:
            self._client.connect(s.host, s.port, keepalive=s.keepalive_s, clean_start=True,
                                 properties=props)
        except (OSError, ssl.SSLError, ValueError) as exc:
            self._lost(f"connect to {s.host}:{s.port}: {exc}")

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if client is not self._client:
            return
        if reason_code.is_failure:
            code = reason_code.value
            if code in _AUTH_CODES:
                self.fatal = BrokerAuthError(f"{self.settings.host}:{self.settings.port}",
                                             self.settings.username, _AUTH_CODES[code])
                log.error("%s", self.fatal)
            self._lost(f"broker refused connection: {reason_code}")
            return
        if self._failing:
            log.info("connected to %s:%d after %d failed attempts", self.settings.host,
                     self.settings.port, self._backoff.failures)
        else:
            log.info("connected to %s:%d", self.settings.host, self.settings.port)
        self.state = State.CONNECTED
        self.connects += 1
        self._failing = False
        self._backoff.reset()
        self._inflight.clear()
        self._sent_upto = -1
        with self._lock:
            self._status_dirty = self._status is not None

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if client is self._client and self.state in (State.CONNECTING, State.CONNECTED):
            self._lost(f"disconnected: {reason_code}")

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        if client is not self._client:
            return
        seq = self._inflight.pop(mid, None)
        if seq is None:
            return  # a status message
        if reason_code.is_failure:
            # Kept in the spool; the broker (ACL?) refused it. Reconnect later and retry.
            log.error("broker refused batch seq %d: %s; check this gateway's ACL", seq,
                      reason_code)
            self._lost("publish refused")
            return
        self._acked.append(seq)
        self.acked += 1

    def _flush_acks(self) -> None:
        # A crash before this commit only means a redelivery, which ingest dedupes by seq.
        if self._acked:
            acked, self._acked = self._acked, []
            self.spool.ack_many(acked)

    def _lost(self, why: str) -> None:
        self._flush_acks()
        client, self._client = self._client, None
        self.state = State.DISCONNECTED
        self._inflight.clear()
        self._sent_upto = -1
        delay = self._backoff.next_delay()
        self._next_attempt = self._clock() + delay
        level = logging.DEBUG if self._failing else logging.WARNING
        log.log(level, "MQTT %s; retry in %.1f s (attempt %d)", why, delay,
                self._backoff.failures)
        self._failing = True
        if client is not None:
            try:
                client.disconnect()
            except Exception:  # noqa: BLE001 - the socket may already be gone
                pass
            try:
                client.socket() and client.socket().close()
            except Exception:  # noqa: BLE001
                pass

    def _drain(self) -> None:
        room = self.settings.max_inflight - len(self._inflight)
        # Nothing stored since the last send: no query (this runs at every loop step).
        if room <= 0 or self.spool.newest_seq <= self._sent_upto:
            return
        client = self._client
        for item in self.spool.pending(self._sent_upto, room):
            info = client.publish(item.topic, item.payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                if info.rc != mqtt.MQTT_ERR_QUEUE_SIZE:
                    self._lost(f"publish: {mqtt.error_string(info.rc)}")
                return
            self._inflight[info.mid] = item.seq
            self._sent_upto = item.seq

    def _send_status(self) -> None:
        with self._lock:
            if not self._status_dirty or self._status is None:
                return
            status, self._status_dirty = self._status, False
        self._client.publish(self._status_topic, status.encode(), qos=1, retain=True)

    def _goodbye(self) -> None:
        client = self._client
        if client is None or self.state is not State.CONNECTED:
            return
        self.state = State.STOPPED
        with self._lock:
            last = self._status
        now = round(self._clock(), 3)
        if last is not None:
            offline = dataclasses.replace(last, t=now, state="offline",
                                          spool_depth=self.spool.depth)
        else:
            offline = Status(self.site, self.gw, now, "offline", self.version)
        info = client.publish(self._status_topic, offline.encode(), qos=1, retain=True)
        deadline = time.monotonic() + 2.0
        while not info.is_published() and time.monotonic() < deadline:
            if client.loop(timeout=0.05) != mqtt.MQTT_ERR_SUCCESS:
                break
        self._flush_acks()
        client.disconnect()
        client.loop_write()  # sends DISCONNECT; paho closes the socket itself
