"""`mallsense edge` / `python -m edge`: config check, errors naming key paths, opt-out helper."""
from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60)


def _toml(tmp_path: Path, extra: str = "") -> Path:
    (tmp_path / "secret").write_bytes(b"cli-test-secret-0123456789")
    pcap = REPO.parent / "shared/data/real/probe-fryza-brno/position_1/" \
        "sc6-61_2024-03-16_anonymized.pcap"
    p = tmp_path / "edge.toml"
    p.write_text(f"""
[gateway]
site = "mall1"
id = "gw-01"
state_dir = "{tmp_path / 'state'}"
[privacy]
secret_file = "{tmp_path / 'secret'}"
[replay]
files = ["{pcap}"]
{extra}
""")
    return p


def test_check_valid_config(tmp_path):
    r = _run("-m", "mallsense.cli", "edge", "--config", str(_toml(tmp_path)), "--check")
    assert r.returncode == 0, r.stderr
    assert "is valid" in r.stderr


def test_bad_config_exit_2_names_key(tmp_path):
    r = _run("-m", "edge", "--config", str(_toml(tmp_path, "[mqtt]\nport = 0\n")))
    assert r.returncode == 2
    assert "mqtt.port" in r.stderr and "1..65535" in r.stderr


def test_missing_secret_exit_2_with_advice(tmp_path):
    p = _toml(tmp_path)
    (tmp_path / "secret").unlink()
    r = _run("-m", "edge", "--config", str(p))
    assert r.returncode == 2
    assert "site secret missing" in r.stderr and "provision" in r.stderr


def test_opt_out_hash(tmp_path):
    r = _run("-m", "edge", "--config", str(_toml(tmp_path)), "--opt-out-hash",
             "AA:BB:CC:DD:EE:FF")
    assert r.returncode == 0, r.stderr
    expected = hashlib.sha256(b"cli-test-secret-0123456789" + bytes.fromhex("aabbccddeeff"))
    assert r.stdout.strip() == expected.hexdigest()


def test_listed_in_mallsense_help():
    r = _run("-m", "mallsense.cli", "--help")
    assert r.returncode == 0 and "edge" in r.stdout
