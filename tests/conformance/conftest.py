"""Print the installed versions of the third-party libraries the conformance tests pin.

A conformance failure is read together with these versions, so they go into the terminal
summary of every run that collected this folder (not only on -s).
"""
from __future__ import annotations

from tests.conformance._versions import PINNED, installed


def pytest_terminal_summary(terminalreporter):
    terminalreporter.section("conformance: installed third-party versions")
    for dist in PINNED:
        terminalreporter.write_line(f"{dist} {installed(dist)}")
