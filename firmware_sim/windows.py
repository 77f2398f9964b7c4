"""Window summaries: what each gateway's edge agent would aggregate per device per 1 s window.

The same rules as edge.aggregate.Aggregator: windows by the gateway's own clock, key (radio,
address), median RSSI of the packets heard (mean of the two middle ones for an even count),
packet count, randomized flag, TX power / registered beacon / member token from any frame of
the window, the probe fingerprint, the newest 802.11 sequence number.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from firmware_sim import devices as dv

WINDOW_DTYPE = np.dtype([
    ("t", "f8"),  # window start by the gateway's clock, unix s
    ("gw", "i2"),  # index into SimResult.gateway_ids
    ("kind", "u1"),  # 0 ble, 1 wifi (gateway.wire KINDS order)
    ("addr", "i8"),  # 48-bit device address, display order (never leaves a gateway)
    ("device", "i4"),  # truth: index into SimResult.device_ids
    ("rssi", "f4"),  # median RSSI of the packets heard, dBm
    ("n", "u2"),  # packets heard in the window
    ("tx", "i1"),  # advertised TX power at 1 m (iBeacon measured power), dBm; -128 = none
    ("rnd", "?"),  # randomized address (BLE TxAdd random / Wi-Fi locally administered)
    ("fp", "i2"),  # index into SimResult.fingerprints, -1 = none (BLE)
    ("beacon", "i2"),  # index into SimResult.beacon_ids (registered beacons), -1 = none
    ("member", "i8"),  # member token major<<16|minor, -1 = none (text: devices.token_str)
    ("x", "f4"), ("y", "f4"),  # truth: device position (m) at the first packet's second
    ("floor", "i1"),  # truth: floor index into SimResult.floor_ids
    ("sq", "i2"),  # last 802.11 sequence number heard (Wi-Fi), -1 = none
])
NO_TX = -128


def fingerprint_index() -> np.ndarray:
    """Per model index: its fingerprint index (= model index) or -1 if it never probes."""
    return np.array([i if m.probes_per_channel > 0 else -1 for i, m in enumerate(dv.MODELS)])


class WindowAggregator:
    """Feeds on received-packet chunks (engine.RX_DTYPE); emits complete windows."""

    def __init__(self, clock: np.ndarray) -> None:
        self.clock = clock
        self.carry = None
        self._fp = fingerprint_index()

    def feed(self, rx: np.ndarray, until: float | None) -> np.ndarray:
        """Windows complete once true time reaches ``until`` (None: flush everything)."""
        if self.carry is not None and len(self.carry):
            rx = np.concatenate([self.carry, rx])
        w = np.floor(rx["tg"])
        if until is None:
            done = np.ones(len(rx), bool)
        else:
            done = w + 1.0 <= until + self.clock[rx["gw"]]
        self.carry = rx[~done]
        return self._aggregate(rx[done], w[done])

    def _aggregate(self, rx: np.ndarray, w: np.ndarray) -> np.ndarray:
        if len(rx) == 0:
            return np.empty(0, WINDOW_DTYPE)
        slot = (((w - w.min()).astype(np.int64) * (len(self.clock) + 1) + rx["gw"]) * 2
                + rx["kind"])  # window, gateway, radio in one sortable key
        order = np.lexsort((rx["rssi"], rx["addr"], slot))
        r, w, slot = rx[order], w[order], slot[order]
        new = np.ones(len(r), bool)
        new[1:] = (slot[1:] != slot[:-1]) | (r["addr"][1:] != r["addr"][:-1])
        start = np.flatnonzero(new)
        n = np.diff(np.append(start, len(r)))
        gid = np.cumsum(new) - 1
        rssi = r["rssi"].astype(np.float64)
        med = 0.5 * (rssi[start + (n - 1) // 2] + rssi[start + n // 2])
        out = np.empty(len(start), WINDOW_DTYPE)
        first = r[start]
        out["t"], out["gw"], out["kind"], out["addr"] = w[start], first["gw"], first["kind"], \
            first["addr"]
        out["device"], out["rssi"], out["n"] = first["dev"], med, np.minimum(n, 65535)
        ble = r["kind"] == 0
        ibeacon = ble & np.isin(r["ftype"], (dv.BLE_MEMBER, dv.BLE_REFBEACON))
        out["tx"] = np.where(np.bincount(gid, ibeacon, len(start)) > 0, dv.BEACON_POWER, NO_TX)
        out["rnd"] = np.bincount(gid, r["rnd"], len(start)) > 0
        out["fp"] = np.where(first["kind"] == 1, self._fp[first["model"]], -1)
        refb = np.where(ble & (r["ftype"] == dv.BLE_REFBEACON), (r["value"] & 0xFFFF) - 1, -1)
        out["beacon"] = _group_max(gid, refb, len(start))
        mem = np.where(ble & (r["ftype"] == dv.BLE_MEMBER), r["member"], -1)
        out["member"] = _group_max(gid, mem, len(start))
        out["x"], out["y"], out["floor"] = first["x"], first["y"], first["floor"]
        # The newest sequence number: signed 12-bit differences from any one of the group's
        # (a burst spans a few numbers, never half the circle), the largest.
        s0 = first["seq"].astype(np.int64)[gid]
        ahead = (r["seq"].astype(np.int64) - s0 + 2048) % 4096 - 2048 + 4096
        last = (first["seq"].astype(np.int64) + _group_max(gid, ahead, len(start)) - 4096) % 4096
        out["sq"] = np.where(first["kind"] == 1, last, -1)
        return out[np.lexsort((out["gw"], out["t"]))]


def _group_max(gid: np.ndarray, v: np.ndarray, n: int) -> np.ndarray:
    out = np.full(n, -1, np.int64)
    np.maximum.at(out, gid, v)
    return out


def make_batches(windows: Iterable[np.ndarray], site_id: str, gateway_ids, fingerprints,
                 beacon_ids, pseudonymizer) -> Iterator[tuple[float, object]]:
    """(t, gateway.wire.SightingsBatch) in time order from window chunks (each sorted by t,
    gw); seq rises per gateway from 1."""
    from gateway.wire import MAX_SIGHTINGS, Sighting, SightingsBatch

    kinds = ("ble", "wifi")
    seq = dict.fromkeys(range(len(gateway_ids)), 0)
    pseudo = pseudonymizer.pseudonym
    for chunk in windows:
        if len(chunk) == 0:
            continue
        cut = np.flatnonzero((np.diff(chunk["t"]) != 0) | (np.diff(chunk["gw"]) != 0)) + 1
        for part in np.split(chunk, cut):
            t, g = float(part["t"][0]), int(part["gw"][0])
            ss = []
            sqs = part["sq"].tolist()
            for j, row in enumerate(part.tolist()):
                (_, _, k, addr, _, rssi, n, tx, rnd, fp, beacon, member, *_rest) = row
                ss.append(Sighting(
                    id=pseudo(int(addr).to_bytes(6, "big"), t), k=kinds[k],
                    rssi=round(float(rssi), 1), n=int(n), tx=None if tx == NO_TX else int(tx),
                    rnd=bool(rnd), fp=fingerprints[fp] if fp >= 0 else None,
                    beacon=beacon_ids[beacon] if beacon >= 0 else None,
                    member=dv.token_str(member) if member >= 0 else None,
                    sq=sqs[j] if sqs[j] >= 0 else None))
            ss.sort(key=lambda s: (s.k, s.id))
            for i in range(0, len(ss), MAX_SIGHTINGS):
                seq[g] += 1
                yield t, SightingsBatch(site_id, gateway_ids[g], seq[g], round(t, 3), 1.0,
                                        tuple(ss[i:i + MAX_SIGHTINGS]))
