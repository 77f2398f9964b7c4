"""Scanner backends: the interface, replay pacing, feeds, and the real radios' error paths.

The radio tests drive the installed bleak and the kernel unmocked: on a machine without
Bluetooth or a monitor interface they must fail with the operator-facing errors.
"""
from __future__ import annotations

import asyncio
import inspect
import socket
import time

import pytest

from edge.decode import FrameDecoder
from edge.errors import (
    CapturePermissionDenied,
    FatalError,
    NoBluetoothAdapter,
    NoMonitorInterface,
)
from edge.observation import Observation
from edge.pcap import LINKTYPE_BLE_LL_PHDR, LINKTYPE_RADIOTAP
from edge.scanners.base import Scanner
from edge.scanners.bleak_scanner import BleakBleScanner, scanner_kwargs
from edge.scanners.frames import FrameFeedScanner, PcapReplayScanner
from edge.scanners.wifi_monitor import WifiMonitorScanner, check_monitor_interface
from tests.edge.framegen import device_addr, ibeacon_ad, ll_phdr_frame, probe_frame, write_pcap

MEMBER_UUID = "e2c56db5-dffb-48d2-b060-d0f5a71096e0"


def test_bleak_conformance_signature():
    # Pins the bleak API we call (bleak >= 0.22, 3.x): keyword names and the BlueZ args.
    from bleak import BleakScanner
    from bleak.backends.scanner import AdvertisementData

    params = inspect.signature(BleakScanner.__init__).parameters
    assert {"detection_callback", "scanning_mode", "bluez"} <= set(params)
    kw = scanner_kwargs("hci1", "passive")
    assert kw["bluez"]["adapter"] == "hci1" and kw["bluez"]["or_patterns"]
    assert "or_patterns" not in scanner_kwargs("hci0", "active")["bluez"]
    BleakScanner(detection_callback=lambda d, a: None, **kw)  # accepted by the installed bleak
    assert {"local_name", "manufacturer_data", "service_data", "service_uuids", "tx_power",
            "rssi"} <= set(AdvertisementData._fields)


def test_bleak_advert_callback_builds_observation():
    from bleak.backends.device import BLEDevice
    from bleak.backends.scanner import AdvertisementData

    got: list[Observation] = []
    sc = BleakBleScanner("gw-01", got.append, FrameDecoder("gw-01", MEMBER_UUID))
    ib = ibeacon_ad(MEMBER_UUID, 7, 9)
    mfr = {0x004C: ib[5:][2:]}
    dev = BLEDevice("C0:5E:00:00:00:01", None, {"props": {"AddressType": "random"}})
    adv = AdvertisementData(None, mfr, {}, [], None, -67, ())
    sc._on_advert(dev, adv)
    (o,) = got
    assert o.addr == bytes.fromhex("c05e00000001") and o.random_addr and o.rssi == -67
    assert o.member_token == "m00070009" and o.beacon is None and o.tx_power == -59
    sc._on_advert(BLEDevice("not-a-mac", None, {}), adv)  # macOS-style UUID: not usable
    assert len(got) == 1 and sc.stats.rejected["ble"] == 1


def test_bleak_without_adapter_is_fatal_with_advice():
    sc = BleakBleScanner("gw-01", lambda o: None, FrameDecoder("gw-01"), adapter="hci7")

    async def go():
        try:
            await sc.start()
        finally:
            await sc.stop()

    try:
        asyncio.run(go())
    except (NoBluetoothAdapter, CapturePermissionDenied) as exc:
        assert isinstance(exc, FatalError) and exc.advice
        if isinstance(exc, NoBluetoothAdapter):
            assert exc.adapter == "hci7" and "bluetoothctl" in exc.advice
    else:  # a machine with a real adapter called hci7 scanned and stopped cleanly
        assert sc.done


