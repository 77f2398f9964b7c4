"""Frame sources replayed through the decoder: pcap/pcapng files and firmware_sim feeds.

Both pace by the frames' own timestamps: ``speed`` 1.0 = recorded speed, 10 = ten times faster,
0 = as fast as possible. ``rebase`` shifts timestamps so the first frame is "now" (a recording
replayed as if live); otherwise observations keep their recorded times.
"""
from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections.abc import AsyncIterable, Iterable
from pathlib import Path
from typing import Any

from edge.decode import DecodeStats, FrameDecoder
from edge.observation import Observation
from edge.pcap import read_capture
from edge.scanners.base import ObservationSink, Scanner

log = logging.getLogger(__name__)

_YIELD_EVERY = 256  # frames between event-loop yields in as-fast-as-possible mode


class FrameFeedScanner(Scanner):
    """Any iterable (or async iterable) of (t, gw, linktype, bytes) frames or Observations.

    firmware_sim's live feed plugs in here; frames addressed to another gateway are skipped.
    """

    live = False

    def __init__(self, gw: str, sink: ObservationSink, feed: Iterable[Any] | AsyncIterable[Any],
                 decoder: FrameDecoder, speed: float = 0.0, rebase: bool = False) -> None:
        super().__init__(gw, sink)
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self._feed = feed
        self.decoder = decoder
        self.speed = speed
        self.rebase = rebase
        self._task: asyncio.Task | None = None
        self.delivered = 0
        self.error: BaseException | None = None

    @property
    def stats(self) -> DecodeStats:
        return self.decoder.stats

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"feed-{self.gw}")
        self._task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task) -> None:
        self._done.set()
        if not task.cancelled() and task.exception() is not None:
            self.error = task.exception()
            log.error("frame feed failed: %s", self.error)

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._done.set()

    def _frames(self):
        return self._feed

    async def _run(self) -> None:
        t0 = wall0 = None
        shift = 0.0
        n = 0
        feed = self._frames()
        items = feed if hasattr(feed, "__aiter__") else _aiter(feed)
        async for item in items:
            if isinstance(item, Observation):
                t = item.t
            else:
                t, gw, linktype, data = item
                if gw is not None and gw != self.gw:
                    continue
            if t0 is None:
                t0, wall0 = t, time.time()
                shift = wall0 - t0 if self.rebase else 0.0
            if self.speed > 0:
                delay = wall0 + (t - t0) / self.speed - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            elif n % _YIELD_EVERY == 0:
                await asyncio.sleep(0)
            n += 1
            if isinstance(item, Observation):
                obs = item if not shift else _shifted(item, shift)
            else:
                obs = self.decoder.decode(t + shift, linktype, data)
            if obs is not None:
                self.delivered += 1
                self.sink(obs)


class PcapReplayScanner(FrameFeedScanner):
    """Replay classic pcap / pcapng files (link types 127, 256, 272) merged by timestamp: a
    gateway's BLE and Wi-Fi captures are separate files covering the same time."""

    def __init__(self, gw: str, sink: ObservationSink, paths: Iterable[str | Path],
                 decoder: FrameDecoder, speed: float = 0.0, rebase: bool = False) -> None:
        self.paths = [Path(p) for p in paths]
        super().__init__(gw, sink, (), decoder, speed, rebase)

    def _frames(self):
        streams = [((rec.t, None, rec.linktype, rec.data) for rec in read_capture(path))
                   for path in self.paths]
        return heapq.merge(*streams, key=lambda item: item[0])


async def _aiter(items: Iterable[Any]):
    for item in items:
        yield item


def _shifted(obs: Observation, shift: float) -> Observation:
    from dataclasses import replace
    return replace(obs, t=obs.t + shift)
