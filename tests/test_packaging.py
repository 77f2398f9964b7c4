"""Packaging: the packages import, the extras stay lean, and `mallsense --help` lists only
subcommands that work."""
from __future__ import annotations

import importlib
import importlib.metadata as md
import subprocess
import sys

import pytest

from mallsense.cli import COMMAND_MODULES, build_parser

PACKAGES = ("edge", "gateway", "locate", "analytics", "firmware_sim", "dashboards", "mallsense")


@pytest.mark.parametrize("name", PACKAGES)
def test_top_level_packages_import(name):
    mod = importlib.import_module(name)
    assert mod.__file__ is not None


def _extra_requirements(extra: str) -> set[str]:
    reqs = md.requires("mallsense") or []
    names = set()
    for r in reqs:
        if f'extra == "{extra}"' in r:
            names.add(r.split(";")[0].split(">")[0].split("=")[0].split("[")[0].strip().lower())
    return names


def test_edge_extra_is_only_what_a_pi_needs():
    # A Raspberry Pi gateway installs radios and MQTT, not scipy, InfluxDB or Grafana clients.
    assert _extra_requirements("edge") == {"bleak", "paho-mqtt"}


def test_test_extra_pulls_everything():
    assert "mallsense" in _extra_requirements("test")
    assert {"pytest", "pytest-benchmark", "hypothesis"} <= _extra_requirements("test")


def test_console_script_is_installed():
    eps = [ep for ep in md.entry_points(group="console_scripts") if ep.name == "mallsense"]
    assert eps and eps[0].value == "mallsense.cli:main"


def _subcommands() -> list[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return list(action.choices)


def test_help_lists_every_registered_command():
    out = subprocess.run([sys.executable, "-m", "mallsense.cli", "--help"],
                         capture_output=True, text=True, check=True).stdout
    cmds = _subcommands()
    assert len(cmds) >= len(COMMAND_MODULES)
    for c in cmds:
        assert c in out


@pytest.mark.parametrize("command", _subcommands())
def test_every_subcommand_answers_help(command):
    proc = subprocess.run([sys.executable, "-m", "mallsense.cli", command, "--help"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout


def test_unknown_subcommand_is_a_clear_error():
    proc = subprocess.run([sys.executable, "-m", "mallsense.cli", "teleport"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "invalid choice: 'teleport'" in proc.stderr
