"""Shared fixtures: the real servers, started on free loopback ports with their own data folders.

Session-scoped servers are shared by read-mostly tests; the `fresh_*` fixtures give a test its own
server that it may stop, kill and restart. Every server is stopped when its scope ends, also when
a test fails.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from mallsense.servers import InfluxDB1, Mosquitto, VictoriaMetrics

REPO_ROOT = Path(__file__).resolve().parents[1]
# CI clones the repo with shared/ beside it; so does every developer checkout.
REAL_DATA = REPO_ROOT.parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def real_data() -> Path:
    assert REAL_DATA.is_dir(), f"real recordings not found at {REAL_DATA}"
    return REAL_DATA


@pytest.fixture(scope="session")
def mosquitto():
    with Mosquitto() as broker:
        yield broker


@pytest.fixture
def fresh_mosquitto():
    with Mosquitto() as broker:
        yield broker


@pytest.fixture(scope="session")
def influxdb():
    with InfluxDB1() as db:
        yield db


@pytest.fixture
def fresh_influxdb():
    with InfluxDB1() as db:
        yield db


@pytest.fixture(scope="session")
def victoriametrics():
    with VictoriaMetrics() as vm:
        yield vm
