"""Gateway receivers: what each gateway hears of each packet, at what RSSI.

RSSI = p0 + gateway offset + device TX offset - 10 n log10(d) - slabs * floor attenuation
       + shadowing(gateway, floor, x, y) - body and crowd loss + fast fading,
rounded to whole dBm like real chips, heard when >= the gateway's sensitivity, the scanner is
listening on that channel at that instant (BLE scan duty cycle, Wi-Fi 1/6/11 hopping) and the
packet is not lost. Shadowing is a static Gaussian field per gateway and floor with exponential
autocorrelation exp(-r / d_c) (Gudmundson 1991), made by filtering white noise in the Fourier
domain; slabs are not counted where the straight path crosses a floor through an atrium void.
"""
from __future__ import annotations

import logging

import numpy as np

from firmware_sim.walk import SiteGeometry

log = logging.getLogger(__name__)

KINDS = ("ble", "wifi")
PHONE_HEIGHT_M = 1.2
CELL_M = 1.0  # resolution of the static shadowing / slab maps
WIFI_CHANNELS = np.array([1, 6, 11])


def shadow_fields(rng: np.random.Generator, n: int, ny: int, nx: int, dc: float) -> np.ndarray:
    """(n, ny, nx) float32 unit-variance fields, autocorrelation exp(-r/dc) (r in cells)."""
    pad = int(np.ceil(3 * dc))
    py, px = ny + 2 * pad, nx + 2 * pad
    ky = np.fft.fftfreq(py)[:, None]
    kx = np.fft.rfftfreq(px)[None, :]
    k2 = kx ** 2 + ky ** 2
    # 2-D power spectrum of exp(-r/dc): 2 pi dc^2 / (1 + (2 pi dc k)^2)^(3/2)
    amp = np.sqrt(2 * np.pi * dc ** 2 / (1 + (2 * np.pi * dc) ** 2 * k2) ** 1.5)
    out = np.empty((n, ny, nx), np.float32)
    for i in range(n):
        w = rng.standard_normal((py, px))
        f = np.fft.irfft2(np.fft.rfft2(w) * amp, s=(py, px))[pad:pad + ny, pad:pad + nx]
        out[i] = f
    return out / np.float32(out.std())


