"""The hand-written pcap / pcapng readers, against built files of every variant we accept."""
from __future__ import annotations

import struct

import pytest

from edge.errors import CaptureFileError, EdgeError
from edge.pcap import read_capture


def _pcap(bo: str, nano: bool, linktype: int, frames: list[tuple[int, int, bytes]]) -> bytes:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = struct.pack(bo + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)
    for sec, frac, data in frames:
        out += struct.pack(bo + "IIII", sec, frac, len(data), len(data)) + data
    return out


def _block(bo, btype, body):
    body += b"\x00" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack(bo + "II", btype, n) + body + struct.pack(bo + "I", n)


def _pcapng(bo: str, linktype: int, tsresol: int | None, packets: list[tuple[int, bytes]]) -> bytes:
    out = _block(bo, 0x0A0D0D0A, struct.pack(bo + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    opts = b""
    if tsresol is not None:
        opts = struct.pack(bo + "HH", 9, 1) + bytes([tsresol, 0, 0, 0]) + struct.pack(bo + "HH", 0, 0)
    out += _block(bo, 1, struct.pack(bo + "HHI", linktype, 0, 65535) + opts)
    for ts, data in packets:
        out += _block(bo, 6, struct.pack(bo + "IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(data),
                                         len(data)) + data)
    out += _block(bo, 5, b"statistics are skipped")
    return out


@pytest.mark.parametrize("bo", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_classic_pcap(tmp_path, bo, nano):
    p = tmp_path / "a.pcap"
    frac = 500_000_000 if nano else 500_000
    p.write_bytes(_pcap(bo, nano, 127, [(1700000000, frac, b"abc"), (1700000001, 0, b"")]))
    recs = list(read_capture(p))
    assert [(r.t, r.linktype, r.data) for r in recs] == [
        (1700000000.5, 127, b"abc"), (1700000001.0, 127, b"")]


@pytest.mark.parametrize("bo", ["<", ">"])
@pytest.mark.parametrize("tsresol,scale", [(None, 1e-6), (9, 1e-9), (0x80 | 10, 2.0 ** -10)])
def test_pcapng(tmp_path, bo, tsresol, scale):
    p = tmp_path / "a.pcapng"
    ts = int(1700000000 / scale)
    p.write_bytes(_pcapng(bo, 256, tsresol, [(ts, b"\x01\x02\x03"), (ts + 7, b"x" * 33)]))
    recs = list(read_capture(p))
    assert [r.data for r in recs] == [b"\x01\x02\x03", b"x" * 33]
    assert recs[0].linktype == 256
    assert recs[0].t == pytest.approx(1700000000, abs=1e-3)


def test_damaged_files_raise_capture_error_after_good_records(tmp_path):
    good = _pcap("<", False, 127, [(1, 0, b"abc"), (2, 0, b"defg")])
    p = tmp_path / "cut.pcap"
    p.write_bytes(good[:-2])
    it = read_capture(p)
    assert next(it).data == b"abc"
    with pytest.raises(CaptureFileError):
        next(it)
    q = tmp_path / "junk.pcap"
    q.write_bytes(b"hello world")
    with pytest.raises(EdgeError, match="not a pcap"):
        list(read_capture(q))
    with pytest.raises(CaptureFileError):
        list(read_capture(tmp_path / "missing.pcap"))
    ng = _pcapng("<", 256, None, [(5, b"abc")])
    r = tmp_path / "cut.pcapng"
    r.write_bytes(ng[:40])
    with pytest.raises(CaptureFileError):
        list(read_capture(r))
