"""Simulation settings: typed, validated once, immutable."""
from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import datetime, timezone

from firmware_sim.errors import SimError

LEVELS = ("frames", "windows")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d)?\s*$")
_UNIT_S = {None: 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str | float | int) -> float:
    """Seconds from "90", "90s", "15m", "2h", "1d" (or a number of seconds)."""
    if isinstance(text, (int, float)):
        return float(text)
    m = _DURATION.match(text)
    if not m:
        raise SimError(f"not a duration: {text!r} (use e.g. 90s, 15m, 2h)", "duration")
    return float(m.group(1)) * _UNIT_S[m.group(2)]


def parse_start(text: str | float | int) -> float:
    """Unix seconds from an ISO 8601 time (naive = UTC) or a number."""
    if isinstance(text, (int, float)):
        return float(text)
    try:
        dt = datetime.fromisoformat(text)
    except ValueError as exc:
        raise SimError(f"not an ISO 8601 time: {text!r}", "start") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


@dataclass(frozen=True)
class SimConfig:
    """Everything a run depends on besides the site. Times are unix seconds, durations seconds.

    Crowd scale: ``shoppers_per_hour`` (mean arrival rate over the opening hours, shaped by the
    day profile), else ``visitors_per_day`` (whole day), else ``concurrent`` (shoppers inside at
    once: a flat arrival rate sized by Little's law, with the mall already filled at ``start``).
    """

    seed: int = 0
    start: float = 1_700_038_800.0  # 2023-11-15 09:00 UTC = 10:00 Europe/Berlin
    duration_s: float = 3600.0
    level: str = "windows"
    # crowd
    shoppers_per_hour: float | None = None
    visitors_per_day: float | None = None
    concurrent: float | None = None
    open_hour: float = 9.5  # local time the doors open / close (h)
    close_hour: float = 21.5
    passersby_per_hour: float = 300.0
    staff_per_store: float = 1.5  # mean; at least one per store
    fixed_devices: bool = True
    member_share: float = 0.25  # shoppers with the mall app (BLE member frames)
    portal_share: float = 0.3  # of members: logged into the Wi-Fi portal
    lift_share: float = 0.08  # shoppers who take lifts instead of escalators
    speed_mps: tuple[float, float] = (1.2, 0.15)  # walking speed mean, sd (clipped 0.8..1.6)
    # radio: devices
    wifi_randomized_share: float = 0.8  # phones that use a random MAC per probe burst
    probe_interval_on_s: tuple[float, float] = (30.0, 60.0)  # burst gap, screen on (uniform)
    probe_interval_off_s: tuple[float, float] = (60.0, 120.0)  # burst gap, screen off
    screen_on_share: float = 0.35
    rpa_rotation_s: float = 900.0
    member_token_period_s: float = 900.0
    ble_member_interval_s: float = 2.0
    tx_sd_db: float = 2.0  # device-to-device spread on top of the model's offset
    reference_beacons_per_floor: int = 3  # at random corridor points
    # > 0: a commissioning survey instead: reference beacons on a grid of this pitch (m),
    # jittered by up to a quarter pitch, over each floor's indoor zones, stores included;
    # the count scales with the floor area. Corridors alone leave a gateway's offset
    # holding its shadowing there, which only positions spread over its range average out.
    survey_pitch_m: float = 0.0
    beacon_interval_s: float = 1.0
    # radio: receivers
    fast_fading_db: float = 3.0  # per-packet (dB); spatial shadowing sigma comes from the site
    shadow_decorrelation_m: float = 5.0
    gateway_offset_sd_db: float = 2.0  # true per-gateway RSSI offset spread (hidden truth)
    clock_offset_sd_s: float = 0.05
    packet_loss: float = 0.05
    ble_scan_duty: float = 0.5
    ble_scan_interval_s: float = 0.1  # the scanner moves to the next channel each interval
    wifi_dwell_s: float = 0.25  # channel hop dwell on 1/6/11
    body_loss_db: tuple[float, float, float] = (0.0, 4.0, 8.0)  # hand, pocket, bag
    crowd_loss_db_per_person: float = 0.4  # per other person within the same 3 m cell
    crowd_loss_max_db: float = 6.0
    # output
    window_s: float = 1.0
    positions_every_s: int = 1

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(self, "start", parse_start(self.start))
        put(self, "duration_s", parse_duration(self.duration_s))
        if self.level not in LEVELS:
            raise SimError(f"must be one of {LEVELS}, got {self.level!r}", "level")
        if not self.duration_s > 0:
            raise SimError("must be > 0", "duration_s")
        for name in ("shoppers_per_hour", "visitors_per_day", "concurrent"):
            v = getattr(self, name)
            if v is not None and not v >= 0:
                raise SimError("must be >= 0", name)
        for name in ("member_share", "portal_share", "lift_share", "wifi_randomized_share",
                     "screen_on_share", "packet_loss", "ble_scan_duty"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise SimError(f"must be in [0, 1], got {v}", name)
        for name in ("probe_interval_on_s", "probe_interval_off_s"):
            lo, hi = getattr(self, name)
            if not 1.0 <= lo <= hi:
                raise SimError(f"need 1 <= low <= high, got {(lo, hi)}", name)
        for name in ("rpa_rotation_s", "member_token_period_s", "ble_member_interval_s",
                     "beacon_interval_s", "ble_scan_interval_s", "wifi_dwell_s",
                     "shadow_decorrelation_m"):
            if not getattr(self, name) > 0:
                raise SimError("must be > 0", name)
        if not (self.survey_pitch_m == 0 or self.survey_pitch_m >= 1.0):
            raise SimError(f"must be 0 (off) or >= 1 m, got {self.survey_pitch_m}",
                           "survey_pitch_m")
        if self.window_s != 1.0:
            raise SimError("only 1 s windows are simulated", "window_s")
        if int(self.positions_every_s) < 1:
            raise SimError("must be >= 1", "positions_every_s")
        if self.duration_s != int(self.duration_s):
            raise SimError("whole seconds only", "duration_s")

    @property
    def end(self) -> float:
        return self.start + self.duration_s

    def arrival_scale(self) -> tuple[str, float]:
        """("rate_per_hour"|"per_day"|"concurrent", value); default 600 shoppers per hour."""
        if self.shoppers_per_hour is not None:
            return "rate_per_hour", float(self.shoppers_per_hour)
        if self.visitors_per_day is not None:
            return "per_day", float(self.visitors_per_day)
        if self.concurrent is not None:
            return "concurrent", float(self.concurrent)
        return "rate_per_hour", 600.0

    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self))
