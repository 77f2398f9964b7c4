"""The real servers start, answer, keep their data across a restart, and stop."""
from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes

from mallsense.servers import Mosquitto, ServerError, free_port


def _client(broker: Mosquitto, client_id: str, clean_start=True) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    props = None
    if not clean_start:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
    c.connect(broker.host, broker.port, keepalive=30, clean_start=clean_start, properties=props)
    return c


def _wait(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def test_free_port_is_bindable():
    port = free_port()
    assert 1024 < port < 65536


def test_mosquitto_roundtrip_qos1(mosquitto):
    got: list[bytes] = []
    sub = _client(mosquitto, "t-sub")
    sub.on_message = lambda c, u, m: got.append(m.payload)
    sub.subscribe("mallsense/v1/test/#", qos=1)
    sub.loop_start()
    pub = _client(mosquitto, "t-pub")
    pub.loop_start()
    try:
        time.sleep(0.2)
        info = pub.publish("mallsense/v1/test/gw/g1/sightings", b"hello", qos=1)
        info.wait_for_publish(5)
        assert info.is_published()
        assert _wait(lambda: got == [b"hello"])
    finally:
        for c in (sub, pub):
            c.loop_stop()
            c.disconnect()


def test_mosquitto_persistent_session_survives_restart(fresh_mosquitto):
    """A QoS 1 message queued for an offline persistent session is delivered after a restart."""
    broker = fresh_mosquitto
    sub = _client(broker, "persist-sub", clean_start=False)
    sub.subscribe("q/#", qos=1)
    sub.loop_start()
    time.sleep(0.2)
    sub.loop_stop()
    sub.disconnect()

    pub = _client(broker, "persist-pub")
    pub.loop_start()
    info = pub.publish("q/x", b"queued", qos=1)
    info.wait_for_publish(5)
    pub.loop_stop()
    pub.disconnect()

    port = broker.port
    broker.restart()
    assert broker.port == port

    got: list[bytes] = []
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="persist-sub", protocol=mqtt.MQTTv5)
    sub.on_message = lambda c, u, m: got.append(m.payload)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    sub.connect(broker.host, broker.port, clean_start=False, properties=props)
    sub.loop_start()
    try:
        assert _wait(lambda: got == [b"queued"])
    finally:
        sub.loop_stop()
        sub.disconnect()


def test_mosquitto_refuses_start_on_taken_port(mosquitto):
    second = Mosquitto(port=mosquitto.port)
    try:
        with pytest.raises(ServerError, match=f"mosquitto: port 127.0.0.1:{mosquitto.port} is taken"):
            second.start()
        assert not second.running
    finally:
        second.close()


def test_influxdb_v1_write_and_query(influxdb):
    influxdb.create_database("itest")
    line = b"probe,site=demo value=42i 1700000000"
    req = urllib.request.Request(
        f"{influxdb.url}/write?db=itest&precision=s", data=line, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 204
    res = influxdb.query('SELECT "value" FROM "probe"', db="itest")
    assert res["results"][0]["series"][0]["values"] == [[1700000000, 42]]


def test_influxdb_keeps_data_across_restart(fresh_influxdb):
    db = fresh_influxdb
    db.create_database("keep")
    req = urllib.request.Request(
        f"{db.url}/write?db=keep&precision=s", data=b"m v=1 1700000000", method="POST")
    urllib.request.urlopen(req, timeout=10).close()
    db.restart()
    res = db.query('SELECT count("v") FROM "m"', db="keep")
    assert res["results"][0]["series"][0]["values"][0][1] == 1


def test_victoriametrics_v2_write_via_influxdb_client(victoriametrics):
    """The influxdb-client v2 write API against a real server that speaks it."""
    from influxdb_client import InfluxDBClient, Point, WritePrecision
    from influxdb_client.client.write_api import SYNCHRONOUS

    t = int(time.time())
    with InfluxDBClient(url=victoriametrics.url, token="unused", org="mallsense") as client:
        write = client.write_api(write_options=SYNCHRONOUS)
        write.write(bucket="mallsense", record=Point("itest").tag("site", "demo")
                    .field("visitors", 17.0).time(t, WritePrecision.S))
    rows = []
    assert _wait(lambda: bool(rows.extend(victoriametrics.export('{__name__="itest_visitors"}'))
                         or rows), timeout=15)
    assert rows[0]["metric"]["site"] == "demo"
    assert rows[0]["values"] == [17]
    assert rows[0]["timestamps"] == [t * 1000]


def test_given_data_folder_is_created_and_kept(tmp_path_factory):
    import tempfile
    from pathlib import Path

    base = Path(tempfile.mkdtemp(prefix="ms-given-"))
    base.chmod(0o755)
    folder = base / "broker" / "data"
    with Mosquitto(data_dir=folder) as broker:
        assert broker.running and folder.is_dir()
    assert folder.is_dir()  # a caller's folder is the caller's to delete


def test_unreachable_data_folder_is_a_clear_error(tmp_path):
    """As root (CI, `make test` on a fresh machine) mosquitto drops to its own user."""
    tmp_path.parent.chmod(0o700)
    with pytest.raises(ServerError, match="cannot enter"):
        Mosquitto(data_dir=tmp_path / "b").start()
