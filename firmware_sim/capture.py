"""Frames level: every received packet as bytes in per-gateway pcaps (gateway clock times)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from firmware_sim import devices as dv
from firmware_sim import frames


class CaptureWriter:
    def __init__(self, folder: Path, world) -> None:
        self.ids = world.receivers.ids
        has = world.receivers.has
        self.paths: dict[tuple[str, str], Path] = {}
        self._w: dict[tuple[int, int], object] = {}
        from firmware_sim.pcap import PcapWriter

        for k, gid in enumerate(self.ids):
            for r, (radio, lt) in enumerate((("ble", frames.LINKTYPE_BLE_PHDR),
                                             ("wifi", frames.LINKTYPE_RADIOTAP))):
                if has[r, k]:
                    p = Path(folder) / f"{gid}.{radio}.pcap"
                    self.paths[(gid, radio)] = p
                    self._w[(k, r)] = PcapWriter(p, lt)
        self._probe: dict[int, frames.ProbeTemplate] = {}
        self.frames = 0

    def _probe_template(self, key: int) -> frames.ProbeTemplate:
        t = self._probe.get(key)
        if t is None:
            model, ssid = divmod(key, len(dv.SSIDS))
            t = self._probe[key] = frames.ProbeTemplate(dv.MODELS[model], dv.SSIDS[ssid])
        return t

    def write(self, rx: np.ndarray) -> None:
        for r in (0, 1):
            sub = rx[rx["kind"] == r]
            if len(sub) == 0:
                continue
            sub = sub[np.lexsort((sub["tg"], sub["gw"]))]
            if r == 0:
                keys = sub["ftype"].astype(np.int64)
            else:
                keys = sub["model"].astype(np.int64) * len(dv.SSIDS) + sub["ftype"]
            blocks, which, row = [], np.empty(len(sub), np.int64), np.empty(len(sub), np.int64)
            for b, key in enumerate(np.unique(keys)):
                idx = np.flatnonzero(keys == key)
                s = sub[idx]
                if r == 0:
                    rf = np.vectorize(frames.ADV_TO_RF.get)(s["channel"])
                    blocks.append(frames.ble_frames(int(key), s["addr"], rf, s["rssi"],
                                                    s["value"]))
                else:
                    blocks.append(self._probe_template(int(key)).build(
                        s["addr"], s["seq"], s["channel"], s["rssi"]))
                which[idx], row[idx] = b, np.arange(idx.size)
            cuts = np.flatnonzero(np.diff(sub["gw"])) + 1
            for sl in np.split(np.arange(len(sub)), cuts):
                k = int(sub["gw"][sl[0]])
                self._w[(k, r)].write(sub["tg"][sl], blocks, which[sl], row[sl])
            self.frames += len(sub)

    def close(self) -> None:
        for w in self._w.values():
            w.close()
