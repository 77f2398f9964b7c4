"""Broker security against a real mosquitto: anonymous clients refused, TLS with a test CA.

The per-gateway ACL test (a gateway cannot publish under another gateway's topic) lives in
test_acl.py, driven by the provisioning tool's own output.
"""
from __future__ import annotations

import ssl
import subprocess
import threading

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from mallsense.servers import Mosquitto, MosquittoSecurity
from tests.security.certs import make_test_pki


def _connect_result(broker: Mosquitto, username=None, password=None, tls_ca=None) -> int:
    """CONNACK reason code value (0 = accepted), or -1 when the connection itself failed."""
    done = threading.Event()
    result: list[int] = []
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="sec-probe", protocol=mqtt.MQTTv5)
    if username:
        c.username_pw_set(username, password)
    if tls_ca:
        c.tls_set(ca_certs=str(tls_ca), cert_reqs=ssl.CERT_REQUIRED)

    def on_connect(client, userdata, flags, reason_code, properties):
        result.append(reason_code.value)
        done.set()

    c.on_connect = on_connect
    try:
        c.connect(broker.host, broker.port, keepalive=10)
    except (OSError, ssl.SSLError):
        return -1
    c.loop_start()
    try:
        done.wait(10)
    finally:
        c.loop_stop()
        c.disconnect()
    return result[0] if result else -1


@pytest.fixture
def secured_broker(tmp_path):
    pwfile = tmp_path / "passwd"
    pwfile.write_text("")
    subprocess.run(["mosquitto_passwd", "-b", str(pwfile), "gw-test", "s3cret-gw"], check=True)
    pki = make_test_pki(tmp_path / "pki")
    sec = MosquittoSecurity(password_file=str(pwfile), allow_anonymous=False,
                            cafile=str(pki.ca_cert), certfile=str(pki.server_cert),
                            keyfile=str(pki.server_key))
    with Mosquitto(security=sec) as broker:
        yield broker, pki


def test_anonymous_client_is_refused(secured_broker):
    broker, pki = secured_broker
    rc = _connect_result(broker, tls_ca=pki.ca_cert)
    assert rc in (134, 135)  # MQTT 5: bad user name or password / not authorized


def test_wrong_password_is_refused(secured_broker):
    broker, pki = secured_broker
    assert _connect_result(broker, "gw-test", "wrong", tls_ca=pki.ca_cert) in (134, 135)


def test_tls_with_test_ca_accepts_valid_credentials(secured_broker):
    broker, pki = secured_broker
    assert broker.url.startswith("mqtts://")
    assert _connect_result(broker, "gw-test", "s3cret-gw", tls_ca=pki.ca_cert) == 0


def test_tls_client_rejects_unknown_ca(secured_broker, tmp_path):
    broker, _ = secured_broker
    other = make_test_pki(tmp_path / "other")
    assert _connect_result(broker, "gw-test", "s3cret-gw", tls_ca=other.ca_cert) == -1


def test_plain_tcp_to_tls_listener_fails(secured_broker):
    broker, _ = secured_broker
    assert _connect_result(broker, "gw-test", "s3cret-gw") != 0
