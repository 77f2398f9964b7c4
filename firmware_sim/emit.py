"""What every device transmits, second by second (vectorized over devices).

BLE: vendor advertisements (per model) and member-app iBeacons under a resolvable private
address that rotates about every ``rpa_rotation_s``; reference beacons and POS terminals under
their public address. Wi-Fi: probe-request bursts every 30-120 s depending on screen state,
each a few frames on channels 1, 6 and 11, under a fresh random MAC per burst unless the phone
uses its global MAC. Each step returns the packets sent in [t, t + 1).
"""
from __future__ import annotations

import numpy as np

from firmware_sim import devices as dv
from firmware_sim.crowd import Crowd

CHANNEL_GAP_S = 0.04  # time from one channel of a burst to the next
FRAME_GAP_S = 0.004
ADV_DELAY_S = 0.010  # advDelay: 0..10 ms random (Core Spec Vol 6 Part B 4.4.2.2.1)
INF = np.inf


class Emitters:
    def __init__(self, crowd: Crowd, cfg, rng: np.random.Generator) -> None:
        self.cfg, self.rng = cfg, rng
        n = crowd.n
        self.n = n
        phone = np.array([k == "phone" for k in crowd.kind])
        kind_model = {k: len(dv.PHONES) + i for i, k in enumerate(dv.FIXED_MODELS)}
        self.model = np.where(phone, rng.choice(len(dv.PHONES), n, p=dv.PHONE_SHARES),
                              [kind_model.get(k, 0) for k in crowd.kind])
        models = dv.MODELS
        self.ble_kind = np.array([models[m].ble for m in self.model])
        ble_iv = np.array([models[m].ble_interval_s for m in self.model])
        self.ppc = np.array([models[m].probes_per_channel for m in self.model], np.int64)
        wifi = self.ppc > 0
        sd = cfg.tx_sd_db
        self.tx = np.stack([
            np.array([models[m].tx_ble_db for m in self.model]) + rng.normal(0, sd, n) * phone,
            np.array([models[m].tx_wifi_db for m in self.model]) + rng.normal(0, sd, n) * phone])
        # body: hand / pocket / bag for people; fixed devices none
        hold = rng.choice(3, n, p=[0.3, 0.45, 0.25])
        self.body_db = np.where(phone, np.asarray(cfg.body_loss_db)[hold], 0.0)
        self.randomizes = phone & (rng.random(n) < cfg.wifi_randomized_share)
        oui = np.array([models[m].oui for m in self.model])
        self.global_mac = dv.global_macs(rng, oui)
        self.public_ble = dv.global_macs(rng, oui)
        self.member = crowd.member
        self.portal = crowd.portal
        self.beacon_value = np.full(n, -1, np.int64)
        refb = np.flatnonzero(self.ble_kind == dv.BLE_REFBEACON)
        self.beacon_value[refb] = (1 << 16) | (np.arange(len(refb)) + 1)  # major 1, minor i
        # directed probes: portal members probe the mall SSID, some phones an old network
        self.known_ssid = np.where(self.portal, 1, np.where(
            phone & (rng.random(n) < 0.15), rng.integers(2, len(dv.SSIDS), n), 0))
        start = np.maximum(crowd.t_in, cfg.start)
        self.t_in, self.t_out = crowd.t_in, crowd.t_out

        def first(iv):
            return np.where(np.isfinite(iv), start + rng.uniform(0, 1, n) * iv, INF)

        self.ble_iv = np.where(self.ble_kind >= 0, ble_iv, INF)
        self.ble_iv[self.ble_kind == dv.BLE_REFBEACON] = cfg.beacon_interval_s
        self.ble_next = first(self.ble_iv)
        self.mem_iv = np.where(self.member >= 0, cfg.ble_member_interval_s, INF)
        self.mem_next = first(self.mem_iv)
        self.wifi_next = np.where(wifi, start + rng.uniform(0, cfg.probe_interval_off_s[1], n),
                                  INF)
        uses_rpa = phone & ((self.ble_kind >= 0) | (self.member >= 0))
        self.rpa_iv = np.where(uses_rpa, cfg.rpa_rotation_s, INF)
        self.rpa_next = first(self.rpa_iv)
        self.ble_addr = np.where(uses_rpa, dv.rpa(rng, n), self.public_ble)
        self.ble_since = start.copy()
        self.seq = rng.integers(0, 4096, n)
        self.seq_reset = np.array([models[m].seq_reset for m in self.model])
        self.token_cache: dict[tuple[int, int], int] = {}
        self.addr_log: list[tuple] = []  # (device, kind, addr/int, from, to)
        self._seen_global = np.zeros(n, bool)

    # -- helpers -----------------------------------------------------------------------------
    def _due(self, nxt: np.ndarray, iv: np.ndarray, t: float, live: np.ndarray):
        """Devices due in [t, t+1) (repeat rows for >1 event), their times; advances nxt."""
        dev, ts = [], []
        while True:
            idx = np.flatnonzero(live & (nxt < t + 1.0))
            if idx.size == 0:
                break
            dev.append(idx)
            ts.append(np.maximum(nxt[idx], t))
            nxt[idx] = np.maximum(nxt[idx], t) + iv[idx] + self.rng.uniform(0, ADV_DELAY_S,
                                                                          idx.size)
        if not dev:
            return np.empty(0, np.int64), np.empty(0)
        return np.concatenate(dev), np.concatenate(ts)

    def tokens(self, member: np.ndarray, t: np.ndarray) -> np.ndarray:
        epoch = np.floor(t / self.cfg.member_token_period_s).astype(np.int64)
        out = np.empty(len(member), np.int64)
        for i, (m, e) in enumerate(zip(member.tolist(), epoch.tolist())):
            tok = self.token_cache.get((m, e))
            if tok is None:
                tok = self.token_cache[(m, e)] = int(dv.member_token(np.array([m]), e)[0])
            out[i] = tok
        return out

    # -- one step ------------------------------------------------------------------------------
    def step(self, t: float, live: np.ndarray):
        """Packets sent in [t, t+1) by live devices.

        Returns (ble, wifi) dicts of per-packet arrays: dev, t, addr, frame kind (BLE) or
        ssid index (Wi-Fi), value (BLE varying field), member token (-1), seq, channel (Wi-Fi).
        """
        rng = self.rng
        # RPA rotation
        rot = np.flatnonzero(live & (self.rpa_next <= t))
        if rot.size:
            for d, a, f in zip(rot.tolist(), self.ble_addr[rot].tolist(),
                               self.ble_since[rot].tolist()):
                self.addr_log.append((d, "ble", a, f, t))
            self.ble_addr[rot] = dv.rpa(rng, rot.size)
            self.ble_since[rot] = t
            self.rpa_next[rot] = t + self.rpa_iv[rot] * rng.uniform(0.9, 1.1, rot.size)
        # BLE
        d1, t1 = self._due(self.ble_next, self.ble_iv, t, live)
        d2, t2 = self._due(self.mem_next, self.mem_iv, t, live)
        dev = np.concatenate([d1, d2])
        kind = np.concatenate([self.ble_kind[d1], np.full(d2.size, dv.BLE_MEMBER)])
        addr = self.ble_addr[dev]
        value = np.where(kind == dv.BLE_REFBEACON, self.beacon_value[dev],
                         (addr * 2654435761) & 0xFFFFFF)
        member = np.full(dev.size, -1, np.int64)
        if d2.size:
            member[d1.size:] = self.tokens(self.member[d2], t2)
            value[d1.size:] = member[d1.size:]
        ble = dict(dev=dev, t=np.concatenate([t1, t2]), addr=addr, kind=kind, value=value,
                   member=member)
        # Wi-Fi bursts
        bd = np.flatnonzero(live & (self.wifi_next < t + 1.0))
        bt = np.maximum(self.wifi_next[bd], t)
        if bd.size:
            on = rng.random(bd.size) < self.cfg.screen_on_share
            lo = np.where(on, self.cfg.probe_interval_on_s[0], self.cfg.probe_interval_off_s[0])
            hi = np.where(on, self.cfg.probe_interval_on_s[1], self.cfg.probe_interval_off_s[1])
            self.wifi_next[bd] = bt + rng.uniform(lo, hi)
        wifi = self._bursts(bd, bt)
        return ble, wifi

    def _bursts(self, bd: np.ndarray, bt: np.ndarray) -> dict:
        rng = self.rng
        rnd = self.randomizes[bd]
        addr = np.where(rnd, dv.random_macs(rng, bd.size), self.global_mac[bd])
        reset = rnd & self.seq_reset[bd]
        self.seq[bd[reset]] = rng.integers(0, 4096, int(reset.sum()))
        ppc = self.ppc[bd]
        directed = (self.known_ssid[bd] > 0).astype(np.int64)
        per_ch = ppc + directed
        n_frames = 3 * per_ch
        rows = np.repeat(np.arange(bd.size), n_frames)
        j = np.arange(rows.size) - np.repeat(np.cumsum(n_frames) - n_frames, n_frames)
        ch_i = j // per_ch[rows]
        in_ch = j % per_ch[rows]
        dev = bd[rows]
        seq = (self.seq[dev] + j) & 0xFFF
        self.seq[bd] = (self.seq[bd] + n_frames) & 0xFFF
        ssid = np.where(in_ch >= ppc[rows], self.known_ssid[dev], 0)
        t = bt[rows] + ch_i * CHANNEL_GAP_S + in_ch * FRAME_GAP_S
        for d, a, t0, r in zip(bd.tolist(), addr.tolist(), bt.tolist(), rnd.tolist()):
            if r:
                self.addr_log.append((d, "wifi", a, t0, t0 + 3 * CHANNEL_GAP_S))
            elif not self._seen_global[d]:
                self._seen_global[d] = True
                self.addr_log.append((d, "wifi", a, t0, float(self.t_out[d])))
        return dict(dev=dev, t=t, addr=addr[rows], ssid=ssid, seq=seq,
                    channel=np.array([1, 6, 11])[ch_i], rnd=rnd[rows])

    def close(self, t_end: float, active_ever: np.ndarray) -> None:
        """Log the BLE addresses still in use at the end."""
        sends = (self.ble_kind >= 0) | (self.member >= 0)
        for d in np.flatnonzero(active_ever & sends).tolist():
            self.addr_log.append((d, "ble", int(self.ble_addr[d]), float(self.ble_since[d]),
                                  min(t_end, float(self.t_out[d]))))
