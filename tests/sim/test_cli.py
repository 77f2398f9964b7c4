"""`mallsense sim` end to end, small."""
from __future__ import annotations

import numpy as np

from firmware_sim import WINDOW_DTYPE
from mallsense.cli import main

from .conftest import read_csv


def test_sim_command_windows_and_frames(tmp_path, capsys):
    args = ["sim", "--seed", "5", "--start", "2026-11-21T16:00:00+01:00", "--duration", "15s",
            "--concurrent", "40", "--no-progress"]
    assert main(args + ["--out", str(tmp_path / "w"), "--level", "windows"]) == 0
    w = np.load(tmp_path / "w" / "windows.npy")
    assert w.dtype == WINDOW_DTYPE and len(w) > 100
    assert (np.diff(w["t"]) >= 0).all()
    assert main(args + ["--out", str(tmp_path / "f"), "--level", "frames"]) == 0
    caps = sorted((tmp_path / "f" / "captures").glob("*.pcap"))
    assert any(p.name.endswith(".ble.pcap") for p in caps)
    assert any(p.name.endswith(".wifi.pcap") for p in caps)
    for name in ("positions", "visits", "journeys", "purchases", "roles", "addresses",
                 "gateways", "beacons"):
        assert (tmp_path / "f" / "truth" / f"{name}.csv").is_file()
    roles = read_csv(tmp_path / "f" / "truth" / "roles.csv")
    assert {r["role"] for r in roles} == {"shopper", "passerby", "staff", "fixed"}
    # the same seed gives the same truth whatever the level
    a = (tmp_path / "w" / "truth" / "positions.csv").read_bytes()
    assert a == (tmp_path / "f" / "truth" / "positions.csv").read_bytes()
    assert "window rows" in capsys.readouterr().out


def test_sim_command_rejects_a_bad_duration(tmp_path, capsys):
    assert main(["sim", "--duration", "soon", "--out", str(tmp_path), "--no-progress"]) == 2
    assert "duration" in capsys.readouterr().err
