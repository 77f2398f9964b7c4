"""Frames to Observations: the one path every frame source (pcap, live socket, firmware_sim) uses.

A frame is (t, linktype, bytes). The decoder runs the pure parsers, applies the member-app rule
and counts what it rejects per radio, so health reporting shows parse errors.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from edge.observation import Observation
from edge.parsers.beacons import EddystoneUID, IBeacon, classify_beacon
from edge.parsers.ble import parse_ad_structures, parse_le_ll_phdr
from edge.parsers.wifi import parse_radiotap_probe
from edge.pcap import LINKTYPE_BLE_LL_PHDR, LINKTYPE_NORDIC_BLE, LINKTYPE_RADIOTAP
from edge.parsers.nordic import parse_nordic_ble
from edge.privacy import member_token

log = logging.getLogger(__name__)

RADIO_OF_LINKTYPE = {LINKTYPE_RADIOTAP: "wifi", LINKTYPE_BLE_LL_PHDR: "ble",
                     LINKTYPE_NORDIC_BLE: "ble"}


@dataclass
class DecodeStats:
    """frames: seen per radio. rejected: not decodable (corrupt, not ours) per radio."""

    frames: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)
    unknown_linktype: int = 0

    @property
    def parse_errors(self) -> int:
        return sum(self.rejected.values()) + self.unknown_linktype


class FrameDecoder:
    """member_uuid: the iBeacon UUID of the consented member app (None: no members)."""

    def __init__(self, gw: str, member_uuid: str | None = None) -> None:
        self.gw = gw
        self.member_uuid = member_uuid.lower() if member_uuid else None
        self.stats = DecodeStats()

    def decode(self, t: float, linktype: int, data: bytes) -> Observation | None:
        if linktype == LINKTYPE_RADIOTAP:
            return self._wifi(t, data)
        if linktype == LINKTYPE_BLE_LL_PHDR:
            self.stats.frames["ble"] += 1
            adv = parse_le_ll_phdr(data)
        elif linktype == LINKTYPE_NORDIC_BLE:
            self.stats.frames["ble"] += 1
            adv = parse_nordic_ble(data)
        else:
            self.stats.unknown_linktype += 1
            return None
        if adv is None or adv.rssi is None:
            self.stats.rejected["ble"] += 1
            return None
        return self.ble_observation(t, adv.addr, adv.tx_random, float(adv.rssi), adv.channel,
                                    adv.adv_data)

    def ble_observation(self, t: float, addr: bytes, random_addr: bool, rssi: float,
                        channel: int | None, adv_data: bytes | list[bytes],
                        ad=None) -> Observation:
        ad = ad if ad is not None else parse_ad_structures(adv_data)
        tx = ad.tx_power
        beacon = member = None
        b = classify_beacon(ad)
        if isinstance(b, IBeacon):
            if self.member_uuid is not None and b.uuid == self.member_uuid:
                member = member_token(b.major, b.minor)
            else:
                beacon = b.beacon_id
            tx = b.power
        elif isinstance(b, EddystoneUID):
            beacon = b.beacon_id
            tx = b.tx_power - 41  # Eddystone TX is at 0 m; 41 dB is the spec's 0 m -> 1 m loss
        return Observation(t, self.gw, "ble", addr, rssi, channel, random_addr, tx, beacon,
                           member)

    def _wifi(self, t: float, data: bytes) -> Observation | None:
        self.stats.frames["wifi"] += 1
        p = parse_radiotap_probe(data)
        if p is None or p.rssi is None:
            self.stats.rejected["wifi"] += 1
            return None
        return Observation(t, self.gw, "wifi", p.src, float(p.rssi), p.channel, p.random,
                           fingerprint=p.fingerprint, seq=p.seq)