class Receivers:
    """All gateways of a site with their hidden truth (offsets, clocks, phases)."""

    def __init__(self, geo: SiteGeometry, cfg, rng: np.random.Generator) -> None:
        site = geo.site
        self.geo, self.cfg = geo, cfg
        self.ids = tuple(g.id for g in site.gateways)
        k = len(self.ids)
        self.floor = np.array([geo.floor_ix[g.floor] for g in site.gateways])
        self.xyz = site.gateway_xyz()
        self.has = np.array([[r in g.radios for r in KINDS] for g in site.gateways]).T  # (2,K)
        rd = [site.radio[r] for r in KINDS]
        self.p0 = np.array([r.p0_dbm for r in rd])
        self.offset = (np.array([g.p0_offset_db for g in site.gateways])[None, :]
                       + rng.normal(0.0, cfg.gateway_offset_sd_db, (2, k)))  # hidden truth
        self.exponent = np.array([[g.exponent if g.exponent is not None else r.exponent
                                   for g in site.gateways] for r in rd])
        self.sens = np.array([[g.sensitivity_dbm if g.sensitivity_dbm is not None
                               else r.sensitivity_dbm for g in site.gateways] for r in rd])
        self.sigma = np.array([r.sigma_db for r in rd])
        self.atten = np.array([r.floor_atten_db for r in rd])
        self.clock = rng.normal(0.0, cfg.clock_offset_sd_s, k)
        self.scan_phase = rng.uniform(0, 3 * cfg.ble_scan_interval_s, k)
        self.hop_phase = rng.uniform(0, 3 * cfg.wifi_dwell_s, k)
        self.x0, self.y0 = geo.x0, geo.y0
        self.nx = int(np.ceil((geo.x1 - geo.x0) / CELL_M))
        self.ny = int(np.ceil((geo.y1 - geo.y0) / CELL_M))
        nf = len(geo.floor_ids)
        fields = shadow_fields(rng, k * nf, self.ny, self.nx,
                               cfg.shadow_decorrelation_m / CELL_M).reshape(k, nf, self.ny,
                                                                             self.nx)
        self.shadow_unit = fields
        slabs = self._slabs()
        # static[kind]: (F, ny, nx, K) float32 = shadowing - slab loss
        self.static = np.stack([
            np.moveaxis(fields * np.float32(self.sigma[r]) - slabs * np.float32(self.atten[r]),
                        0, -1) for r in range(2)])
        self.slabs = slabs
        log.info("receivers: %d gateways, static maps %s", k, self.static.shape)

    def _slabs(self) -> np.ndarray:
        """(K, F, ny, nx) float32: slabs crossed from each cell to each gateway."""
        geo = self.geo
        nf = len(geo.floor_ids)
        xs = self.x0 + (np.arange(self.nx) + 0.5) * CELL_M
        ys = self.y0 + (np.arange(self.ny) + 0.5) * CELL_M
        gx, gy = np.meshgrid(xs, ys)
        atrium = geo.zone_kind == "atrium"
        out = np.zeros((len(self.ids), nf, self.ny, self.nx), np.float32)
        for k, (x, y, z) in enumerate(self.xyz):
            g = int(self.floor[k])
            for f in range(nf):
                if f == g:
                    continue
                zd = geo.elev[f] + PHONE_HEIGHT_M
                lo, hi = min(f, g), max(f, g)
                for j in range(lo + 1, hi + 1):  # slab at the elevation of floor j
                    lam = (geo.elev[j] - zd) / (z - zd)
                    px, py = gx + lam * (x - gx), gy + lam * (y - gy)
                    zi = geo.zone_at(px, py, np.full(px.shape, j))
                    void = (zi >= 0) & atrium[np.maximum(zi, 0)]
                    out[k, f] += ~void
        return out

    def cell(self, x: np.ndarray, y: np.ndarray):
        ix = np.clip(((x - self.x0) / CELL_M).astype(np.int64), 0, self.nx - 1)
        iy = np.clip(((y - self.y0) / CELL_M).astype(np.int64), 0, self.ny - 1)
        return iy, ix

    # -- listening -----------------------------------------------------------------------------
    def ble_channel(self, t: np.ndarray, k: np.ndarray):
        """(scanning, adv channel 37..39) of gateway k at true time t."""
        iv = self.cfg.ble_scan_interval_s
        s = t + self.scan_phase[k]
        idx = np.floor(s / iv)
        scanning = (s - idx * iv) < self.cfg.ble_scan_duty * iv
        return scanning, 37 + (idx.astype(np.int64) % 3)

    def wifi_channel(self, t: np.ndarray, k: np.ndarray) -> np.ndarray:
        s = t + self.hop_phase[k]
        return WIFI_CHANNELS[np.floor(s / self.cfg.wifi_dwell_s).astype(np.int64) % 3]

    def mean_rssi(self, r: int, k: np.ndarray, x, y, floor, tx_db, loss_db) -> np.ndarray:
        """Mean RSSI (before fast fading) of radio r from positions to gateways k (pairs)."""
        gxyz = self.xyz[k]
        z = self.geo.elev[floor] + PHONE_HEIGHT_M
        d = np.sqrt((gxyz[:, 0] - x) ** 2 + (gxyz[:, 1] - y) ** 2 + (gxyz[:, 2] - z) ** 2)
        iy, ix = self.cell(x, y)
        return (self.p0[r] + self.offset[r, k] + tx_db - loss_db
                - 10.0 * self.exponent[r, k] * np.log10(np.maximum(d, 1.0))
                + self.static[r, floor, iy, ix, k])

    def hear(self, r: int, rng: np.random.Generator, t, x, y, floor, tx_db, loss_db,
             channel=None):
        """Which gateways hear packets of radio r. Inputs are per packet (P,). Returns
        (packet index, gateway index, rssi int, channel) of every reception."""
        p = len(t)
        kk = np.flatnonzero(self.has[r])
        if p == 0 or kk.size == 0:
            e = np.empty(0, np.int64)
            return e, e, e, e
        if r == 0:  # (P, K) listening state, as ble_channel / wifi_channel for all pairs
            iv = self.cfg.ble_scan_interval_s
            s = t[:, None] + self.scan_phase[kk][None, :]
            idx = np.floor(s / iv)
            pi, kj = np.nonzero((s - idx * iv) < self.cfg.ble_scan_duty * iv)
            ch = 37 + idx[pi, kj].astype(np.int64) % 3
        else:
            s = t[:, None] + self.hop_phase[kk][None, :]
            hop = WIFI_CHANNELS[np.floor(s / self.cfg.wifi_dwell_s).astype(np.int64) % 3]
            pi, kj = np.nonzero(hop == channel[:, None])
            ch = channel[pi]
        ki = kk[kj]
        m = self.mean_rssi(r, ki, x[pi], y[pi], floor[pi], tx_db[pi], loss_db[pi])
        rssi = np.rint(m + rng.normal(0.0, self.cfg.fast_fading_db, len(m)))
        ok = (rssi >= self.sens[r, ki]) & (rng.random(len(m)) >= self.cfg.packet_loss)
        return pi[ok], ki[ok], np.clip(rssi[ok], -120, -1).astype(np.int64), ch[ok]
