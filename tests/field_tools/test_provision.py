"""`mallsense gateway provision`: files, modes, exact ACL, password hashes mosquitto accepts."""
from __future__ import annotations

import base64
import hashlib
import os
import stat
import tomllib

import pytest

from gateway.provision import (
    MOSQUITTO_PASSWD,
    ProvisionError,
    acl_lines,
    check_mosquitto_hash,
    mosquitto_hash,
    password_line,
    provision,
    username_for,
)
from gateway.site import load_site, sample_site_path
from mallsense.cli import main


@pytest.fixture(scope="module")
def site():
    return load_site(sample_site_path())


def test_provision_writes_config_passwd_acl_and_secret(site, tmp_path):
    gw = site.gateways[0]
    done = provision(site, gw.id, tmp_path, broker_url="mqtts://broker.example:8883",
                     secret_path="/etc/ms/site.secret", spool_path="/var/spool/ms")
    assert done.username == f"{site.id}.{gw.id}"
    cfg = tomllib.loads(done.config.read_text())
    assert cfg == {
        "gateway": {"site": site.id, "id": gw.id, "state_dir": "/var/spool/ms"},
        "privacy": {"secret_file": "/etc/ms/site.secret"},
        "mqtt": {"host": "broker.example", "port": 8883, "username": done.username,
                 "password": done.password, "tls": True},
        "ble": {"enabled": "ble" in gw.radios},
        "wifi": {"enabled": "wifi" in gw.radios},
    }
    assert done.acl.read_text() == (
        f"# gateway {gw.id} of site {site.id}: publish only under its own topics\n"
        f"user {site.id}.{gw.id}\n"
        f"topic write mallsense/v1/{site.id}/gw/{gw.id}/#\n"
    )
    user, entry = done.passwd.read_text().rstrip("\n").split(":", 1)
    assert user == done.username and check_mosquitto_hash(done.password, entry)
    assert not check_mosquitto_hash(done.password + "x", entry)
    assert done.secret_created and len(done.site_secret.read_bytes()) == 32
    for path in (done.config, done.passwd, done.site_secret):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(done.password) >= 32


def test_second_gateway_shares_the_site_secret_and_gets_its_own_password(site, tmp_path):
    a = provision(site, site.gateways[0].id, tmp_path)
    secret = a.site_secret.read_bytes()
    b = provision(site, site.gateways[1].id, tmp_path)
    assert not b.secret_created and b.site_secret.read_bytes() == secret
    assert a.password != b.password and a.username != b.username


def test_refuses_unknown_gateway_and_overwrite(site, tmp_path):
    with pytest.raises(ProvisionError, match="no gateway 'gw-nope'"):
        provision(site, "gw-nope", tmp_path)
    first = provision(site, site.gateways[0].id, tmp_path)
    with pytest.raises(ProvisionError, match="--force"):
        provision(site, site.gateways[0].id, tmp_path)
    again = provision(site, site.gateways[0].id, tmp_path, force=True)
    assert again.password != first.password


def test_refuses_short_site_secret(site, tmp_path):
    (tmp_path / "site.secret").write_bytes(b"short")
    with pytest.raises(ProvisionError, match="fewer than 16 bytes"):
        provision(site, site.gateways[0].id, tmp_path)


def test_own_hash_matches_pbkdf2_sha512_in_mosquitto_format():
    salt = bytes(range(12))
    entry = mosquitto_hash("pw", salt=salt, iterations=101)
    digest = hashlib.pbkdf2_hmac("sha512", b"pw", salt, 101)
    assert entry == f"$7$101${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    assert check_mosquitto_hash("pw", entry)
    assert not check_mosquitto_hash("pw", "$6$abc$def") and not check_mosquitto_hash("pw", "junk")


def test_tool_and_own_hash_are_the_same_format():
    assert os.access(MOSQUITTO_PASSWD, os.X_OK), "scripts/setup.sh installs mosquitto"
    tool = password_line("a.b", "s3cret")
    own = password_line("a.b", "s3cret", tool=None)
    for line in (tool, own):
        user, entry = line.split(":", 1)
        assert user == "a.b" and entry.startswith("$7$") and check_mosquitto_hash("s3cret", entry)


def test_acl_refuses_wildcard_ids():
    with pytest.raises(Exception):
        acl_lines("site", "+")
    assert username_for("s", "g") == "s.g"


def test_cli_provision(tmp_path, capsys):
    gw = load_site(sample_site_path()).gateways[0].id
    rc = main(["gateway", "provision", "--site", str(sample_site_path()), "--gateway", gw,
               "--out", str(tmp_path), "--broker", "mqtt://127.0.0.1:1883"])
    assert rc == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{gw}.toml", f"{gw}.passwd", f"{gw}.acl", "site.secret"])
    assert "broker user" in capsys.readouterr().out
    assert main(["gateway", "provision", "--site", str(sample_site_path()), "--gateway", "zz",
                 "--out", str(tmp_path)]) == 2
