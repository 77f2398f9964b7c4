"""`mallsense fleet`: pure assessment and table, and against a real mosquitto with the ACLs
that `gateway provision` writes (a gateway may publish only under its own topics)."""
from __future__ import annotations

import time

import paho.mqtt.client as mqtt
import pytest

from gateway.fleet import FleetError, assess, collect_statuses, format_table, parse_url
from gateway.provision import password_line, provision
from gateway.site import load_site, sample_site_path
from gateway.wire import Status, Topic, WireError
from mallsense.cli import main
from mallsense.servers import Mosquitto, MosquittoSecurity

NOW = 1_763_900_000.0


def _status(gw, state="online", t=NOW - 10, **kw):
    return Status("mall-1", gw, t, state, "0.1.0", 100.0,
                  kw.pop("frames_per_s", {"ble": 812.4, "wifi": 41.25}), 0, kw.pop("spool", 0),
                  0, kw.pop("temp", 52.1))


def test_assess_sorts_and_classifies():
    found = {
        "gw-3": _status("gw-3"),
        "gw-1": _status("gw-1", "offline"),
        "gw-2": _status("gw-2", t=NOW - 1000),
        "gw-4": WireError("rssi_range", "x", "bad"),
    }
    rows = assess(found, NOW, expected=["gw-5", "gw-3"], stale_s=180)
    assert [(r.gw, r.state) for r in rows] == [
        ("gw-1", "offline"), ("gw-2", "stale"), ("gw-3", "online"), ("gw-4", "invalid"),
        ("gw-5", "missing"),
    ]
    assert [r.ok for r in rows] == [False, False, True, False, False]


def test_table_columns():
    rows = assess({"gw-1": _status("gw-1", spool=7), "gw-2": _status("gw-2", "offline")}, NOW,
                  expected=["gw-3"])
    lines = format_table(rows, NOW).splitlines()
    assert lines[0].split() == ["GATEWAY", "STATE", "SEEN", "BLE/S", "WIFI/S", "SPOOL",
                                "DROPPED", "TEMP", "VERSION"]
    assert lines[1].split() == ["gw-1", "online", "10s", "812.4", "41.2", "7", "0", "52.1C",
                                "0.1.0"]
    assert lines[2].split()[:3] == ["gw-2", "offline", "10s"]
    assert lines[3].split()[:3] == ["gw-3", "missing", "-"]
    assert lines[-1] == "3 gateway(s), 2 not online"


def test_parse_url():
    assert parse_url("mqtt://127.0.0.1") == ("127.0.0.1", 1883, False, None, None)
    assert parse_url("mqtts://u%40x:p%3Aw@h:9") == ("h", 9, True, "u@x", "p:w")
    with pytest.raises(FleetError):
        parse_url("http://h")


@pytest.mark.servers
def test_fleet_against_broker_with_provisioned_acls(tmp_path):
    site = load_site(sample_site_path())
    gw_a, gw_b = site.gateways[0].id, site.gateways[1].id
    a = provision(site, gw_a, tmp_path)
    b = provision(site, gw_b, tmp_path)
    (tmp_path / "passwd").write_text(
        a.passwd.read_text() + b.passwd.read_text() + password_line("ops", "ops-pw") + "\n")
    (tmp_path / "acl").write_text(
        a.acl.read_text() + b.acl.read_text() + "user ops\ntopic read mallsense/#\n")
    sec = MosquittoSecurity(password_file=str(tmp_path / "passwd"),
                            acl_file=str(tmp_path / "acl"), allow_anonymous=False)
    with Mosquitto(security=sec) as broker:
        now = time.time()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="gw-a",
                             protocol=mqtt.MQTTv5)
        client.username_pw_set(a.username, a.password)
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        own = Status(site.id, gw_a, now, "online", "0.1.0", 5.0, {"ble": 10.0}, 0, 3, 0, 48.0)
        # gw_a speaking for gw_b: the broker must drop it (ACL), so gw_b stays silent.
        forged = Status(site.id, gw_b, now, "online", "0.1.0")
        infos = [client.publish(str(Topic.status(site.id, gw_a)), own.encode(), 1, retain=True),
                 client.publish(str(Topic.status(site.id, gw_b)), forged.encode(), 1, retain=True)]
        for info in infos:
            info.wait_for_publish(5)
        client.disconnect()
        client.loop_stop()

        found = collect_statuses(broker.url, site.id, wait_s=3.0, username="ops",
                                 password="ops-pw")
        assert found == {gw_a: own}
        with pytest.raises(FleetError):
            collect_statuses(broker.url, site.id, wait_s=3.0, username="ops", password="wrong")

        url = f"mqtt://ops:ops-pw@127.0.0.1:{broker.port}"
        assert main(["fleet", "--mqtt", url, "--site", site.id, "--wait", "2"]) == 0
        assert main(["fleet", "--mqtt", url, "--site", site.id, "--wait", "2",
                     "--site-file", str(sample_site_path())]) == 1
