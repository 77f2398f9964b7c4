"""Classic pcap and pcapng readers, written by hand with struct (no scapy on the gateway).

Classic pcap: https://www.tcpdump.org/manpages/pcap-savefile.5.html (both byte orders, micro- and
nanosecond magic). pcapng: IETF draft-ietf-opsawg-pcapng (SHB, IDB with if_tsresol, EPB, SPB,
obsolete PB; other blocks skipped). Each record is (t unix seconds, link type, frame bytes).
A damaged file ends the iteration with a CaptureFileError after the good records.
"""
from __future__ import annotations

import logging
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from edge.errors import CaptureFileError

log = logging.getLogger(__name__)

LINKTYPE_RADIOTAP = 127
LINKTYPE_BLE_LL_PHDR = 256
LINKTYPE_NORDIC_BLE = 272

_PCAP_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
_PCAPNG_SHB = 0x0A0D0D0A
_BOM = 0x1A2B3C4D
_MAX_RECORD = 1 << 20  # no radio frame is larger; bigger lengths mean a damaged file


@dataclass(frozen=True, slots=True)
class Record:
    """t: capture time, unix seconds. linktype: pcap LINKTYPE_*. data: the captured bytes."""

    t: float
    linktype: int
    data: bytes


def read_capture(path: str | Path) -> Iterator[Record]:
    """Records of a classic pcap or pcapng file, in file order."""
    path = str(path)
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed by the generator's finally
    except OSError as exc:
        raise CaptureFileError(path, str(exc)) from exc
    try:
        head = f.read(4)
        if head in _PCAP_MAGIC:
            yield from _read_pcap(f, path, *_PCAP_MAGIC[head])
        elif len(head) == 4 and struct.unpack("<I", head)[0] == _PCAPNG_SHB:
            yield from _read_pcapng(f, path, head)
        else:
            raise CaptureFileError(path, f"not a pcap/pcapng file (magic {head.hex()})")
    finally:
        f.close()


def _read_pcap(f: BinaryIO, path: str, bo: str, unit: float) -> Iterator[Record]:
    hdr = f.read(20)
    if len(hdr) < 20:
        raise CaptureFileError(path, "truncated pcap header")
    _vmaj, _vmin, _zone, _sig, _snap, network = struct.unpack(bo + "HHiIII", hdr)
    linktype = network & 0x0FFFFFFF
    rec = struct.Struct(bo + "IIII")
    while True:
        rh = f.read(16)
        if not rh:
            return
        if len(rh) < 16:
            raise CaptureFileError(path, "truncated record header")
        sec, frac, incl, _orig = rec.unpack(rh)
        if incl > _MAX_RECORD:
            raise CaptureFileError(path, f"record length {incl} too large")
        data = f.read(incl)
        if len(data) < incl:
            raise CaptureFileError(path, "truncated record")
        yield Record(sec + frac * unit, linktype, data)


@dataclass
class _Iface:
    linktype: int
    tsunit: float


def _read_pcapng(f: BinaryIO, path: str, head: bytes) -> Iterator[Record]:
    bo = "<"
    ifaces: list[_Iface] = []
    first = True
    while True:
        bh = head if first else f.read(4)
        first = False
        if not bh:
            return
        lenb = f.read(4)
        if len(bh) < 4 or len(lenb) < 4:
            raise CaptureFileError(path, "truncated block header")
        btype = struct.unpack(bo + "I", bh)[0]
        if btype == _PCAPNG_SHB:
            bom = f.read(4)
            if len(bom) < 4:
                raise CaptureFileError(path, "truncated section header")
            bo = "<" if struct.unpack("<I", bom)[0] == _BOM else ">"
            if struct.unpack(bo + "I", bom)[0] != _BOM:
                raise CaptureFileError(path, "bad byte-order magic")
            blen = struct.unpack(bo + "I", lenb)[0]
            if blen < 28 or blen > _MAX_RECORD or blen % 4:
                raise CaptureFileError(path, f"bad section header length {blen}")
            body = f.read(blen - 12)
            if len(body) < blen - 12:
                raise CaptureFileError(path, "truncated section header")
            ifaces = []
            continue
        blen = struct.unpack(bo + "I", lenb)[0]
        if blen < 12 or blen > _MAX_RECORD or blen % 4:
            raise CaptureFileError(path, f"bad block length {blen}")
        body = f.read(blen - 8)
        if len(body) < blen - 8:
            raise CaptureFileError(path, "truncated block")
        body = body[:-4]  # trailing copy of the block length
        if btype == 1:  # Interface Description Block
            if len(body) < 8:
                raise CaptureFileError(path, "short interface block")
            linktype = struct.unpack_from(bo + "H", body, 0)[0]
            ifaces.append(_Iface(linktype, _tsresol(body[8:], bo)))
        elif btype in (6, 2):  # Enhanced Packet Block, obsolete Packet Block
            if len(body) < 20:
                raise CaptureFileError(path, "short packet block")
            if btype == 6:
                iface, hi, lo, cap, _orig = struct.unpack_from(bo + "IIIII", body, 0)
            else:
                iface, _drops, hi, lo, cap, _orig = struct.unpack_from(bo + "HHIIII", body, 0)
            data_at = 20
            if iface >= len(ifaces) or data_at + cap > len(body):
                raise CaptureFileError(path, "packet block refers to no interface or overruns")
            ifc = ifaces[iface]
            yield Record(((hi << 32) | lo) * ifc.tsunit, ifc.linktype,
                         bytes(body[data_at:data_at + cap]))
        elif btype == 3:  # Simple Packet Block: interface 0, no timestamp
            if not ifaces or len(body) < 4:
                raise CaptureFileError(path, "simple packet block without interface")
            orig = struct.unpack_from(bo + "I", body, 0)[0]
            yield Record(0.0, ifaces[0].linktype, bytes(body[4:4 + orig]))


def _tsresol(opts: bytes, bo: str) -> float:
    pos = 0
    while pos + 4 <= len(opts):
        code, olen = struct.unpack_from(bo + "HH", opts, pos)
        pos += 4
        if code == 0:
            break
        if code == 9 and olen >= 1 and pos < len(opts):  # if_tsresol
            v = opts[pos]
            return 2.0 ** -(v & 0x7F) if v & 0x80 else 10.0 ** -v
        pos += (olen + 3) & ~3
    return 1e-6
