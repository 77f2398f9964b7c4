"""Per-gateway credentials and ACL from `gateway.provision`, loaded into a real mosquitto.

A gateway may publish only under its own topic tree; a publish under another gateway's topic
never reaches a subscriber, and the broker says so in the PUBACK (MQTT 5 reason code 135,
"not authorized": mosquitto 2.0 answers a denied QoS 1 publish that way). An ingest user reads
everything. TLS from the edge publisher to the broker with a test CA.
"""
from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.publisher import MqttSettings, Publisher
from edge.spool import Spool
from gateway import provision as prov
from gateway.site import load_site, sample_site_path
from gateway.wire import Sighting, SightingsBatch, Topic
from mallsense.servers import Mosquitto, MosquittoSecurity
from tests.security.certs import make_test_pki

pytestmark = pytest.mark.servers

INGEST_USER, INGEST_PW = "ingest", "ingest-pw-0123456789"


@pytest.fixture(scope="module")
def provisioned(tmp_path_factory):
    site = load_site(sample_site_path())
    out = tmp_path_factory.mktemp("prov")
    a, b = site.gateways[0].id, site.gateways[1].id
    pa = prov.provision(site, a, out)
    pb = prov.provision(site, b, out)
    passwd = out / "passwd"
    passwd.write_text(pa.passwd.read_text() + pb.passwd.read_text()
                      + prov.password_line(INGEST_USER, INGEST_PW) + "\n")
    acl = out / "acl"
    acl.write_text(pa.acl.read_text() + "\n" + pb.acl.read_text() + "\n"
                   + f"user {INGEST_USER}\ntopic read mallsense/v1/#\n"
                   + f"topic write {Topic.deadletter(site.id)}\n")
    return site, (a, pa), (b, pb), passwd, acl, out


@pytest.fixture(scope="module")
def acl_broker(provisioned):
    _site, _a, _b, passwd, acl, _out = provisioned
    sec = MosquittoSecurity(password_file=str(passwd), acl_file=str(acl), allow_anonymous=False)
    with Mosquitto(security=sec) as broker:
        yield broker


class Sub:
    def __init__(self, port, user, pw, tls_ca=None):
        self.got: list[tuple[str, bytes]] = []
        self.ready = threading.Event()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sub-{user}-{time.time_ns()}",
                        protocol=mqtt.MQTTv5)
        c.username_pw_set(user, pw)
        if tls_ca:
            c.tls_set(ca_certs=str(tls_ca))
        c.on_connect = lambda cl, u, f, rc, p: cl.subscribe("mallsense/v1/#", qos=1)
        c.on_subscribe = lambda *a: self.ready.set()
        c.on_message = lambda cl, u, m: self.got.append((m.topic, bytes(m.payload)))
        c.connect("127.0.0.1", port)
        c.loop_start()
        assert self.ready.wait(10)
        self.c = c

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


def _publish(port, user, pw, topic, payload) -> int:
    """PUBACK reason code of one QoS 1 publish (or -1 if there was none)."""
    done = threading.Event()
    codes: list[int] = []
    connected = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{time.time_ns()}",
                    protocol=mqtt.MQTTv5)
    c.username_pw_set(user, pw)
    c.on_connect = lambda cl, u, f, rc, p: (codes.append(rc.value), connected.set())
    c.on_publish = lambda cl, u, mid, rc, p: (codes.append(rc.value), done.set())
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        assert connected.wait(10) and codes[0] == 0, codes
        c.publish(topic, payload, qos=1)
        done.wait(10)
    finally:
        c.loop_stop()
        c.disconnect()
    return codes[1] if len(codes) > 1 else -1


def _batch(site, gw, seq=1):
    return SightingsBatch(site.id, gw, seq, 1_700_000_000.0, 1.0,
                          (Sighting("dev1", "ble", -60.0, 2),))


def test_gateway_publishes_under_its_own_topic(provisioned, acl_broker):
    site, (a, pa), _b, *_ = provisioned
    sub = Sub(acl_broker.port, INGEST_USER, INGEST_PW)
    try:
        payload = _batch(site, a).encode()
        assert _publish(acl_broker.port, pa.username, pa.password,
                        str(Topic.sightings(site.id, a)), payload) == 0
        deadline = time.monotonic() + 10
        while not sub.got and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sub.close()
    assert (str(Topic.sightings(site.id, a)), payload) in sub.got   # the ingest user reads it


