"""Live Wi-Fi capture from a monitor-mode interface: raw AF_PACKET socket of radiotap frames.

Linux only. The interface must already be in monitor mode (``iw phy phyN interface add mon0
type monitor``); its ARP hardware type is then 803, ARPHRD_IEEE80211_RADIOTAP. Optional channel
hopping runs ``iw dev IFACE set channel N`` (needs CAP_NET_ADMIN): phones probe on every channel,
and 1/6/11 are the non-overlapping 2.4 GHz channels most bursts include.
"""
from __future__ import annotations

import asyncio
import logging
import socket
import time
from pathlib import Path

from edge.decode import DecodeStats, FrameDecoder
from edge.errors import CapturePermissionDenied, NoMonitorInterface, TransientError
from edge.pcap import LINKTYPE_RADIOTAP
from edge.scanners.base import ObservationSink, Scanner

log = logging.getLogger(__name__)

ARPHRD_IEEE80211_RADIOTAP = 803
ETH_P_ALL = 0x0003
_BATCH = 64  # frames read per wake-up


def check_monitor_interface(interface: str, sys_net: Path = Path("/sys/class/net")) -> None:
    """Raise NoMonitorInterface unless ``interface`` exists and is in monitor (radiotap) mode."""
    type_file = sys_net / interface / "type"
    try:
        arphrd = int(type_file.read_text().strip())
    except (OSError, ValueError) as exc:
        raise NoMonitorInterface(interface, f"{type_file}: {exc}") from None
    if arphrd != ARPHRD_IEEE80211_RADIOTAP:
        raise NoMonitorInterface(interface, f"link type {arphrd}, not 803 (monitor/radiotap)")


def open_capture_socket(interface: str) -> socket.socket:
    """A non-blocking AF_PACKET socket receiving every frame of ``interface``."""
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    except PermissionError as exc:
        raise CapturePermissionDenied(f"a raw socket on {interface}", str(exc)) from None
    try:
        sock.bind((interface, ETH_P_ALL))
    except OSError as exc:
        sock.close()
        raise NoMonitorInterface(interface, str(exc)) from None
    sock.setblocking(False)
    return sock


class WifiMonitorScanner(Scanner):
    radio = "wifi"
    live = True

    def __init__(self, gw: str, sink: ObservationSink, interface: str, decoder: FrameDecoder,
                 channels: tuple[int, ...] = (), hop_interval_s: float = 0.5) -> None:
        super().__init__(gw, sink)
        self.interface = interface
        self.decoder = decoder
        self.channels = tuple(channels)
        self.hop_interval_s = hop_interval_s
        self._sock: socket.socket | None = None
        self._hopper: asyncio.Task | None = None

    @property
    def stats(self) -> DecodeStats:
        return self.decoder.stats

    async def start(self) -> None:
        check_monitor_interface(self.interface)
        self._sock = open_capture_socket(self.interface)
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)
        if len(self.channels) > 1:
            self._hopper = asyncio.create_task(self._hop(), name=f"hop-{self.interface}")
        log.info("capturing probe requests on %s (channels %s)", self.interface,
                 self.channels or "fixed")

    def _readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        for _ in range(_BATCH):
            try:
                data = sock.recv(65535)
            except BlockingIOError:
                return
            except OSError as exc:
                log.warning("capture on %s: %s", self.interface, exc)
                return
            obs = self.decoder.decode(time.time(), LINKTYPE_RADIOTAP, data)
            if obs is not None:
                self.sink(obs)

    async def _hop(self) -> None:
        i = 0
        warned = False
        while True:
            ch = self.channels[i % len(self.channels)]
            i += 1
            try:
                await set_channel(self.interface, ch)
                warned = False
            except TransientError as exc:
                log.log(logging.DEBUG if warned else logging.WARNING, "%s", exc)
                warned = True
            await asyncio.sleep(self.hop_interval_s)

    async def stop(self) -> None:
        if self._hopper is not None:
            self._hopper.cancel()
            self._hopper = None
        if self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        self._done.set()


async def set_channel(interface: str, channel: int) -> None:
    try:
        proc = await asyncio.create_subprocess_exec(
            "iw", "dev", interface, "set", "channel", str(channel),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    except FileNotFoundError:
        raise TransientError("`iw` not installed; channel hopping off",
                             advice="apt install iw") from None
    _out, err = await proc.communicate()
    if proc.returncode:
        raise TransientError(f"iw dev {interface} set channel {channel} failed",
                             detail=err.decode(errors="replace").strip())