def test_monitor_interface_checks():
    with pytest.raises(NoMonitorInterface, match="nonexistent0") as err:
        check_monitor_interface("nonexistent0")
    assert "iw phy" in err.value.advice
    with pytest.raises(NoMonitorInterface, match="not 803"):
        check_monitor_interface("lo")  # loopback is ARPHRD 772
    sc = WifiMonitorScanner("gw-01", lambda o: None, "lo", FrameDecoder("gw-01"))
    with pytest.raises(NoMonitorInterface):
        asyncio.run(sc.start())


def test_monitor_capture_reads_raw_socket(tmp_path):
    # Not monitor mode, but the same AF_PACKET path: a socketpair stands in for the capture fd.
    got: list[Observation] = []
    sc = WifiMonitorScanner("gw-01", got.append, "mon0", FrameDecoder("gw-01"))
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    a.setblocking(False)
    sc._sock = a
    frame = probe_frame(bytes.fromhex("da0000000001"), 5, -55)
    b.send(frame)
    b.send(b"\x00garbage")
    sc._readable()
    assert [o.seq for o in got] == [5] and got[0].kind == "wifi" and got[0].channel == 6
    assert sc.stats.rejected["wifi"] == 1
    a.close(), b.close()


def _run(scanner: Scanner, timeout: float = 20.0):
    async def go():
        await scanner.start()
        await asyncio.wait_for(scanner.wait_done(), timeout)
        await scanner.stop()
    asyncio.run(go())


def test_pcap_replay_fast_and_recorded_speed(tmp_path):
    frames = [(100.0 + i * 0.05, ll_phdr_frame(device_addr(i % 3), b"\x02\x01\x06"))
              for i in range(20)]
    path = write_pcap(tmp_path / "a.pcap", LINKTYPE_BLE_LL_PHDR, frames)
    got: list[Observation] = []
    sc = PcapReplayScanner("gw-01", got.append, [path], FrameDecoder("gw-01"), speed=0)
    _run(sc)
    assert [o.t for o in got] == pytest.approx([t for t, _ in frames])
    assert sc.done and sc.delivered == 20 and not sc.live
    paced: list[float] = []
    start = time.monotonic()
    sc = PcapReplayScanner("gw-01", lambda o: paced.append(time.monotonic() - start), [path],
                           FrameDecoder("gw-01"), speed=2.0, rebase=True)
    _run(sc)
    # 0.95 s recorded at 2x: the last frame comes ~0.475 s after the first
    assert 0.4 <= paced[-1] - paced[0] <= 1.5


def test_feed_of_frames_and_observations_for_this_gateway_only():
    obs = Observation(5.0, "gw-01", "ble", bytes(6), -60.0, 37, False)
    feed = [(1.0, "gw-01", LINKTYPE_RADIOTAP, probe_frame(bytes.fromhex("da0000000001"), 1)),
            (1.1, "gw-02", LINKTYPE_RADIOTAP, probe_frame(bytes.fromhex("da0000000002"), 1)),
            (1.2, "gw-01", 9999, b"?"), obs]
    got: list[Observation] = []
    dec = FrameDecoder("gw-01")
    sc = FrameFeedScanner("gw-01", got.append, feed, dec)
    _run(sc)
    assert [o.t for o in got] == [1.0, 5.0] and got[1] is obs
    assert dec.stats.unknown_linktype == 1 and dec.stats.parse_errors == 1


def test_feed_error_is_reported(tmp_path):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a capture")
    sc = PcapReplayScanner("gw-01", lambda o: None, [bad], FrameDecoder("gw-01"))
    _run(sc)
    assert sc.error is not None and "not a pcap" in str(sc.error)