def test_gateway_cannot_publish_under_another_gateways_topic(provisioned, acl_broker):
    site, (a, pa), (b, _pb), *_ = provisioned
    sub = Sub(acl_broker.port, INGEST_USER, INGEST_PW)
    try:
        forged = _batch(site, b, seq=7).encode()       # a's credentials speaking for b
        rc = _publish(acl_broker.port, pa.username, pa.password,
                      str(Topic.sightings(site.id, b)), forged)
        rc_status = _publish(acl_broker.port, pa.username, pa.password,
                             str(Topic.status(site.id, b)), b"{}")
        rc_events = _publish(acl_broker.port, pa.username, pa.password,
                             str(Topic.event(site.id, "entry")), b"{}")
        # A marker on a's own topic, published after: once it arrives, the forgeries had time.
        assert _publish(acl_broker.port, pa.username, pa.password,
                        str(Topic.sightings(site.id, a)), _batch(site, a, 2).encode()) == 0
        deadline = time.monotonic() + 10
        while not any(t.endswith(f"/{a}/sightings") for t, _ in sub.got) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sub.close()
    assert any(t.endswith(f"/{a}/sightings") for t, _ in sub.got)
    assert all(f"/gw/{b}/" not in t and "/events/" not in t for t, _ in sub.got), sub.got
    assert rc == rc_status == rc_events == 135, (rc, rc_status, rc_events)   # not authorized


def test_gateway_cannot_read_other_traffic(provisioned, acl_broker):
    site, (_a, pa), (b, pb), *_ = provisioned
    spy = Sub(acl_broker.port, pa.username, pa.password)   # write-only ACL: reads nothing
    try:
        assert _publish(acl_broker.port, pb.username, pb.password,
                        str(Topic.sightings(site.id, b)), _batch(site, b).encode()) == 0
        time.sleep(1.0)   # a negative: give the broker time to (not) deliver
    finally:
        spy.close()
    assert spy.got == []


def test_provisioned_edge_config_loads_in_the_edge_agent(provisioned):
    """The config `mallsense gateway provision` writes must be one `mallsense edge` accepts."""
    from edge.config import load_config

    _site, (a, pa), *_ = provisioned
    cfg = load_config(pa.config)
    assert cfg.gw == a and cfg.mqtt.username == pa.username and cfg.mqtt.password == pa.password


def test_edge_publisher_over_tls_with_provisioned_credentials(provisioned, tmp_path):
    site, (a, pa), _b, passwd, acl, _out = provisioned
    pki = make_test_pki(tmp_path / "pki")
    sec = MosquittoSecurity(password_file=str(passwd), acl_file=str(acl), allow_anonymous=False,
                            cafile=str(pki.ca_cert), certfile=str(pki.server_cert),
                            keyfile=str(pki.server_key))
    with Mosquitto(security=sec) as broker:
        sub = Sub(broker.port, INGEST_USER, INGEST_PW, tls_ca=pki.ca_cert)
        spool = Spool(tmp_path / "spool.sqlite3")
        settings = MqttSettings("127.0.0.1", broker.port, username=pa.username,
                                password=pa.password, tls=True, ca_file=str(pki.ca_cert),
                                backoff_initial_s=0.2, backoff_cap_s=1.0)
        pub = Publisher(settings, site.id, a, spool, "test")
        batches = [_batch(site, a, seq) for seq in range(5)]
        for bt in batches:
            spool.put(bt.seq, str(Topic.sightings(site.id, a)), bt.encode())
        pub.start()
        try:
            deadline = time.monotonic() + 20
            while (spool.depth or len(sub.got) < 5) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            pub.stop(1.0)
            sub.close()
            spool.close()
        assert pub.fatal is None and pub.acked == 5
        got = [p for t, p in sub.got if t.endswith("/sightings")]
        assert got == [bt.encode() for bt in batches]



def test_ingest_source_is_subscribed_only_after_suback(provisioned, acl_broker):
    """Connected is not listening: a fresh session hears only what is published after SUBACK,
    so ``subscribed`` (what publishers wait for) turns true only then."""
    from analytics.mqtt_source import MqttSource

    site, (a, pa), *_ = provisioned
    filters = [Topic.sightings_filter(site.id), Topic.status_filter(site.id)]
    got = []
    src = MqttSource(f"mqtt://{INGEST_USER}:{INGEST_PW}@127.0.0.1:{acl_broker.port}",
                     f"src-{time.time_ns()}", filters, lambda t, p: got.append(t), session_expiry_s=0)
    try:
        deadline = time.monotonic() + 20
        while src.state != "connected" and time.monotonic() < deadline:
            src.poll(0.05)
        # CONNACK handled in this poll, our SUBSCRIBE only just sent: not listening yet.
        assert src.state == "connected" and not src.subscribed
        while not src.subscribed and time.monotonic() < deadline:
            src.poll(0.05)
        assert src.subscribed and src.refused_filters == []
        topic = str(Topic.sightings(site.id, a))
        assert _publish(acl_broker.port, pa.username, pa.password, topic,
                        _batch(site, a).encode()) == 0
        while not got and time.monotonic() < deadline:
            src.poll(0.05)
        assert got == [topic]
    finally:
        src.close()
