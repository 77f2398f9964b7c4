"""Bad command lines and bad config files get clear errors: exit code 2 and a message that names
the offending flag or key (subprocess tests of the installed `mallsense` command)."""
from __future__ import annotations

import subprocess

import pytest

from gateway.site import sample_site_path
from tests.faults.harness import REPO, mallsense_cmd


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(mallsense_cmd() + list(args), cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=False)


GOOD_EDGE = """
[gateway]
site = "mall1"
id = "gw-01"
state_dir = "{state}"
[privacy]
secret_file = "{secret}"
[replay]
files = ["{pcap}"]
"""


@pytest.fixture
def edge_files(tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(b"0123456789abcdef0123")
    pcap = tmp_path / "x.pcap"
    pcap.write_bytes(b"")
    return tmp_path, secret, pcap


@pytest.mark.parametrize("change, key", [
    (("window_s = 1.0", "window_s = 0"), "gateway.window_s"),
    (("window_s = 1.0", 'window_s = "fast"'), "gateway.window_s"),
    (("window_s = 1.0", "colour = 1"), "gateway.colour"),
    (("[replay]", "[mqtt]\nport = 99999\n[replay]"), "mqtt.port"),
    (("[replay]", "[mqtt]\nmax_inflight = 0\n[replay]"), "mqtt.max_inflight"),
    (('id = "gw-01"', 'id = "gw/01"'), "gateway.id"),
    (('id = "gw-01"', 'id = "gw\u202e01"'), "gateway.id"),
    (("[replay]", "[bogus]\nx = 1\n[replay]"), "bogus"),
    (("window_s = 1.0", "window_s = 1.0\nwindow_s = 2.0"), "<file>"),
])
def test_bad_edge_config_exit_2_names_the_key(edge_files, change, key):
    tmp, secret, pcap = edge_files
    text = GOOD_EDGE.format(state=tmp / "state", secret=secret, pcap=pcap)
    text = text.replace('id = "gw-01"', 'id = "gw-01"\nwindow_s = 1.0')
    bad = tmp / "edge.toml"
    bad.write_text(text.replace(*change))
    r = _run("edge", "--config", str(bad), "--check")
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert key in r.stderr, r.stderr


def test_good_edge_config_checks(edge_files):
    tmp, secret, pcap = edge_files
    good = tmp / "edge.toml"
    good.write_text(GOOD_EDGE.format(state=tmp / "state", secret=secret, pcap=pcap))
    r = _run("edge", "--config", str(good), "--check")
    assert r.returncode == 0, r.stderr


def test_missing_edge_config_file(tmp_path):
    r = _run("edge", "--config", str(tmp_path / "nope.toml"), "--check")
    assert r.returncode == 2 and "nope.toml" in r.stderr, r.stderr


def test_bad_site_file_lists_the_field(tmp_path):
    text = sample_site_path().read_text()
    bad = tmp_path / "site.toml"
    bad.write_text(text.replace("elevation_m = 0.0", 'elevation_m = "ground"', 1))
    r = _run("site", "check", str(bad))
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "elevation_m" in r.stderr + r.stdout


INGEST_OK = ["--site", str(sample_site_path()), "--mqtt", "mqtt://127.0.0.1:1",
             "--influx", "http://127.0.0.1:1", "--db", "x", "--run-s", "0.1",
             "--spool", "/tmp/mallsense-cli-test-spool.db"]


@pytest.mark.parametrize("args, flag", [
    ([a for a in INGEST_OK if a not in ("--site", str(sample_site_path()))], "--site"),
    (INGEST_OK + ["--flush-s", "soon"], "--flush-s"),
    (INGEST_OK + ["--session-expiry", "-"], "--session-expiry"),
    (INGEST_OK + ["--batch-lines", "1.5"], "--batch-lines"),
    (INGEST_OK + ["--no-such-flag"], "--no-such-flag"),
    ([a if a != "mqtt://127.0.0.1:1" else "http://127.0.0.1:1" for a in INGEST_OK], "--mqtt"),
    ([a for a in INGEST_OK if a not in ("--db", "x")], "--db"),
    (INGEST_OK + ["--flush-s", "-1"], "--flush-s"),
    (INGEST_OK + ["--lateness-s", "-3"], "--lateness-s"),
    (INGEST_OK + ["--batch-lines", "0"], "--batch-lines"),
])
def test_bad_ingest_flags_exit_2_name_the_flag(args, flag):
    r = _run("ingest", *args)
    assert r.returncode == 2, (r.returncode, r.stderr[-800:])
    assert flag in r.stderr, r.stderr[-800:]


def test_ingest_with_a_bad_site_file(tmp_path):
    bad = tmp_path / "site.toml"
    bad.write_text("[site]\nid = 3\n")
    args = list(INGEST_OK)
    args[args.index("--site") + 1] = str(bad)
    r = _run("ingest", *args)
    assert r.returncode == 2, (r.returncode, r.stderr[-800:])
    assert str(bad) in r.stderr or "site.toml" in r.stderr


@pytest.mark.parametrize("value", ["0", "two"])
def test_bad_demo_edge_processes_exit_2_names_the_flag(tmp_path, value):
    r = _run("demo", "--out", str(tmp_path / "out"), "--edge-processes", value)
    assert r.returncode == 2, (r.returncode, r.stderr[-800:])
    assert "--edge-processes" in r.stderr, r.stderr[-800:]
    assert not (tmp_path / "out").exists()        # refused before anything started