def test_capture_socket_real_af_packet_and_permission_denied():
    import os
    import subprocess
    import sys

    from edge.scanners.wifi_monitor import open_capture_socket

    if os.geteuid() == 0:
        # Root: the real AF_PACKET path on loopback (Ethernet framing, so every frame is
        # rejected by the radiotap parser and counted, not crashed on).
        sock = open_capture_socket("lo")
        sc = WifiMonitorScanner("gw-01", lambda o: None, "lo", FrameDecoder("gw-01"))
        sc._sock = sock
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.sendto(b"hello", ("127.0.0.1", 9))
        udp.close()
        deadline = time.monotonic() + 5
        while sc.stats.frames["wifi"] == 0 and time.monotonic() < deadline:
            sc._readable()
        assert sc.stats.frames["wifi"] >= 1 and sc.stats.rejected["wifi"] >= 1
        sock.close()
        with pytest.raises(NoMonitorInterface):
            open_capture_socket("nonexistent0")
    # Without CAP_NET_RAW (an unprivileged user): the operator is told what to grant.
    code = (
        "import os\n"
        "from edge.errors import CapturePermissionDenied\n"
        "from edge.scanners.wifi_monitor import open_capture_socket\n"
        "if os.geteuid() == 0:\n"
        "    os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
        "try:\n"
        "    open_capture_socket('lo')\n"
        "except CapturePermissionDenied as exc:\n"
        "    print('DENIED', exc.advice)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=str(__import__("pathlib").Path(__file__).parents[2]))
    assert "DENIED" in out.stdout and "CAP_NET_RAW" in out.stdout, out.stderr


def test_channel_hop_failure_is_transient():
    from edge.errors import TransientError
    from edge.scanners.wifi_monitor import set_channel

    with pytest.raises(TransientError) as err:
        asyncio.run(set_channel("nonexistent0", 6))
    assert "iw" in str(err.value)


def test_cpu_temperature_reading(tmp_path):
    from edge.agent import cpu_temp_c

    f = tmp_path / "temp"
    f.write_text("48312\n")  # millidegrees, as /sys/class/thermal/thermal_zone0/temp
    assert cpu_temp_c(f) == 48.3
    f.write_text("garbage")
    assert cpu_temp_c(f) is None
    assert cpu_temp_c(tmp_path / "missing") is None


class _FlakyBleak(BleakBleScanner):
    """Test double for the one call that needs a BlueZ adapter (none on CI machines)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.starts = 0

    async def _start_bleak(self):
        self.starts += 1


def test_watchdog_restarts_silent_scanner():
    sc = _FlakyBleak("gw-01", lambda o: None, FrameDecoder("gw-01"), watchdog_s=0.2)
    sc._last_adv = 100.0
    assert not sc.watchdog_due(100.1) and sc.watchdog_due(100.2)

    async def go():
        await sc.start()
        deadline = time.monotonic() + 5
        while sc.restarts < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await sc.stop()

    asyncio.run(go())
    assert sc.restarts >= 2 and sc.starts == 1 + sc.restarts


def test_agent_retries_transient_scanner_start(tmp_path):
    from edge.agent import Agent
    from edge.config import EdgeConfig
    from edge.errors import TransientError
    from edge.publisher import MqttSettings
    from mallsense.servers import free_port

    class Busy(FrameFeedScanner):
        tries = 0

        async def start(self):
            Busy.tries += 1
            if Busy.tries == 1:
                raise TransientError("adapter busy")
            await super().start()

    (tmp_path / "secret").write_bytes(b"s" * 32)
    cfg = EdgeConfig(site="mall1", gw="gw-01", secret_file=str(tmp_path / "secret"),
                     state_dir=str(tmp_path / "state"), drain_timeout_s=0.0,
                     mqtt=MqttSettings("127.0.0.1", free_port()))
    feed = [(1.0, None, LINKTYPE_RADIOTAP, probe_frame(bytes.fromhex("da0000000001"), 1))]
    agent = Agent(cfg, extra_scanners=(lambda gw, sink, dec: Busy(gw, sink, feed, dec),))
    assert asyncio.run(agent.run()) == 0
    assert Busy.tries == 2 and agent.aggregator.stats.batches == 1
