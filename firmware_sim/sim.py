"""simulate(): the public entry point, and its result."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from firmware_sim import devices as dv
from firmware_sim import truth
from firmware_sim.config import SimConfig
from firmware_sim.engine import RX_DTYPE, World, run
from firmware_sim.windows import WINDOW_DTYPE, WindowAggregator, make_batches

log = logging.getLogger(__name__)

CHUNK_S = 30


class SimResult:
    """What a run produced.

    Attributes: config, site, world (geometry, crowd plan, receivers), gateway_ids, device_ids,
    floor_ids, zone_ids, fingerprints (index = WINDOW_DTYPE fp), beacon_ids ("uuid:major:minor",
    index = WINDOW_DTYPE beacon), member_uuid, reference_uuid, out_dir, truth_dir, captures
    (frames level: {(gateway, "ble"|"wifi"): Path}), packets (frames level: frames written).
    """

    def __init__(self, site, cfg: SimConfig, world: World, out_dir: Path | None) -> None:
        self.site, self.config, self.world = site, cfg, world
        self.out_dir = out_dir
        self.truth_dir = out_dir / "truth" if out_dir is not None else None
        self.gateway_ids = world.receivers.ids
        self.device_ids = tuple(truth.device_id(i) for i in range(world.crowd.n))
        self.floor_ids = world.geo.floor_ids
        self.zone_ids = world.geo.zone_ids
        self.fingerprints = tuple(dv.fingerprint(m) for m in dv.MODELS)
        n_ref = int(sum(1 for k in world.crowd.kind if k == "beacon"))
        self.beacon_ids = tuple(f"{dv.REFERENCE_UUID}:1:{i + 1}" for i in range(n_ref))
        self.member_uuid, self.reference_uuid = dv.MALL_APP_UUID, dv.REFERENCE_UUID
        self.captures: dict = {}
        self.packets = 0
        self._windows: np.ndarray | None = None

    @property
    def roles(self) -> np.ndarray:
        """(N,) role index per device (crowd.ROLES: shopper, passerby, staff, fixed)."""
        return self.world.crowd.role

    def iter_windows(self, progress: bool = False) -> Iterator[np.ndarray]:
        """Window summaries (WINDOW_DTYPE) in time order, chunk by chunk; reruns the radio
        deterministically (the same arrays every time), so a day-long run needs no memory."""
        cfg = self.config
        agg = WindowAggregator(self.world.receivers.clock)
        t = cfg.start
        for rx in run(self.world, cfg.start, cfg.end, CHUNK_S, progress=progress):
            t = min(t + CHUNK_S, cfg.end)
            yield agg.feed(rx, t if t < cfg.end else None)
        yield agg.feed(np.empty(0, RX_DTYPE), None)

    @property
    def windows(self) -> np.ndarray:
        """Every window summary of the run (WINDOW_DTYPE, sorted by t then gateway); cached."""
        if self._windows is None:
            parts = list(self.iter_windows())
            self._windows = np.concatenate(parts) if parts else np.empty(0, WINDOW_DTYPE)
        return self._windows

    def batches(self, site_secret: bytes, rotation_s: float = 86400.0):
        """(t, gateway.wire.SightingsBatch) per gateway per window, in time order, pseudonyms
        by edge.privacy.Pseudonymizer (HMAC-SHA256(secret, epoch salt || address))."""
        from edge.privacy import Pseudonymizer

        source = [self._windows] if self._windows is not None else self.iter_windows()
        return make_batches(source, self.site.id, self.gateway_ids, self.fingerprints,
                            self.beacon_ids, Pseudonymizer(site_secret, rotation_s))


def default_site():
    from gateway.site import load_site, sample_site_path

    return load_site(sample_site_path())


def simulate(site=None, config: SimConfig | None = None, out_dir: str | Path | None = None,
             progress: bool = False) -> SimResult:
    """Run a simulated mall.

    frames level: per-gateway pcaps in out_dir/captures/{gw}.{ble|wifi}.pcap and the truth
    CSVs in out_dir/truth/ (out_dir required). windows level: res.windows / res.iter_windows()
    / res.batches(secret) compute the window summaries (lazily); truth CSVs are written when
    out_dir is given.
    """
    from firmware_sim.errors import SimError

    cfg = config or SimConfig()
    site = site if site is not None else default_site()
    out = Path(out_dir) if out_dir is not None else None
    if cfg.level == "frames" and out is None:
        raise SimError("frames level writes pcaps: give out_dir", "out_dir")
    world = World.build(site, cfg)
    res = SimResult(site, cfg, world, out)
    if out is None:
        return res
    tdir = out / "truth"
    tdir.mkdir(parents=True, exist_ok=True)
    truth.write_plans(tdir, world, cfg.start, cfg.end)
    pos = truth.PositionsWriter(tdir / "positions.csv", world.geo, world.crowd.n,
                                cfg.positions_every_s)
    try:
        if cfg.level == "frames":
            from firmware_sim.capture import CaptureWriter

            cap = CaptureWriter(out / "captures", world)
            try:
                for rx in run(world, cfg.start, cfg.end, CHUNK_S, on_step=pos,
                              progress=progress):
                    cap.write(rx)
            finally:
                cap.close()
            res.captures, res.packets = cap.paths, cap.frames
        else:
            for _ in run(world, cfg.start, cfg.end, CHUNK_S, radio=False, on_step=pos,
                         progress=progress):
                pass
    finally:
        pos.close()
    em = world.last_emitters
    truth.write_addresses(tdir, world, em, cfg.start, cfg.end)
    truth.write_beacons(tdir, world, em)
    log.info("simulated %s..%s: %d agents, %d position rows, %d frames", cfg.start, cfg.end,
             world.crowd.n, pos.rows, res.packets)
    return res
