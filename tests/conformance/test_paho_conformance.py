"""paho-mqtt: the v2 API our MQTT code calls, pinned by signature and driven against mosquitto.

Users: edge/publisher.py (QoS 1 + PUBACK reason codes, last will, TLS, clean start),
analytics/mqtt_source.py (persistent session, manual ack), gateway/fleet.py and
gateway/calibrate_cli.py (subscribe + on_subscribe reason codes), mallsense/demo_replay.py.
Every client here is driven with ``client.loop()`` in the test's thread, as the publisher and
the ingest source drive theirs, so a callback with the wrong arity raises out of ``loop()``
(paho re-raises callback exceptions by default) instead of being swallowed by a thread.
"""
from __future__ import annotations

import inspect
import socket
import ssl
import struct
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import MQTTException, Properties
from paho.mqtt.reasoncodes import ReasonCode

from mallsense.servers import Mosquitto, MosquittoSecurity
from tests.security.certs import make_test_pki


def _params(func) -> set[str]:
    return set(inspect.signature(func).parameters)


def _client(client_id: str, **kw) -> mqtt.Client:
    # The constructor call of Publisher._make_client and MqttSource.__init__.
    return mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id,
                       protocol=mqtt.MQTTv5, **kw)


def _pump(clients, until, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not until():
        assert time.monotonic() < deadline, "timed out waiting for the broker"
        for c in clients:
            rc = c.loop(timeout=0.02)
            assert rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN, mqtt.MQTT_ERR_CONN_LOST), \
                mqtt.error_string(rc)


class Recorder:
    """v2 callbacks with exactly the positional parameters our code declares."""

    def __init__(self) -> None:
        self.connects: list[tuple] = []
        self.disconnects: list[tuple] = []
        self.publishes: list[tuple] = []
        self.subscribes: list[tuple] = []
        self.messages: list[mqtt.MQTTMessage] = []

    def attach(self, c: mqtt.Client) -> mqtt.Client:
        c.on_connect = self.on_connect
        c.on_disconnect = self.on_disconnect
        c.on_publish = self.on_publish
        c.on_subscribe = self.on_subscribe
        c.on_message = self.on_message
        return c

    def on_connect(self, client, userdata, flags, reason_code, properties):
        self.connects.append((client, flags, reason_code, properties))

    def on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.disconnects.append((client, flags, reason_code, properties))

    def on_publish(self, client, userdata, mid, reason_code, properties):
        self.publishes.append((mid, reason_code, properties))

    def on_subscribe(self, client, userdata, mid, reason_codes, properties):
        self.subscribes.append((mid, reason_codes))

    def on_message(self, client, userdata, msg):
        self.messages.append(msg)


def _connect(broker, client_id: str, rec: Recorder | None = None, *, clean_start=True,
             session_expiry: int = 0, **kw) -> tuple[mqtt.Client, Recorder]:
    rec = rec or Recorder()
    c = rec.attach(_client(client_id, **kw))
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = session_expiry
    n = len(rec.connects)
    c.connect(broker.host, broker.port, keepalive=30, clean_start=clean_start, properties=props)
    _pump([c], lambda: len(rec.connects) > n)
    assert not rec.connects[-1][2].is_failure, rec.connects[-1][2]
    return c, rec


def _subscribe(c: mqtt.Client, rec: Recorder, topic: str) -> None:
    n = len(rec.subscribes)
    c.subscribe(topic, qos=1)
    _pump([c], lambda: len(rec.subscribes) > n)


def _drop(c: mqtt.Client) -> None:
    """Close the TCP connection with a RST and no DISCONNECT, as a power cut looks to the broker."""
    sock = c.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


# --- signatures -----------------------------------------------------------------------------------

