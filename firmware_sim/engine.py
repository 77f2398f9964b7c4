"""The time loop: move everyone, let devices transmit, let gateways receive, one step a second.

Everything random comes from one SeedSequence spawned per subsystem (crowd, devices,
receivers, reception), so the same seed gives the same agents, addresses and bytes, and a
radio-only rerun (for streaming windows) reproduces the same packets.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from firmware_sim import crowd as crowd_mod
from firmware_sim.config import SimConfig
from firmware_sim.emit import Emitters
from firmware_sim.motion import Mover
from firmware_sim.radio import Receivers
from firmware_sim.walk import SiteGeometry

log = logging.getLogger(__name__)

CROWD_CELL_M = 3.0
RX_DTYPE = np.dtype([
    ("t", "f8"),  # true time of the packet, unix s
    ("tg", "f8"),  # the gateway's clock at reception, unix s
    ("gw", "i2"),  # gateway index
    ("dev", "i4"),  # device (agent) index
    ("kind", "u1"),  # 0 ble, 1 wifi
    ("ftype", "i1"),  # BLE frame kind (devices.BLE_*) or Wi-Fi SSID index
    ("model", "i2"),  # device model index (Wi-Fi template)
    ("addr", "i8"),  # 48-bit address, display order
    ("seq", "i2"),  # 802.11 sequence number (Wi-Fi)
    ("channel", "u1"),  # BLE 37..39 / Wi-Fi 1, 6, 11
    ("rssi", "i1"),  # dBm
    ("value", "i8"),  # BLE varying field (member token, beacon major<<16|minor, vendor bytes)
    ("member", "i8"),  # member token, -1 none
    ("rnd", "?"),  # random address
    ("x", "f4"), ("y", "f4"), ("floor", "i1"),  # truth position of the device at the step
])


@dataclass
class World:
    cfg: SimConfig
    geo: SiteGeometry
    crowd: crowd_mod.Crowd
    receivers: Receivers
    seeds: dict

    @classmethod
    def build(cls, site, cfg: SimConfig) -> World:
        ss = np.random.SeedSequence(cfg.seed)
        names = ("crowd", "devices", "receivers", "reception")
        seeds = dict(zip(names, ss.spawn(len(names))))
        geo = SiteGeometry(site)
        crowd = crowd_mod.plan(geo, cfg, np.random.default_rng(seeds["crowd"]))
        rx = Receivers(geo, cfg, np.random.default_rng(seeds["receivers"]))
        return cls(cfg, geo, crowd, rx, seeds)

    def emitters(self) -> Emitters:
        return Emitters(self.crowd, self.cfg, np.random.default_rng(self.seeds["devices"]))


def crowd_loss(x, y, floor, people: np.ndarray, cfg, geo) -> np.ndarray:
    """Extra attenuation (dB) from the other people within the same 3 m cell."""
    ix = ((x - geo.x0) / CROWD_CELL_M).astype(np.int64)
    iy = ((y - geo.y0) / CROWD_CELL_M).astype(np.int64)
    nx = int((geo.x1 - geo.x0) / CROWD_CELL_M) + 2
    ny = int((geo.y1 - geo.y0) / CROWD_CELL_M) + 2
    key = (floor.astype(np.int64) * ny + np.clip(iy, 0, ny - 1)) * nx + np.clip(ix, 0, nx - 1)
    counts = np.bincount(key[people], minlength=len(geo.floor_ids) * nx * ny)
    others = np.maximum(counts[key] - people, 0)
    return np.minimum(cfg.crowd_loss_db_per_person * others, cfg.crowd_loss_max_db)


def run(world: World, t0: float, t1: float, chunk_s: int = 30, radio: bool = True,
        on_step: Callable | None = None, progress: bool = False) -> Iterator[np.ndarray]:
    """Yield received packets (RX_DTYPE, in true-time order per chunk) for [t0, t1).

    on_step(t, x, y, floor, active) is called every second (for truth writers). With
    radio=False nothing is received (emitters and movement still run, for address truth).
    """
    cfg, geo, rx, crowd = world.cfg, world.geo, world.receivers, world.crowd
    mover = Mover(crowd)
    em = world.emitters()
    world.last_emitters = em
    rng = np.random.default_rng(world.seeds["reception"])
    phone = np.array([k == "phone" for k in crowd.kind])
    ever = np.zeros(crowd.n, bool)
    steps = int(round(t1 - t0))
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=steps, unit="s", desc="simulated", leave=False)
    parts: list[np.ndarray] = []
    for i in range(steps):
        t = t0 + i
        x, y, fl, active = mover.at(t)
        ever |= active
        if on_step is not None:
            on_step(t, x, y, fl, active)
        ble, wifi = em.step(t, active)
        if radio:
            loss = em.body_db + crowd_loss(x, y, fl, active & phone, cfg, geo)
            for r, pk in ((0, ble), (1, wifi)):
                dev = pk["dev"]
                pi, ki, rssi, ch = rx.hear(r, rng, pk["t"], x[dev], y[dev], fl[dev],
                                           em.tx[r][dev], loss[dev], pk.get("channel"))
                if pi.size == 0:
                    continue
                d = dev[pi]
                rec = np.empty(pi.size, RX_DTYPE)
                rec["t"] = pk["t"][pi]
                rec["tg"] = rec["t"] + rx.clock[ki]
                rec["gw"], rec["dev"], rec["kind"] = ki, d, r
                rec["ftype"] = pk["kind"][pi] if r == 0 else pk["ssid"][pi]
                rec["model"] = em.model[d]
                rec["addr"] = pk["addr"][pi]
                rec["seq"] = pk["seq"][pi] if r == 1 else 0
                rec["channel"], rec["rssi"] = ch, rssi
                rec["value"] = pk["value"][pi] if r == 0 else 0
                rec["member"] = pk["member"][pi] if r == 0 else -1
                # BLE: TxAdd (phones' RPAs are random; POS and beacons public); Wi-Fi: LAA bit
                rec["rnd"] = phone[d] if r == 0 else pk["rnd"][pi]
                rec["x"], rec["y"], rec["floor"] = x[d], y[d], fl[d]
                parts.append(rec)
        if bar is not None:
            bar.update(1)
        if (i + 1) % chunk_s == 0 or i == steps - 1:
            out = np.concatenate(parts) if parts else np.empty(0, RX_DTYPE)
            parts = []
            yield out[np.argsort(out["t"], kind="stable")]
    em.close(t1, ever)
    if bar is not None:
        bar.close()
