"""Live BLE through bleak (BlueZ over D-Bus on the Pi), with a watchdog.

bleak >= 0.22 / 3.x API: ``BleakScanner(detection_callback=..., scanning_mode="active"|"passive",
bluez={"adapter": "hci0", "or_patterns": [...]})``. BlueZ passive scanning goes through an
advertisement monitor and needs at least one or-pattern; we match the Flags AD type at offset 0
with the values phones and beacons use, which admits practically every advertiser.

BlueZ sometimes stops reporting (adapter reset, controller hiccup) without an error; the watchdog
restarts scanning when no advertisement arrived for ``watchdog_s`` seconds.
"""
from __future__ import annotations

import asyncio
import logging
import time

from edge.decode import DecodeStats, FrameDecoder
from edge.errors import CapturePermissionDenied, NoBluetoothAdapter, TransientError
from edge.parsers.ble import AdvertData
from edge.scanners.base import ObservationSink, Scanner

log = logging.getLogger(__name__)

# Flags values (CSS Part A 1.3): LE General Discoverable + BR/EDR not supported (0x06), with
# simultaneous LE/BR-EDR bits (0x1A, 0x1E, 0x02, 0x04, 0x05...)
_PASSIVE_FLAGS = (0x02, 0x04, 0x05, 0x06, 0x1A, 0x1E, 0x18, 0x19, 0x00)


def scanner_kwargs(adapter: str, scanning_mode: str) -> dict:
    """The BleakScanner keyword arguments we use (pinned by the conformance test)."""
    from bleak.args.bluez import OrPattern
    from bleak.assigned_numbers import AdvertisementDataType

    bluez: dict = {"adapter": adapter}
    if scanning_mode == "passive":
        bluez["or_patterns"] = [OrPattern(0, AdvertisementDataType.FLAGS, bytes([f]))
                                for f in _PASSIVE_FLAGS]
    return {"scanning_mode": scanning_mode, "bluez": bluez}


class BleakBleScanner(Scanner):
    radio = "ble"
    live = True

    def __init__(self, gw: str, sink: ObservationSink, decoder: FrameDecoder,
                 adapter: str = "hci0", scanning_mode: str = "passive",
                 watchdog_s: float = 60.0) -> None:
        super().__init__(gw, sink)
        if scanning_mode not in ("active", "passive"):
            raise ValueError("scanning_mode is 'active' or 'passive'")
        self.decoder = decoder
        self.adapter = adapter
        self.scanning_mode = scanning_mode
        self.watchdog_s = watchdog_s
        self._scanner = None
        self._last_adv = 0.0
        self._watchdog: asyncio.Task | None = None
        self.restarts = 0

    @property
    def stats(self) -> DecodeStats:
        return self.decoder.stats

    def _on_advert(self, device, adv) -> None:
        now = time.time()
        self._last_adv = now
        self.decoder.stats.frames["ble"] += 1
        try:
            addr = bytes.fromhex(device.address.replace(":", ""))
        except ValueError:
            addr = b""
        if len(addr) != 6 or adv.rssi is None:
            self.decoder.stats.rejected["ble"] += 1
            return
        props = (device.details or {}).get("props", {}) if isinstance(device.details, dict) else {}
        random_addr = props.get("AddressType") == "random"
        ad = AdvertData(None, adv.local_name, adv.tx_power, tuple(adv.service_uuids),
                        dict(adv.service_data), dict(adv.manufacturer_data))
        self.sink(self.decoder.ble_observation(now, addr, random_addr, float(adv.rssi), None,
                                               b"", ad=ad))

    async def _start_bleak(self) -> None:
        from bleak import BleakScanner
        from bleak.exc import BleakDBusError, BleakError

        scanner = BleakScanner(detection_callback=self._on_advert,
                               **scanner_kwargs(self.adapter, self.scanning_mode))
        try:
            await scanner.start()
        except FileNotFoundError as exc:  # no D-Bus system bus socket at all
            raise NoBluetoothAdapter(self.adapter, f"D-Bus system bus unavailable: {exc}") from None
        except PermissionError as exc:
            raise CapturePermissionDenied("BlueZ over D-Bus", str(exc)) from None
        except BleakDBusError as exc:
            if "NotReady" in exc.dbus_error or "InProgress" in exc.dbus_error:
                raise TransientError(f"adapter {self.adapter} busy", detail=str(exc)) from None
            if "AccessDenied" in exc.dbus_error or "NotPermitted" in exc.dbus_error:
                raise CapturePermissionDenied("BlueZ over D-Bus", str(exc)) from None
            raise NoBluetoothAdapter(self.adapter, str(exc)) from None
        except BleakError as exc:
            raise NoBluetoothAdapter(self.adapter, str(exc)) from None
        self._scanner = scanner

    async def start(self) -> None:
        await self._start_bleak()
        self._last_adv = time.time()
        self._watchdog = asyncio.create_task(self._watch(), name="ble-watchdog")
        log.info("BLE scanning on %s (%s)", self.adapter, self.scanning_mode)

    def watchdog_due(self, now: float) -> bool:
        """True when nothing was heard for watchdog_s seconds before ``now``."""
        return now - self._last_adv >= self.watchdog_s

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(min(5.0, self.watchdog_s / 4))
            if not self.watchdog_due(time.time()):
                continue
            log.warning("no advertisement for %.0f s on %s: restarting the scan",
                        self.watchdog_s, self.adapter)
            self.restarts += 1
            try:
                if self._scanner is not None:
                    await self._scanner.stop()
                await self._start_bleak()
            except TransientError as exc:
                log.warning("%s", exc)
            except Exception as exc:  # noqa: BLE001 - keep watching; the next round retries
                log.warning("scan restart failed: %s", exc)
            self._last_adv = time.time()

    async def stop(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._scanner is not None:
            try:
                await self._scanner.stop()
            except Exception as exc:  # noqa: BLE001 - stopping a dead adapter must not raise
                log.debug("bleak stop: %s", exc)
            self._scanner = None
        self._done.set()