def test_client_methods_take_the_arguments_we_pass():
    assert {"callback_api_version", "client_id", "protocol", "reconnect_on_failure",
            "manual_ack"} <= _params(mqtt.Client.__init__)
    assert {"host", "port", "keepalive", "clean_start", "properties"} <= \
        _params(mqtt.Client.connect)
    assert {"ca_certs", "certfile", "keyfile", "tls_version"} <= _params(mqtt.Client.tls_set)
    assert {"topic", "payload", "qos", "retain"} <= _params(mqtt.Client.will_set)
    assert {"topic", "payload", "qos", "retain"} <= _params(mqtt.Client.publish)
    assert {"topic", "qos"} <= _params(mqtt.Client.subscribe)
    assert list(inspect.signature(mqtt.Client.ack).parameters) == ["self", "mid", "qos"]
    assert {"timeout"} <= _params(mqtt.Client.loop)
    assert {"username", "password"} <= _params(mqtt.Client.username_pw_set)
    assert {"logger"} <= _params(mqtt.Client.enable_logger)
    for name in ("loop_write", "socket", "disconnect", "loop_start", "loop_stop"):
        required = [p for p in inspect.signature(getattr(mqtt.Client, name)).parameters.values()
                    if p.name != "self" and p.default is inspect.Parameter.empty]
        assert required == [], f"Client.{name} now requires {required}"
    for name in ("max_inflight_messages_set", "max_queued_messages_set"):
        assert len(inspect.signature(getattr(mqtt.Client, name)).parameters) == 2
    assert callable(mqtt.MQTTMessageInfo.is_published)


def test_module_constants_and_enums_we_use():
    # gateway/fleet.py, mqtt_source.py and demo_replay.py reach the enum through the client module.
    assert mqtt.CallbackAPIVersion.VERSION2 is CallbackAPIVersion.VERSION2
    assert mqtt.MQTTv5 == 5
    assert mqtt.MQTT_ERR_SUCCESS == 0 and mqtt.MQTT_ERR_QUEUE_SIZE != mqtt.MQTT_ERR_SUCCESS
    assert isinstance(mqtt.error_string(mqtt.MQTT_ERR_QUEUE_SIZE), str)
    # MqttSource._try_connect catches it next to OSError around connect().
    assert issubclass(mqtt.WebsocketConnectionError, Exception)
    # MqttSource._connected reads flags.session_present through getattr with a default,
    # so a rename would silently read False: pin the field here.
    assert "session_present" in mqtt.ConnectFlags._fields
    assert "value" in vars(ReasonCode(PacketTypes.PUBACK, "Success"))


def test_reason_code_value_and_is_failure():
    ok = ReasonCode(PacketTypes.PUBACK, "Success")
    denied = ReasonCode(PacketTypes.PUBACK, identifier=0x87)
    no_subs = ReasonCode(PacketTypes.PUBACK, identifier=0x10)
    assert (ok.value, ok.is_failure) == (0, False)
    assert (denied.value, denied.is_failure) == (0x87, True)
    # "No matching subscribers" is a success for QoS 1: the publisher must not keep the batch.
    assert (no_subs.value, no_subs.is_failure) == (0x10, False)
    # edge/publisher.py:_AUTH_CODES keys are compared with .value of a CONNACK code.
    assert ReasonCode(PacketTypes.CONNACK, identifier=0x86).value == 0x86
    assert ReasonCode(PacketTypes.CONNACK, identifier=0x86).is_failure


def test_connect_properties_session_expiry_packs():
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    # MQTT 5.0 3.1.2.11.2: identifier 0x11, four-byte integer; preceded by the length.
    assert props.pack() == bytes([5, 0x11]) + (3600).to_bytes(4, "big")
    with pytest.raises(MQTTException):
        props.SessionExpiryIntervall = 1  # a typo must not be accepted silently
    with pytest.raises(MQTTException):
        Properties(PacketTypes.PUBLISH).SessionExpiryInterval = 1  # not a PUBLISH property


# --- behaviour against a real mosquitto -----------------------------------------------------

