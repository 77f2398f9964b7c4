"""The one record every source ends in: a live radio, a pcap replay and firmware_sim alike."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Observation:
    """One frame heard by one gateway.

    t: when it was heard, unix seconds (the source's own timestamp, not the time of processing).
    gw: gateway id. kind: "ble" or "wifi". addr: the 6-byte device address in display order
    (the order of "aa:bb:cc:dd:ee:ff"); it never leaves the gateway. rssi: dBm.
    channel: BLE advertising channel (37..39) or Wi-Fi channel number, None if unknown.
    random_addr: BLE TxAdd random / Wi-Fi locally administered bit.
    tx_power: advertised TX power at 1 m, dBm (iBeacon measured power or AD type 0x0A).
    beacon: "uuid:major:minor" (or Eddystone "namespace:instance") of a beacon frame.
    member_token: consented member-app token, only from the member iBeacon frame.
    fingerprint: Wi-Fi probe-request IE fingerprint (16 hex chars).
    seq: 802.11 sequence number (dedupes one burst heard on several channels).
    """

    t: float
    gw: str
    kind: str
    addr: bytes
    rssi: float
    channel: int | None
    random_addr: bool
    tx_power: int | None = None
    beacon: str | None = None
    member_token: str | None = None
    fingerprint: str | None = None
    seq: int | None = None
