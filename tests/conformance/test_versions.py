"""The library versions the code is written against.

The floors are what our code needs, not what pyproject.toml says: the BlueZ scanner passes
``bluez={"adapter": ...}`` and imports ``bleak.args.bluez``, which bleak only honours from 3.0
(``bleak.args`` appeared in 1.0.0; the ``adapter`` key of ``BlueZScannerArgs`` in 3.0.0, before
which it is silently ignored and the default adapter scans). pyproject's ``bleak>=0.22`` admits
versions that break edge/scanners/bleak_scanner.py.
"""
from __future__ import annotations

import re

import pytest

from tests.conformance._versions import installed

# (distribution, lowest (major, minor) our code works with, why)
FLOORS = [
    ("paho-mqtt", (2, 0), "CallbackAPIVersion.VERSION2 callbacks, ReasonCode.is_failure"),
    ("bleak", (3, 0), "BleakScanner(bluez={'adapter': ...}), bleak.args.bluez.OrPattern"),
    ("influxdb-client", (1, 40), "WriteApi.write(record=bytes), SYNCHRONOUS, retries kwarg"),
    ("grafana-client", (4, 0), "GrafanaApi.from_url(credential=, timeout=)"),
    ("scapy", (2, 5), "BTLE_RF, Dot11ProbeReq, RadioTap ChannelFrequency/dBm_AntSignal"),
]


def _major_minor(v: str) -> tuple[int, int]:
    v = v.split("!")[-1]  # PEP 440 epoch (grafana_foundation_sdk uses one)
    m = re.match(r"(\d+)\.(\d+)", v)
    assert m, f"unparseable version {v!r}"
    return int(m.group(1)), int(m.group(2))


@pytest.mark.parametrize("dist,floor,why", FLOORS, ids=[f[0] for f in FLOORS])
def test_installed_version_meets_floor(dist, floor, why, record_property):
    v = installed(dist)
    record_property(dist, v)
    assert v != "not installed", f"{dist} is not installed (needed for {why})"
    assert _major_minor(v) >= floor, f"{dist} {v} < {floor}: we rely on {why}"


def test_grafana_foundation_sdk_targets_grafana_10_or_later(record_property):
    # Its version is "<build epoch>!<grafana version>": the models follow that Grafana's schema.
    v = installed("grafana_foundation_sdk")
    record_property("grafana_foundation_sdk", v)
    assert _major_minor(v) >= (10, 0), v
