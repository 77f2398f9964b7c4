"""Device models and identities: what each radio sends and under which address.

Phone models differ in transmit power, BLE advertising (Apple continuity "Nearby Info",
Samsung and Google vendor frames, or nothing), Wi-Fi probe-request information elements and
sequence-number behaviour. The IE set of a model never changes, so its fingerprint links a
device across MAC rotations (Vanhoef et al., AsiaCCS 2016) - as in the field.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import numpy as np

# Member-app iBeacon UUID of the mall app, and the registered UUID of the reference beacons.
MALL_APP_UUID = "4d414c4c-5345-4e53-452d-4d454d424552"
REFERENCE_UUID = "4d414c4c-5345-4e53-452d-524546424541"
MEMBER_APP_KEY = b"firmware_sim member app server key"
PORTAL_SSID = b"Mall Free WiFi"
OTHER_SSIDS = (b"FRITZ!Box 7590 KL", b"eduroam", b"Telekom_FON", b"Vodafone Hotspot",
               b"WLAN-483921", b"o2-WLAN42")
SSIDS = (b"",) + (PORTAL_SSID,) + OTHER_SSIDS  # index 0 = wildcard
BEACON_POWER = -59  # measured power (dBm at 1 m) in the iBeacon frames

# BLE frame kinds (firmware_sim.frames builds each)
BLE_NONE, BLE_APPLE, BLE_SAMSUNG, BLE_GOOGLE, BLE_MEMBER, BLE_REFBEACON, BLE_POS = range(-1, 6)


def _ie(eid: int, body: bytes) -> bytes:
    return bytes((eid, len(body))) + body


_RATES = _ie(1, bytes.fromhex("02040b160c121824"))
_XRATES = _ie(50, bytes.fromhex("3048606c"))
_RATES_B = _ie(1, bytes.fromhex("82848b96"))
_XRATES_B = _ie(50, bytes.fromhex("0c1218243048606c"))
_HT_A = _ie(45, bytes.fromhex("2d0117ff00000000000000000000000000000000000000000000"))
_HT_B = _ie(45, bytes.fromhex("ef0903ffff00000000000000000000000000000000000000000000")[:26])
_HT_C = _ie(45, bytes.fromhex("6f0017ffff000000000000000000000000000000000000000000"))
_VHT = _ie(191, bytes.fromhex("b259820ffaff0000faff0000"))
_WPS = _ie(221, bytes.fromhex("0050f204104a000110103a000100"))
_APPLE_V = _ie(221, bytes.fromhex("0017f20a000103040000000000"))
_BCM = _ie(221, bytes.fromhex("001018020000100000"))
_MTK = _ie(221, bytes.fromhex("000ce7080000000000"))
_EPIGRAM = _ie(221, bytes.fromhex("00904c0408bf0c3270810ffaff0000faff0000"))
_HE = _ie(255, bytes.fromhex("2301080800000000007e0000000000000000000000"))


@dataclass(frozen=True)
class Model:
    """name; oui: vendor OUI of the global MAC; share: fraction of phones; tx_ble_db /
    tx_wifi_db: transmit offset vs the site's reference device (dB); ble: BLE frame kind;
    ble_interval_s: mean advertising interval; probes_per_channel: wildcard probes per channel
    per burst; seq_reset: random sequence number at each MAC change (else one running counter);
    pre_ds / post_ds: information elements before and after the DS parameter set."""

    name: str
    oui: int
    share: float
    tx_ble_db: float
    tx_wifi_db: float
    ble: int
    ble_interval_s: float
    probes_per_channel: int
    seq_reset: bool
    pre_ds: bytes
    post_ds: bytes


PHONES = (
    Model("iphone-15", 0xF01898, 0.22, 0.0, 1.0, BLE_APPLE, 1.5, 2, True,
          _RATES, _HT_A + _ie(127, bytes.fromhex("0400080000000040")) + _VHT + _APPLE_V),
    Model("iphone-11", 0xAC1F74, 0.16, -2.0, -1.0, BLE_APPLE, 2.0, 2, True,
          _RATES, _HT_A + _ie(127, bytes.fromhex("0400080000000040")) + _APPLE_V),
    Model("galaxy-s23", 0x8CF5A3, 0.20, 1.0, 2.0, BLE_SAMSUNG, 3.0, 1, False,
          _RATES_B + _XRATES_B, _HT_B + _ie(127, bytes.fromhex("0000080000000040")) + _VHT
          + _HE + _BCM + _EPIGRAM),
    Model("pixel-8", 0x3C286D, 0.10, -1.0, 0.0, BLE_GOOGLE, 4.0, 1, False,
          _RATES_B + _XRATES_B, _HT_C + _ie(127, bytes.fromhex("0000080000000040")) + _VHT
          + _HE + _WPS),
    Model("redmi-note", 0x64CC2E, 0.17, -3.0, -2.0, BLE_NONE, 0.0, 1, False,
          _RATES_B + _XRATES_B, _HT_C + _ie(127, bytes.fromhex("0400000000000040")) + _MTK),
    Model("old-android", 0xA45046, 0.15, -4.0, -3.0, BLE_NONE, 0.0, 2, False,
          _RATES + _XRATES, _HT_B + _WPS),
)
# Fixed devices: (kind) -> Model. Their global addresses never change.
FIXED_MODELS = {
    "pos": Model("pos-terminal", 0x00A0F4, 0.0, 0.0, 0.0, BLE_POS, 1.0, 0, False, b"", b""),
    "printer": Model("receipt-printer", 0x000026, 0.0, 0.0, -2.0, BLE_NONE, 0.0, 1, False,
                     _RATES_B + _XRATES_B, _HT_B + _WPS),
    "signage": Model("signage-player", 0xB827EB, 0.0, 0.0, 3.0, BLE_NONE, 0.0, 1, False,
                     _RATES + _XRATES, _HT_C + _BCM),
    "beacon": Model("ref-beacon", 0xAC233F, 0.0, 0.0, 0.0, BLE_REFBEACON, 1.0, 0, False,
                    b"", b""),
}
MODELS = PHONES + tuple(FIXED_MODELS.values())
PHONE_SHARES = np.array([m.share for m in PHONES]) / sum(m.share for m in PHONES)

_KEEP_BODY = frozenset({1, 50, 45, 191, 127, 59, 70})
_KEEP_EXT = frozenset({35, 108})


def ie_fingerprint(ies: bytes) -> str:
    """The probe fingerprint of an IE sequence: the formula of edge.parsers.wifi (ids in order,
    whole bodies of capability elements, OUI + type of vendor elements; the SSID and DS
    channel contents left out), 16 hex chars of SHA-256."""
    canon = bytearray()
    i = 0
    while i + 2 <= len(ies):
        eid, elen = ies[i], ies[i + 1]
        body = ies[i + 2:i + 2 + elen]
        i += 2 + elen
        if eid == 255:
            canon += b"\xff" + body[:1]
            if body[:1] and body[0] in _KEEP_EXT:
                canon += bytes((len(body),)) + body
            continue
        canon.append(eid)
        if eid in _KEEP_BODY:
            canon += bytes((elen,)) + body
        elif eid == 221:
            canon += body[:4]
    return hashlib.sha256(bytes(canon)).hexdigest()[:16]


def fingerprint(model: Model) -> str:
    return ie_fingerprint(_ie(0, b"") + model.pre_ds + _ie(3, b"\x01") + model.post_ds)


def member_token(member: np.ndarray, epoch: int) -> np.ndarray:
    """32-bit rotating member tokens (major << 16 | minor) for member numbers at an epoch:
    HMAC-SHA256(app key, member || epoch), the first 4 bytes. The app server can resolve them;
    truth/addresses.csv lists every token with its validity."""
    out = np.empty(len(member), np.int64)
    for i, m in enumerate(member):
        d = hmac.new(MEMBER_APP_KEY, f"{int(m)}|{int(epoch)}".encode(), hashlib.sha256).digest()
        out[i] = int.from_bytes(d[:4], "big")
    return out


def token_str(token: int) -> str:
    """The edge's member token text for a 32-bit token (edge.privacy.member_token)."""
    return f"m{(int(token) >> 16) & 0xFFFF:04x}{int(token) & 0xFFFF:04x}"


def random_macs(rng: np.random.Generator, n: int) -> np.ndarray:
    """Locally administered unicast MACs (IEEE 802: bit 1 of the first octet set, bit 0 clear)
    as 48-bit integers in display order."""
    a = rng.integers(0, 1 << 48, n, dtype=np.int64)
    return (a & ~(np.int64(0x03) << 40)) | (np.int64(0x02) << 40)


def global_macs(rng: np.random.Generator, oui: np.ndarray) -> np.ndarray:
    return (oui.astype(np.int64) << 24) | rng.integers(0, 1 << 24, len(oui), dtype=np.int64)


def rpa(rng: np.random.Generator, n: int) -> np.ndarray:
    """BLE resolvable private addresses: the two most significant bits 0b01 (Core Spec Vol 6
    Part B 1.3.2.2). The hash half is random here: no IRK is simulated."""
    a = rng.integers(0, 1 << 48, n, dtype=np.int64)
    return (a & ~(np.int64(0x03) << 46)) | (np.int64(0x01) << 46)


def mac_str(a: int) -> str:
    return ":".join(f"{(int(a) >> s) & 0xFF:02x}" for s in range(40, -8, -8))


def mac_bytes(a: int) -> bytes:
    return int(a).to_bytes(6, "big")
