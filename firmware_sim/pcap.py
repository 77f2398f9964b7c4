"""Classic pcap files (the libpcap format, microsecond timestamps), written in big blocks."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

_GLOBAL = struct.Struct("<IHHiIII")
MAGIC_US = 0xA1B2C3D4
SNAPLEN = 65535


class PcapWriter:
    """Append-only pcap file. Frames come as (n, L) uint8 blocks with their timestamps."""

    def __init__(self, path: Path, linktype: int) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "wb")
        self._f.write(_GLOBAL.pack(MAGIC_US, 2, 4, 0, 0, SNAPLEN, linktype))
        self.frames = 0

    def write(self, t: np.ndarray, blocks: list[np.ndarray], which: np.ndarray,
              row: np.ndarray) -> None:
        """Write frames in the order given: frame i is row ``row[i]`` of ``blocks[which[i]]``,
        with timestamp ``t[i]`` (unix s)."""
        n = len(t)
        if n == 0:
            return
        lens = np.array([b.shape[1] for b in blocks], np.int64)[which]
        rec = 16 + lens
        start = np.concatenate([[0], np.cumsum(rec)[:-1]])
        buf = np.zeros(int(rec.sum()), np.uint8)
        us = np.round(np.asarray(t) * 1e6).astype(np.int64)
        hdr = np.zeros((n, 4), "<u4")
        hdr[:, 0], hdr[:, 1] = us // 1_000_000, us % 1_000_000
        hdr[:, 2] = hdr[:, 3] = lens
        buf[start[:, None] + np.arange(16)] = hdr.view(np.uint8).reshape(n, 16)
        for b, block in enumerate(blocks):
            m = which == b
            if m.any():
                L = block.shape[1]
                buf[(start[m] + 16)[:, None] + np.arange(L)] = block[row[m]]
        self._f.write(buf.tobytes())
        self.frames += n

    def close(self) -> None:
        self._f.close()