def test_v2_callbacks_fire_with_our_arities(mosquitto):
    c, rec = _connect(mosquitto, "conf-arity")
    client, flags, rc, props = rec.connects[0]
    assert client is c and isinstance(flags, mqtt.ConnectFlags)
    assert (rc.value, rc.is_failure) == (0, False) and isinstance(props, Properties)

    _subscribe(c, rec, "conf/arity/#")
    (mid, codes), = rec.subscribes
    assert [(r.value, r.is_failure) for r in codes] == [(1, False)]  # granted QoS 1

    info = c.publish("conf/arity/x", b"\x00\x01", qos=1)
    assert info.rc == mqtt.MQTT_ERR_SUCCESS
    _pump([c], lambda: rec.publishes and rec.messages)
    (pmid, prc, _), = rec.publishes
    assert pmid == info.mid and isinstance(prc, ReasonCode) and not prc.is_failure
    assert info.is_published()
    (msg,) = rec.messages
    assert (msg.topic, msg.payload, msg.qos, msg.retain) == ("conf/arity/x", b"\x00\x01", 1, False)
    assert isinstance(msg.mid, int)

    c.disconnect()
    _pump([c], lambda: rec.disconnects)
    (client, dflags, drc, _), = rec.disconnects
    assert client is c and isinstance(dflags, mqtt.DisconnectFlags)
    assert not drc.is_failure


def test_qos1_publish_without_subscribers_is_acknowledged(mosquitto):
    c, rec = _connect(mosquitto, "conf-nosubs")
    info = c.publish("conf/nobody/listens", b"batch", qos=1)
    _pump([c], lambda: rec.publishes)
    (mid, rc, _), = rec.publishes
    assert mid == info.mid
    assert rc.value in (0x00, 0x10) and not rc.is_failure  # mosquitto says 0x10 to MQTT 5 clients
    c.disconnect()
    c.loop(timeout=0.05)


def test_refused_qos1_publish_reports_a_failure_reason_code(tmp_path):
    # What the publisher's _on_publish sees when the gateway's ACL forbids a topic.
    acl = tmp_path / "acl"
    acl.write_text("topic readwrite allowed/#\n")
    with Mosquitto(security=MosquittoSecurity(acl_file=str(acl))) as broker:
        c, rec = _connect(broker, "conf-acl")
        ok = c.publish("allowed/x", b"1", qos=1)
        bad = c.publish("forbidden/x", b"1", qos=1)
        _pump([c], lambda: len(rec.publishes) == 2)
        codes = {mid: rc for mid, rc, _ in rec.publishes}
        assert not codes[ok.mid].is_failure
        assert codes[bad.mid].is_failure and codes[bad.mid].value == 0x87
        c.disconnect()
        c.loop(timeout=0.05)


def test_last_will_is_published_retained_when_the_client_dies(mosquitto):
    topic = "conf/will/gw-01/status"
    sub, srec = _connect(mosquitto, "conf-will-watcher")
    _subscribe(sub, srec, topic)
    rec = Recorder()
    gw = rec.attach(_client("conf-will-gw"))
    gw.will_set(topic, b'{"state":"offline"}', qos=1, retain=True)  # Publisher._make_client
    gw.connect(mosquitto.host, mosquitto.port, keepalive=30, clean_start=True)
    _pump([gw], lambda: rec.connects)
    _drop(gw)
    _pump([sub], lambda: srec.messages)
    (live,) = srec.messages
    assert (live.topic, live.payload, live.qos) == (topic, b'{"state":"offline"}', 1)

    late, lrec = _connect(mosquitto, "conf-will-late")
    _subscribe(late, lrec, topic)
    _pump([late], lambda: lrec.messages)
    assert lrec.messages[0].payload == b'{"state":"offline"}' and lrec.messages[0].retain
    for c in (sub, late):
        c.disconnect()
        c.loop(timeout=0.05)


def test_clean_disconnect_does_not_publish_the_will(mosquitto):
    topic = "conf/will/gw-02/status"
    sub, srec = _connect(mosquitto, "conf-nowill-watcher")
    _subscribe(sub, srec, topic)
    rec = Recorder()
    gw = rec.attach(_client("conf-nowill-gw"))
    gw.will_set(topic, b"offline", qos=1, retain=False)
    gw.connect(mosquitto.host, mosquitto.port, keepalive=30, clean_start=True)
    _pump([gw], lambda: rec.connects)
    gw.disconnect()
    gw.loop_write()  # edge/publisher.py:_goodbye sends DISCONNECT this way
    sub.publish(topic, b"marker", qos=1)  # arrives after any will would have
    _pump([sub], lambda: any(m.payload == b"marker" for m in srec.messages))
    assert [m.payload for m in srec.messages] == [b"marker"]
    sub.disconnect()
    sub.loop(timeout=0.05)


