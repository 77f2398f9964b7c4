"""Config: typed, validated once, every problem named by key path."""
from __future__ import annotations

import pytest

from edge.config import load_config, parse_config
from edge.errors import ConfigError, SiteSecretMissing


def _base(tmp_path, **over):
    secret = tmp_path / "secret"
    secret.write_bytes(b"0123456789abcdef0123")
    data = {
        "gateway": {"site": "mall1", "id": "gw-01", "state_dir": str(tmp_path / "state")},
        "privacy": {"secret_file": str(secret)},
        "mqtt": {"host": "127.0.0.1", "port": 1883},
        "ble": {"enabled": True},
    }
    for table, values in over.items():
        data.setdefault(table, {}).update(values)
    return data


def test_valid_config_typed(tmp_path):
    cfg = parse_config(_base(tmp_path, wifi={"enabled": True, "channels": [1, 6, 11]},
                             privacy={"beacons": ["41424344-4546-4748-4940-414243444546:1:2"],
                                      "member_uuid": "E2C56DB5-DFFB-48D2-B060-D0F5A71096E0"}))
    assert cfg.site == "mall1" and cfg.window_s == 1.0 and cfg.mqtt.port == 1883
    assert cfg.wifi.channels == (1, 6, 11) and cfg.ble.scanning_mode == "passive"
    assert cfg.member_uuid == "e2c56db5-dffb-48d2-b060-d0f5a71096e0"
    assert cfg.read_secret() == b"0123456789abcdef0123"
    with pytest.raises(AttributeError):
        cfg.site = "other"  # frozen


def test_all_problems_named_by_key_path(tmp_path):
    data = _base(tmp_path, mqtt={"port": 70000, "tls": "yes", "bogus": 1},
                 gateway={"window_s": 0, "id": "gw 01"},
                 ble={"scanning_mode": "sideways", "enabled": False},
                 privacy={"beacons": ["not-a-beacon"]}, replay={"files": ["/nope.pcap"]})
    data["extra"] = {}
    with pytest.raises(ConfigError) as err:
        parse_config(data, "edge.toml")
    keys = {k for k, _ in err.value.problems}
    assert {"mqtt.port", "mqtt.tls", "mqtt.bogus", "gateway.window_s", "gateway.id",
            "ble.scanning_mode", "privacy.beacons[0]", "replay.files[0]", "extra"} <= keys
    assert "edge.toml" in str(err.value) and "mqtt.port: must be an integer in 1..65535" in \
        str(err.value)


def test_missing_required_and_no_source(tmp_path):
    with pytest.raises(ConfigError) as err:
        parse_config({"gateway": {}, "privacy": {}})
    keys = {k for k, _ in err.value.problems}
    assert {"gateway.site", "gateway.id", "privacy.secret_file", "ble.enabled"} <= keys


def test_secret_missing_and_short(tmp_path):
    cfg = parse_config(_base(tmp_path, privacy={"secret_file": str(tmp_path / "none")}))
    with pytest.raises(SiteSecretMissing, match="none"):
        cfg.read_secret()
    (tmp_path / "short").write_bytes(b"abc")
    cfg = parse_config(_base(tmp_path, privacy={"secret_file": str(tmp_path / "short")}))
    with pytest.raises(SiteSecretMissing, match="need >= 16"):
        cfg.read_secret()


def test_load_config_file_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[gateway\n")
    with pytest.raises(ConfigError, match="not TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="unreadable"):
        load_config(tmp_path / "missing.toml")


def test_sample_config_is_valid(tmp_path):
    from pathlib import Path
    import tomllib
    sample = Path(__file__).resolve().parents[2] / "deploy" / "edge.sample.toml"
    data = tomllib.loads(sample.read_text())
    # Paths on a Pi do not exist here: point the file keys at temporary files.
    (tmp_path / "secret").write_bytes(b"x" * 32)
    data["privacy"]["secret_file"] = str(tmp_path / "secret")
    data["privacy"].pop("opt_out_file", None)
    for key in ("ca_file", "cert_file", "key_file", "password_file"):
        if key in data["mqtt"]:
            (tmp_path / key).write_text("x")
            data["mqtt"][key] = str(tmp_path / key)
    cfg = parse_config(data, str(sample))
    assert cfg.ble.enabled and cfg.mqtt.tls
