"""bleak: the scanner arguments and advertisement records edge/scanners/bleak_scanner.py relies on.

No Bluetooth radio is needed. The scanner is constructed for real (that is where bleak checks its
arguments), and an advertisement is pushed through bleak's own BlueZ backend code path
(D-Bus properties -> AdvertisementData + BLEDevice -> detection callback) into our callback,
so the field names and the ``details`` layout we read are bleak's, not our assumption of them.
"""
from __future__ import annotations

import inspect
import struct
import warnings

import pytest
from bleak import BleakScanner
from bleak.args.bluez import BlueZScannerArgs, OrPattern
from bleak.assigned_numbers import AdvertisementDataType
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakDBusError, BleakError

from edge.decode import FrameDecoder
from edge.scanners.bleak_scanner import BleakBleScanner, scanner_kwargs

MEMBER_UUID = "e2c56db5-dffb-48d2-b060-d0f5a71096e0"
EDDYSTONE = "0000feaa-0000-1000-8000-00805f9b34fb"


def _ibeacon_mfr(uuid: str, major: int, minor: int, power: int) -> bytes:
    # Apple's manufacturer data after the company id: type 0x02, length 0x15, UUID, major, minor,
    # measured power (as BlueZ reports it: without the 0x004C company id).
    return b"\x02\x15" + bytes.fromhex(uuid.replace("-", "")) + struct.pack(">HHb", major, minor,
                                                                            power)


def test_scanner_constructor_takes_our_keywords():
    params = inspect.signature(BleakScanner.__init__).parameters
    assert {"detection_callback", "scanning_mode", "bluez"} <= set(params)
    assert params["bluez"].kind is inspect.Parameter.KEYWORD_ONLY
    assert {"adapter", "or_patterns"} <= set(BlueZScannerArgs.__annotations__)
    assert OrPattern._fields == ("start_position", "ad_data_type", "content_of_pattern")
    assert AdvertisementDataType.FLAGS == 0x01  # CSS Part A 1.3


@pytest.mark.parametrize("mode", ["passive", "active"])
def test_our_scanner_kwargs_are_accepted_without_deprecation(mode):
    kw = scanner_kwargs("hci1", mode)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. the top-level adapter= kwarg, deprecated in 3.0
        scanner = BleakScanner(detection_callback=lambda d, a: None, **kw)
    # No public accessor: this is where bleak < 3 silently dropped bluez["adapter"] and scanned
    # on the default adapter instead.
    assert scanner._backend._adapter == "hci1"
    if mode == "passive":
        assert all(isinstance(p, OrPattern) for p in kw["bluez"]["or_patterns"])
        assert scanner._backend._or_patterns == kw["bluez"]["or_patterns"]


def test_passive_scanning_without_or_patterns_is_refused():
    # Why scanner_kwargs adds the Flags or-patterns for passive mode.
    with pytest.raises(BleakError, match="or_patterns"):
        BleakScanner(detection_callback=lambda d, a: None, scanning_mode="passive",
                     bluez={"adapter": "hci0"})


def test_advertisement_data_and_device_have_the_fields_we_read():
    assert {"local_name", "manufacturer_data", "service_data", "service_uuids", "tx_power",
            "rssi"} <= set(AdvertisementData._fields)
    adv = AdvertisementData(local_name="tag", manufacturer_data={0x004C: b"\x02\x15"},
                            service_data={EDDYSTONE: b"\x00"}, service_uuids=[EDDYSTONE],
                            tx_power=-4, rssi=-71, platform_data=())
    assert (adv.local_name, adv.tx_power, adv.rssi) == ("tag", -4, -71)
    assert adv.manufacturer_data[0x004C] == b"\x02\x15" and adv.service_data[EDDYSTONE] == b"\x00"
    assert list(inspect.signature(BLEDevice.__init__).parameters)[:4] == \
        ["self", "address", "name", "details"]
    dev = BLEDevice("C0:5E:00:00:00:01", None, {"path": "/org/bluez/hci0/dev_C0", "props": {}})
    assert dev.address == "C0:5E:00:00:00:01" and dev.details["props"] == {}


def test_dbus_error_name_is_what_we_match_on():
    # _start_bleak sorts BleakDBusError by substrings of .dbus_error.
    exc = BleakDBusError("org.bluez.Error.NotReady", ["Resource Not Ready"])
    assert isinstance(exc, BleakError)
    assert "NotReady" in exc.dbus_error and exc.dbus_error == "org.bluez.Error.NotReady"


def _bluez_props(address: str, **extra) -> dict:
    # org.bluez.Device1 properties as bleak's BlueZ manager hands them to the scanner.
    props = {"Address": address, "Alias": address.replace(":", "-"), "AddressType": "random",
             "RSSI": -67, "UUIDs": [], "ManufacturerData": {}, "ServiceData": {}}
    props.update(extra)
    return props


def test_bluez_advertisement_reaches_our_callback_as_an_observation():
    got = []
    ours = BleakBleScanner("gw-01", got.append, FrameDecoder("gw-01", MEMBER_UUID),
                           adapter="hci0", scanning_mode="passive")
    scanner = BleakScanner(detection_callback=ours._on_advert,
                           **scanner_kwargs(ours.adapter, ours.scanning_mode))
    backend = scanner._backend  # bleak's BlueZ backend; its D-Bus manager calls this method
    backend._handle_advertising_data(
        "/org/bluez/hci0/dev_C0_5E_00_00_00_01",
        _bluez_props("C0:5E:00:00:00:01",
                     ManufacturerData={0x004C: bytearray(_ibeacon_mfr(MEMBER_UUID, 7, 9, -59))}))
    (o,) = got
    assert o.addr == bytes.fromhex("c05e00000001") and o.random_addr and o.rssi == -67.0
    assert o.member_token == "m00070009" and o.tx_power == -59 and o.beacon is None

    ns, inst = bytes(range(10)), bytes(range(0xA0, 0xA6))
    backend._handle_advertising_data(
        "/org/bluez/hci0/dev_00_11_22_33_44_55",
        _bluez_props("00:11:22:33:44:55", AddressType="public", RSSI=-80, UUIDs=[EDDYSTONE],
                     ServiceData={EDDYSTONE: bytearray(b"\x00\xee" + ns + inst + b"\x00\x00")}))
    o2 = got[1]
    assert o2.addr == bytes.fromhex("001122334455") and not o2.random_addr and o2.rssi == -80.0
    assert o2.beacon is not None and ns.hex() in o2.beacon and inst.hex() in o2.beacon