def test_persistent_session_and_manual_ack_redeliver_unacked(mosquitto):
    # analytics/mqtt_source.py: clean_start=False + SessionExpiryInterval, manual_ack=True.
    topic = "conf/ingest/sightings"
    cid = "conf-ingest"
    c, rec = _connect(mosquitto, cid, clean_start=False, session_expiry=60, manual_ack=True)
    _subscribe(c, rec, topic)
    c.disconnect()
    c.loop(timeout=0.05)

    pub, prec = _connect(mosquitto, "conf-ingest-pub")
    pub.publish(topic, b"batch-1", qos=1)
    _pump([pub], lambda: prec.publishes)

    # Offline meanwhile: the broker queued it, and says the session is there.
    c, rec = _connect(mosquitto, cid, clean_start=False, session_expiry=60, manual_ack=True)
    assert rec.connects[0][1].session_present is True
    _pump([c], lambda: rec.messages)
    assert rec.messages[0].payload == b"batch-1"
    _drop(c)  # crash before ack_pending(): no PUBACK was sent

    c, rec = _connect(mosquitto, cid, clean_start=False, session_expiry=60, manual_ack=True)
    _pump([c], lambda: rec.messages)
    again = rec.messages[0]
    assert again.payload == b"batch-1" and again.dup  # redelivered, flagged as such
    assert c.ack(again.mid, again.qos) == mqtt.MQTT_ERR_SUCCESS
    c.loop(timeout=0.05)
    c.disconnect()
    c.loop(timeout=0.05)

    c, rec = _connect(mosquitto, cid, clean_start=False, session_expiry=60, manual_ack=True)
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        c.loop(timeout=0.05)
    assert rec.messages == []  # acked once: not delivered a third time
    c, rec = _connect(mosquitto, cid, clean_start=True, session_expiry=0)  # drop the session
    c.disconnect()
    c.loop(timeout=0.05)


def test_clean_start_true_with_zero_expiry_has_no_session(mosquitto):
    # edge/publisher.py connects this way so paho/mosquitto never replay; the spool does.
    c, rec = _connect(mosquitto, "conf-fresh", clean_start=True, session_expiry=0)
    assert rec.connects[0][1].session_present is False
    c.disconnect()
    c.loop(timeout=0.05)
    c, rec = _connect(mosquitto, "conf-fresh", clean_start=True, session_expiry=0)
    assert rec.connects[0][1].session_present is False
    c.disconnect()
    c.loop(timeout=0.05)


def test_tls_set_as_the_publisher_calls_it(tmp_path):
    pki = make_test_pki(tmp_path / "pki")
    sec = MosquittoSecurity(cafile=str(pki.ca_cert), certfile=str(pki.server_cert),
                            keyfile=str(pki.server_key))
    with Mosquitto(security=sec) as broker:
        rec = Recorder()
        c = rec.attach(_client("conf-tls"))
        # Publisher._make_client: PROTOCOL_TLS_CLIENT verifies the chain and the host name.
        c.tls_set(ca_certs=str(pki.ca_cert), certfile=None, keyfile=None,
                  tls_version=ssl.PROTOCOL_TLS_CLIENT)
        c.connect(broker.host, broker.port, keepalive=30, clean_start=True)
        _pump([c], lambda: rec.connects)
        assert not rec.connects[0][2].is_failure
        assert isinstance(c.socket(), ssl.SSLSocket)
        c.disconnect()
        c.loop(timeout=0.05)

        other = make_test_pki(tmp_path / "other")
        bad = _client("conf-tls-bad")
        bad.tls_set(ca_certs=str(other.ca_cert), certfile=None, keyfile=None,
                    tls_version=ssl.PROTOCOL_TLS_CLIENT)
        # The publisher catches (OSError, ssl.SSLError, ValueError) around connect().
        with pytest.raises(ssl.SSLError):
            bad.connect(broker.host, broker.port, keepalive=30, clean_start=True)
