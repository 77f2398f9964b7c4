"""Publisher against a real mosquitto: PUBACK-driven spool acks, TLS + credentials, refused
credentials are fatal, reconnect backoff and its logging."""
from __future__ import annotations

import logging
import random
import subprocess

import pytest

from edge.backoff import Backoff
from edge.errors import BrokerAuthError
from edge.publisher import MqttSettings, Publisher, State
from edge.spool import Spool
from gateway.wire import Sighting, SightingsBatch, Status
from mallsense.servers import Mosquitto, MosquittoSecurity, free_port
from tests.edge.mqtt_helpers import Collector

pytestmark = pytest.mark.servers


def _batch(seq: int) -> SightingsBatch:
    return SightingsBatch("mall1", "gw-01", seq, 1_700_000_000.0 + seq, 1.0,
                          (Sighting(f"{seq:016x}", "ble", -61.5, 3),))


def _fill(spool: Spool, n: int, topic: str) -> None:
    for _ in range(n):
        seq = spool.next_seq()
        spool.put(seq, topic, _batch(seq).encode())


def test_backoff_capped_with_jitter():
    b = Backoff(1.0, 8.0, 2.0, jitter=0.5, rng=random.Random(1))
    delays = [b.next_delay() for _ in range(8)]
    caps = [1, 2, 4, 8, 8, 8, 8, 8]
    assert all(c * 0.5 <= d <= c for d, c in zip(delays, caps))
    assert len(set(delays)) == len(delays)  # jittered
    b.reset()
    assert b.next_delay() <= 1.0
    with pytest.raises(ValueError):
        Backoff(2.0, 1.0)


def test_publishes_spool_and_acks_on_puback(tmp_path, mosquitto):
    col = Collector(mosquitto.port, "pub-test-1")
    spool = Spool(tmp_path / "s.db")
    pub = Publisher(MqttSettings("127.0.0.1", mosquitto.port), "mall1", "gw-01", spool, "0.1.0")
    _fill(spool, 120, pub.topic)  # more than max_inflight: flow control is exercised
    pub.set_status(Status("mall1", "gw-01", 1_700_000_000.0, "online", "0.1.0",
                          frames_per_s={"ble": 12.5}, spool_depth=120))
    pub.start()
    try:
        assert col.wait(lambda: len(col.batches()) == 120 and spool.depth == 0, 20)
        assert sorted(col.batches()) == list(range(120))
        assert pub.acked == 120 and pub.state is State.CONNECTED
        assert col.wait(lambda: any(s["state"] == "online" for s in col.status), 5)
        assert col.status[0]["frames_per_s"] == {"ble": 12.5}
    finally:
        pub.stop(2)
        col.close()
    assert pub.state is State.STOPPED
    # Graceful stop says offline, retained: a late subscriber sees it.
    late = Collector(mosquitto.port, "pub-test-late")
    try:
        assert late.wait(lambda: late.status and late.status[-1]["state"] == "offline", 5)
    finally:
        late.close()


@pytest.fixture
def secured(tmp_path):
    from tests.security.certs import make_test_pki

    pwfile = tmp_path / "passwd"
    pwfile.write_text("")
    subprocess.run(["mosquitto_passwd", "-b", str(pwfile), "gw-01", "pw-gw-01"], check=True)
    pki = make_test_pki(tmp_path / "pki")
    sec = MosquittoSecurity(password_file=str(pwfile), allow_anonymous=False,
                            cafile=str(pki.ca_cert), certfile=str(pki.server_cert),
                            keyfile=str(pki.server_key))
    with Mosquitto(security=sec) as broker:
        yield broker, pki


def test_tls_and_credentials(tmp_path, secured):
    broker, pki = secured
    spool = Spool(tmp_path / "s.db")
    settings = MqttSettings("127.0.0.1", broker.port, "gw-01", "pw-gw-01", tls=True,
                            ca_file=str(pki.ca_cert))
    pub = Publisher(settings, "mall1", "gw-01", spool, "0.1.0")
    _fill(spool, 5, pub.topic)
    pub.start()
    try:
        assert Collector.wait(lambda: spool.depth == 0, 15), pub.state
        assert pub.fatal is None and pub.connects == 1
    finally:
        pub.stop(1)


def test_refused_credentials_are_fatal_with_advice(tmp_path, secured):
    broker, pki = secured
    spool = Spool(tmp_path / "s.db")
    settings = MqttSettings("127.0.0.1", broker.port, "gw-01", "wrong", tls=True,
                            ca_file=str(pki.ca_cert))
    pub = Publisher(settings, "mall1", "gw-01", spool, "0.1.0")
    _fill(spool, 3, pub.topic)
    pub.start()
    try:
        assert Collector.wait(lambda: pub.fatal is not None, 15)
    finally:
        pub.stop(0)
    assert isinstance(pub.fatal, BrokerAuthError)
    assert "password" in str(pub.fatal) and "ACL" in pub.fatal.advice
    assert spool.depth == 3  # nothing lost: the batches wait for fixed credentials


def test_unreachable_broker_backs_off_warning_once(tmp_path, caplog):
    spool = Spool(tmp_path / "s.db")
    settings = MqttSettings("127.0.0.1", free_port(), backoff_initial_s=0.02, backoff_cap_s=0.05)
    pub = Publisher(settings, "mall1", "gw-01", spool, "0.1.0")
    with caplog.at_level(logging.DEBUG, logger="edge.publisher"):
        pub.start()
        assert Collector.wait(lambda: pub._backoff.failures >= 4, 10)
        pub.stop(0)
    recs = [r for r in caplog.records if r.name == "edge.publisher" and "retry in" in r.message]
    assert recs[0].levelno == logging.WARNING
    assert len(recs) >= 4 and all(r.levelno == logging.DEBUG for r in recs[1:])
    assert pub.fatal is None
