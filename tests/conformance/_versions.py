"""Installed distribution versions, for the report header and the floor checks."""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

PINNED = ("paho-mqtt", "bleak", "influxdb-client", "grafana-client", "grafana_foundation_sdk",
          "scapy")


def installed(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"
