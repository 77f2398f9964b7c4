"""`mallsense site check` and `mallsense site draw`, driven through the real entry point."""
from __future__ import annotations

import struct
import subprocess
import sys
from collections import Counter

import pytest

from gateway.site import load_site, sample_site_path
from mallsense.cli import build_parser, main
from tests.site.tiny import TINY, broken

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_site_command_is_registered_with_check_and_draw():
    parser = build_parser()
    args = parser.parse_args(["site", "check", "x.toml"])
    assert args.func.__name__ == "cmd_check" and args.file == "x.toml"
    args = parser.parse_args(["site", "draw", "x.toml", "--out", "d"])
    assert args.func.__name__ == "cmd_draw" and args.out == "d"
    with pytest.raises(SystemExit):
        parser.parse_args(["site", "draw", "x.toml"])  # --out is required


def test_check_sample_prints_summary_and_exits_0(capsys):
    assert main(["site", "check", str(sample_site_path())]) == 0
    out = capsys.readouterr().out
    site = load_site(sample_site_path())
    kinds = Counter(z.kind for z in site.zones)
    assert "site sample-mall: Sample Mall Lindenhof (Europe/Berlin)" in out
    assert "floors: 4" in out
    assert f"store {kinds['store']}" in out and f"corridor {kinds['corridor']}" in out
    assert f"gateways: {len(site.gateways)} (ble 50, wifi" in out
    l1 = next(line for line in out.splitlines() if line.strip().startswith("L1"))
    area = site.walkable_area_m2("L1")
    assert "gateways  14" in l1
    assert f"density {1000 * 14 / area:.2f} per 1000 m^2" in l1
    assert "per 1000 m^2" in out.splitlines()[-1]


def test_check_broken_file_lists_problems_and_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(broken(('id = "shop-b"', 'id = "shop-a"'), ("x = 30.0", 'x = "30"')))
    assert main(["site", "check", str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{bad}: 2 problem(s)" in captured.err
    assert f"{bad}:" in captured.err and "zones[2].id: duplicate id 'shop-a'" in captured.err
    assert "gateways[1].x: expected a number, got string" in captured.err


def test_check_missing_file_exits_2(tmp_path, capsys):
    assert main(["site", "check", str(tmp_path / "nope.toml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_check_through_the_console_script(tmp_path):
    good = tmp_path / "tiny.toml"
    good.write_text(TINY)
    res = subprocess.run([sys.executable, "-m", "mallsense.cli", "site", "check", str(good)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "site tiny: Tiny Mall" in res.stdout and "floors: 2" in res.stdout


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_draw_writes_one_png_per_floor(tmp_path, capsys):
    out = tmp_path / "plans"
    assert main(["site", "draw", str(sample_site_path()), "--out", str(out), "--dpi", "60"]) == 0
    pngs = sorted(out.glob("*.png"))
    assert [p.name for p in pngs] == [f"sample-mall_{f}.png" for f in ("B1", "L1", "L2", "L3")]
    for p in pngs:
        data = p.read_bytes()
        w, h = _png_size(data)
        assert w >= 600 and h >= 300 and 10_000 < len(data) < 5_000_000
        assert data.endswith(b"IEND\xaeB`\x82")
    assert capsys.readouterr().out.splitlines() == [str(p) for p in pngs]


def test_draw_refuses_a_broken_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(broken(('kind = "entrance"', 'kind = "corridor"')))
    assert main(["site", "draw", str(bad), "--out", str(tmp_path / "plans")]) == 2
    assert not (tmp_path / "plans").exists()
