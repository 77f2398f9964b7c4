"""The one small interface every radio or replay backend implements.

A scanner calls ``sink(observation)`` on the agent's event loop for every frame it decoded; each
Observation carries its own timestamp. ``live`` scanners follow the wall clock (windows close on
time passing); replay scanners end (``wait_done`` returns) and their timestamps drive the windows.
"""
from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable

from edge.decode import DecodeStats
from edge.observation import Observation

ObservationSink = Callable[[Observation], None]


class Scanner(abc.ABC):
    #: "ble", "wifi" or "mixed": which frames/s counter it feeds
    radio: str = "mixed"
    #: True for radios (never end); False for replays that finish
    live: bool = True

    def __init__(self, gw: str, sink: ObservationSink) -> None:
        self.gw = gw
        self.sink = sink
        self._done = asyncio.Event()

    @abc.abstractmethod
    async def start(self) -> None:
        """Begin delivering observations; raise an edge.errors.EdgeError if impossible."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Stop delivering; idempotent."""

    @property
    @abc.abstractmethod
    def stats(self) -> DecodeStats:
        """Frames seen and rejected per radio."""

    async def wait_done(self) -> None:
        """Return when a finite source is exhausted (live sources: when stopped)."""
        await self._done.wait()

    @property
    def done(self) -> bool:
        return self._done.is_set()
