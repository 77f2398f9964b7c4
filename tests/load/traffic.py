"""Window-mode traffic of a busy mall: N concurrent devices heard by 48 gateways, 1 s windows.

Vectorized: devices walk on their floor near the gateways (log-distance path loss with the site's
radio defaults, 6 dB shadowing, 12 % of the possible receptions heard: scan duty, advertising
interval, body loss), one SightingsBatch per
gateway per window as the edge sends it (empty ones too). Per-gateway counts land around what
firmware_sim gives for a crowd of this size (about 90 sightings per gateway per window for
5,000 devices).
"""
from __future__ import annotations

import numpy as np

from gateway.wire import Sighting, SightingsBatch

T0 = 1_700_038_800.0


class Traffic:
    def __init__(self, site, n_devices: int = 5000, n_gateways: int = 48, seed: int = 5,
                 heard_p: float = 0.12) -> None:
        self.site = site
        rng = self.rng = np.random.default_rng(seed)
        self.gws = site.gateways[:n_gateways]
        self.xyz = site.gateway_xyz()[:n_gateways]
        floor_ix = {f.id: i for i, f in enumerate(site.floors)}
        self.gw_floor = np.array([floor_ix[g.floor] for g in self.gws])
        anchor = rng.integers(0, len(self.gws), n_devices)
        self.floor = self.gw_floor[anchor]
        self.xy = self.xyz[anchor, :2] + rng.normal(0, 8.0, (n_devices, 2))
        self.z = np.array([f.elevation_m for f in site.floors])[self.floor] + 1.2
        self.ids = [f"load-{i:05d}" for i in range(n_devices)]
        rd = site.radio["ble"]
        self.p0, self.n_exp, self.sens = rd.p0_dbm, rd.exponent, rd.sensitivity_dbm
        self.atten = rd.floor_atten_db
        self.heard_p = heard_p
        self.seq = 0

    def window(self, k: int) -> list[SightingsBatch]:
        """The 48 batches of window k (t = T0 + k)."""
        rng = self.rng
        self.xy += rng.normal(0, 0.8, self.xy.shape)
        d = np.sqrt(((self.xy[:, None, :] - self.xyz[None, :, :2]) ** 2).sum(-1)
                    + (self.z[:, None] - self.xyz[None, :, 2]) ** 2)
        slabs = np.abs(self.floor[:, None] - self.gw_floor[None, :])
        rssi = (self.p0 - 10 * self.n_exp * np.log10(np.maximum(d, 1.0)) - self.atten * slabs
                + rng.normal(0, 6.0, d.shape))
        heard = (rssi >= self.sens) & (rng.random(d.shape) < self.heard_p)
        rssi = np.clip(np.round(rssi, 1), -120.0, 0.0)
        self.seq += 1
        t = T0 + k
        out = []
        for j, g in enumerate(self.gws):
            rows = np.flatnonzero(heard[:, j])
            ss = tuple(Sighting(self.ids[i], "ble", float(rssi[i, j]), 1 + int(i % 3))
                       for i in rows.tolist())
            out.append(SightingsBatch(self.site.id, g.id, self.seq, t, 1.0, ss))
        return out
