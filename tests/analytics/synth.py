"""A tiny deterministic radio world for analytics tests that need exact, known journeys
(firmware_sim is the realistic one; this one makes single behaviours testable in seconds).

Log-distance path loss with the site's radio defaults, slab loss per floor crossed, Gaussian
noise; every gateway sends one batch per window (empty ones too, as the edge does).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gateway.wire import Sighting, SightingsBatch

T0 = 1_700_040_000.0


@dataclass
class Walker:
    ids: list[tuple[float, str]]          # (from t offset, device id): address rotation
    kind: str
    path: list[tuple[str, float, float]]  # (floor id, x, y) per second from start_s
    start_s: int = 0
    fp: str | None = None
    member: str | None = None
    rnd: bool | None = None       # None: random for Wi-Fi, absent for BLE

    def at(self, k: int):
        i = k - self.start_s
        if i < 0 or i >= len(self.path):
            return None
        return self.path[i]

    def id_at(self, k: int) -> str:
        cur = self.ids[0][1]
        for t, i in self.ids:
            if k - self.start_s >= t:
                cur = i
        return cur


def line(floor: str, a: tuple[float, float], b: tuple[float, float], speed: float = 1.0):
    n = max(int(np.hypot(b[0] - a[0], b[1] - a[1]) / speed), 1)
    return [(floor, a[0] + (b[0] - a[0]) * i / n, a[1] + (b[1] - a[1]) * i / n) for i in range(n + 1)]


def stay(floor: str, p: tuple[float, float], seconds: int):
    return [(floor, p[0], p[1])] * seconds


def batches(site, walkers: list[Walker], seconds: int, *, seed: int = 0, noise_db: float = 3.0,
            t0: float = T0, seq0: int = 0):
    """[(t, SightingsBatch)] in time order, one batch per gateway per second."""
    rng = np.random.default_rng(seed)
    gws = site.gateways
    xyz = site.gateway_xyz()
    floor_level = {f.id: f.level for f in site.floors}
    elev = {f.id: f.elevation_m for f in site.floors}
    out = []
    for k in range(seconds):
        per_gw: list[list[Sighting]] = [[] for _ in gws]
        for w in walkers:
            pos = w.at(k)
            if pos is None:
                continue
            fl, x, y = pos
            rd = site.radio[w.kind]
            d = np.linalg.norm(xyz - np.array([x, y, elev[fl] + 1.2]), axis=1)
            slabs = np.array([abs(floor_level[g.floor] - floor_level[fl]) for g in gws])
            r = rd.p0_dbm - 10 * rd.exponent * np.log10(np.maximum(d, 1.0)) \
                - rd.floor_atten_db * slabs + rng.normal(0, noise_db, len(gws))
            for j, g in enumerate(gws):
                if w.kind in g.radios and r[j] >= rd.sensitivity_dbm:
                    per_gw[j].append(Sighting(w.id_at(k), w.kind, round(float(max(r[j], -120.0)), 1), 3,
                                              fp=w.fp, member=w.member,
                                              rnd=w.rnd if w.rnd is not None
                                              else (True if w.kind == "wifi" else None)))
        for j, g in enumerate(gws):
            out.append((t0 + k, SightingsBatch(site.id, g.id, seq0 + k, t0 + k, 1.0, tuple(per_gw[j]))))
    return out
