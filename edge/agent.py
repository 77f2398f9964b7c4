"""The gateway agent: scanners -> aggregation -> spool -> publisher, plus health heartbeats.

This is the outermost runtime, the only place in edge/ that reads clocks. Windows close when the
newest observation (replays) or the wall clock (live radios) has passed their end plus grace_s.
"""
from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from edge import __version__
from edge.aggregate import Aggregator
from edge.config import EdgeConfig
from edge.decode import FrameDecoder
from edge.backoff import Backoff
from edge.errors import EdgeError, FatalError, TransientError
from edge.observation import Observation
from edge.privacy import OptOutList, Pseudonymizer
from edge.publisher import Publisher
from edge.scanners.base import Scanner
from edge.spool import Spool
from gateway.wire import SightingsBatch, Status

log = logging.getLogger(__name__)

TICK_S = 0.1
THERMAL = Path("/sys/class/thermal/thermal_zone0/temp")


def cpu_temp_c(path: Path = THERMAL) -> float | None:
    """SoC temperature in °C from the kernel's thermal zone (millidegrees), None if unreadable."""
    try:
        value = int(path.read_text().strip()) / 1000.0
    except (OSError, ValueError):
        return None
    return round(value, 1) if -40.0 <= value <= 150.0 else None


class Agent:
    """extra_scanners: factories (gw, sink, decoder) -> Scanner, e.g. a firmware_sim feed."""

    def __init__(self, cfg: EdgeConfig,
                 extra_scanners: tuple[Callable[..., Scanner], ...] = (),
                 clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self._clock = clock
        secret = cfg.read_secret()
        self.pseudonymizer = Pseudonymizer(secret, cfg.rotation_s)
        opt_out = OptOutList.from_file(cfg.opt_out_file, secret) if cfg.opt_out_file else None
        self.spool = Spool(Path(cfg.state_dir) / f"spool-{cfg.gw}.sqlite3", cfg.spool_max_bytes)
        self.aggregator = Aggregator(cfg.site, cfg.gw, self.pseudonymizer, self.spool.next_seq,
                                     cfg.window_s, cfg.beacons, opt_out)
        self.publisher = Publisher(cfg.mqtt, cfg.site, cfg.gw, self.spool, __version__,
                                   clock=clock)
        self.decoder = FrameDecoder(cfg.gw, cfg.member_uuid)
        self.scanners: list[Scanner] = self._build_scanners(extra_scanners)
        self._obs_max = float("-inf")
        self._stop = asyncio.Event()
        self._started = clock()
        self._last_frames: Counter = Counter()
        self._last_status = 0.0

    def _build_scanners(self, extra) -> list[Scanner]:
        cfg, out = self.cfg, []
        if cfg.ble.enabled:
            from edge.scanners.bleak_scanner import BleakBleScanner
            out.append(BleakBleScanner(cfg.gw, self._on_obs, self.decoder, cfg.ble.adapter,
                                       cfg.ble.scanning_mode, cfg.ble.watchdog_s))
        if cfg.wifi.enabled:
            from edge.scanners.wifi_monitor import WifiMonitorScanner
            out.append(WifiMonitorScanner(cfg.gw, self._on_obs, cfg.wifi.interface, self.decoder,
                                          cfg.wifi.channels, cfg.wifi.hop_interval_s))
        if cfg.replay.files:
            from edge.scanners.frames import PcapReplayScanner
            out.append(PcapReplayScanner(cfg.gw, self._on_obs, cfg.replay.files, self.decoder,
                                         cfg.replay.speed, cfg.replay.rebase))
        for factory in extra:
            out.append(factory(cfg.gw, self._on_obs, self.decoder))
        return out

    def _on_obs(self, obs: Observation) -> None:
        if obs.t > self._obs_max:
            self._obs_max = obs.t
        self.aggregator.add(obs)

    def request_stop(self) -> None:
        self._stop.set()

    def _store(self, batches: list[SightingsBatch]) -> None:
        topic = self.publisher.topic
        self.spool.put_many([(b.seq, topic, b.encode()) for b in batches])

    def status(self, state: str = "online") -> Status:
        now = self._clock()
        elapsed = max(now - self._last_status, 1e-3) if self._last_status else None
        frames = self.decoder.stats.frames
        rates = {}
        for radio in ("ble", "wifi"):
            if frames[radio] or any(s.radio == radio for s in self.scanners):
                delta = frames[radio] - self._last_frames[radio]
                rates[radio] = round(delta / elapsed, 2) if elapsed else 0.0
        self._last_frames = Counter(frames)
        self._last_status = now
        return Status(self.cfg.site, self.cfg.gw, round(now, 3), state, __version__,
                      uptime_s=round(now - self._started, 3), frames_per_s=rates,
                      parse_errors=self.decoder.stats.parse_errors,
                      spool_depth=self.spool.depth, spool_dropped=self.spool.dropped,
                      cpu_temp_c=cpu_temp_c())

    async def run(self) -> int:
        """Run until stopped (signal, replay finished, fatal error); returns an exit code."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self.request_stop)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread (tests): request_stop() is called directly
        self.publisher.set_status(self.status())
        self.publisher.start()
        code = 0
        started: list[Scanner] = []
        try:
            for s in self.scanners:
                if await self._start_scanner(s):
                    started.append(s)
            code = await self._loop() if not self._stop.is_set() else 0
        except FatalError as exc:
            log.error("%s", exc)
            code = 2
        except EdgeError as exc:
            log.error("%s", exc)
            code = 1
        finally:
            for s in started:
                await s.stop()
            self._store(self.aggregator.flush_all())
            self.publisher.set_status(self.status())
            self.publisher.stop(self.cfg.drain_timeout_s)
            left = self.spool.depth
            self.spool.close()
            log.info("stopped; %d batches left in the spool for next time", left)
        if self.publisher.fatal is not None and code == 0:
            code = 2
        return code

    async def _start_scanner(self, scanner: Scanner) -> bool:
        """Start one scanner, retrying transient failures (adapter busy) with backoff."""
        backoff = Backoff(1.0, 30.0)
        while not self._stop.is_set():
            try:
                await scanner.start()
                return True
            except TransientError as exc:
                delay = backoff.next_delay()
                log.log(logging.WARNING if backoff.failures == 1 else logging.DEBUG,
                        "%s; retrying in %.1f s", exc, delay)
                try:
                    await asyncio.wait_for(self._stop.wait(), delay)
                except asyncio.TimeoutError:
                    pass
        return False

    async def _loop(self) -> int:
        live = any(s.live for s in self.scanners)
        while not self._stop.is_set():
            now = self._clock()
            limit = self._obs_max
            if live:
                limit = max(limit, now)
            if limit != float("-inf"):
                self._store(self.aggregator.flush(limit - self.cfg.grace_s))
            if now - self._last_status >= self.cfg.status_interval_s:
                self.publisher.set_status(self.status())
            if self.publisher.fatal is not None:
                log.error("stopping: %s", self.publisher.fatal)
                return 2
            for s in self.scanners:
                err = getattr(s, "error", None)
                if err is not None:
                    raise err if isinstance(err, EdgeError) else EdgeError(str(err))
            if not live and self.cfg.exit_when_done and all(s.done for s in self.scanners):
                log.info("all replays finished")
                return 0
            try:
                await asyncio.wait_for(self._stop.wait(), TICK_S)
            except asyncio.TimeoutError:
                pass
        return 0
