"""Visitors, not addresses: merge a phone's rotating pseudonyms into one visitor.

Phones rotate their BLE resolvable private address (every ~15 min) and, when randomizing,
their Wi-Fi address (per probe burst). One visitor therefore shows up as a chain of device ids
per radio, plus the ids of its other radio. Evidence used, strongest first:

1. ``member`` token: a consented member's app frames (and Wi-Fi portal login) name the member;
   same member -> same visitor (only if the CRM says consent, see ``analytics.crm``).
2. Rotation continuity: an id of the same radio (and the same probe fingerprint, when both
   have one) that fell silent at most ``rotation_gap_s`` ago, close to where the new id
   appears (``rotation_dist_m``), on the same floor, and not heard since. An address change
   is a phone going quiet under one name and speaking under another within seconds.
3. Co-location for short Wi-Fi bursts: a randomized burst joins the visitor whose track is
   nearest (within ``burst_dist_m``, same floor) and whose known fingerprint matches (or the
   visitor has none yet); a Wi-Fi fingerprint seen at most ``burst_chain_s`` ago within walking
   range chains bursts of a Wi-Fi-only phone.
4. Otherwise a new visitor.

Per-visitor state is bounded: a visitor with no live device for ``expiry_s`` is finished
(``expire`` returns it, the journey engine closes it) and dropped; the member index and the
silent-id index only hold entries younger than their horizon.

Staff and fixed devices (``is_excluded``): registered beacons; anything present longer than
``staff_presence_s``; or present longer than ``fixed_min_s`` without the track ever leaving a
``fixed_extent_m`` box.
"""
from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class VisitorConfig:
    rotation_gap_s: float = 12.0
    rotation_min_quiet_s: float = 3.0  # the old id unheard this long (a missed scan is shorter)
    rotation_dist_m: float = 30.0     # two fixes of one phone, each ~15 m off (one window)
    rotation_floor_penalty_m: float = 15.0
    burst_dist_m: float = 6.0
    burst_chain_s: float = 150.0
    walk_speed_mps: float = 1.6
    expiry_s: float = 30.0            # after the last device is gone
    staff_presence_s: float = 4 * 3600.0
    fixed_min_s: float = 1800.0
    fixed_spread_m: float = 4.0       # RMS radius of the track: position noise, no walking


@dataclass
class Visitor:
    id: str
    first_t: float
    last_t: float
    member: str | None = None
    fps: set = field(default_factory=set)
    devices: set = field(default_factory=set)     # live device ids
    all_devices: list = field(default_factory=list)  # every id it had (bounded by its visit)
    n_devices: int = 0
    floor: int = -1
    xy: tuple[float, float] = (float("nan"), float("nan"))
    bbox: list = field(default_factory=lambda: [np.inf, np.inf, -np.inf, -np.inf])
    beacon: bool = False
    spread_m: float = 0.0                          # largest track spread of its devices
    ended_t: float | None = None                  # last device gone at this time

    @property
    def extent_m(self) -> float:
        b = self.bbox
        return float(np.hypot(b[2] - b[0], b[3] - b[1])) if np.isfinite(b).all() else 0.0


class VisitorRegistry:
    def __init__(self, config: VisitorConfig | None = None, *, id_prefix: str = "v",
                 consent=None) -> None:
        self.cfg = config or VisitorConfig()
        self._ids = itertools.count(1)
        self.prefix = id_prefix
        self.visitors: dict[str, Visitor] = {}
        self.of_device: dict[str, str] = {}
        self.by_member: dict[str, str] = {}
        # Recently silent ids per radio kind: device id -> (visitor, kind, fp, last_t, floor, x, y)
        self._silent: dict[str, tuple] = {}
        # Last Wi-Fi burst per fingerprint: fp -> list of (t, visitor, floor, x, y)
        self._fp_last: dict[str, list] = {}
        self.consent = consent        # callable(member) -> bool, or None = accept all tokens
        self.merged = 0

    def _new(self, t: float) -> Visitor:
        vid = f"{self.prefix}{next(self._ids):07x}"
        v = Visitor(vid, t, t)
        self.visitors[vid] = v
        return v

    def visitor_of(self, device_id: str) -> Visitor | None:
        vid = self.of_device.get(device_id)
        return self.visitors.get(vid) if vid else None

    # -- linking ---------------------------------------------------------------------------
    def assign(self, device_id: str, kind: str, t: float, floor: int, xy, fp: str | None,
               member: str | None, live_positions=None, rotation_vid: str | None = None) -> Visitor:
        """Visitor for a new device id (first heard at ``t`` at ``xy`` on ``floor``).

        ``live_positions``: (visitor ids, floor (M,), xy (M,2)) of visitors currently tracked
        (for co-location of Wi-Fi bursts). ``rotation_vid``: the visitor of a live id of the same
        radio that just fell silent nearby (found by the caller on the device table).
        """
        cfg = self.cfg
        v = None
        if member is not None and (self.consent is None or self.consent(member)):
            vid = self.by_member.get(member)
            v = self.visitors.get(vid) if vid else None
        if v is None and rotation_vid is not None:
            v = self.visitors.get(rotation_vid)
        if v is None:
            v = self._rotation_match(kind, t, floor, xy, fp)
        if v is None and kind == "wifi" and live_positions is not None:
            v = self._colocate(t, floor, xy, fp, live_positions)
        if v is None and kind == "wifi" and fp is not None:
            v = self._fp_chain(t, floor, xy, fp)
        if v is None:
            v = self._new(t)
        else:
            self.merged += 1
        v.devices.add(device_id)
        if len(v.all_devices) < 10_000:
            v.all_devices.append(device_id)
        v.n_devices += 1
        v.ended_t = None
        v.last_t = max(v.last_t, t)
        v.first_t = min(v.first_t, t)
        if fp is not None and kind == "wifi":
            v.fps.add(fp)
        if member is not None and (self.consent is None or self.consent(member)):
            v.member = member
            self.by_member[member] = v.id
        self.of_device[device_id] = v.id
        return v

    def _rotation_match(self, kind, t, floor, xy, fp) -> Visitor | None:
        cfg = self.cfg
        best, best_d = None, cfg.rotation_dist_m
        for dev, (vid, k, dfp, last_t, fl, x, y) in self._silent.items():
            if k != kind or not (0 <= t - last_t <= cfg.rotation_gap_s):
                continue
            if fp is not None and dfp is not None and fp != dfp:
                continue
            if floor >= 0 and fl >= 0 and fl != floor:
                continue
            d = float(np.hypot(xy[0] - x, xy[1] - y)) if np.isfinite(xy).all() and np.isfinite(x) else cfg.rotation_dist_m * 0.99
            if d < best_d and vid in self.visitors:
                best, best_d = dev, d
        if best is None:
            return None
        vid = self._silent.pop(best)[0]
        return self.visitors[vid]

    def _colocate(self, t, floor, xy, fp, live) -> Visitor | None:
        vids, fl, pos = live
        if not len(vids) or not np.isfinite(xy).all():
            return None
        d = np.hypot(pos[:, 0] - xy[0], pos[:, 1] - xy[1])
        d = np.where((fl == floor) | (floor < 0), d, np.inf)
        order = np.argsort(d)
        for j in order[:5].tolist():
            if d[j] > self.cfg.burst_dist_m:
                break
            v = self.visitors.get(vids[j])
            if v is None:
                continue
            # A visitor's phone has one fingerprint: a burst joins one that has none yet or
            # the same; a different fingerprint nearby is somebody else.
            if fp is None or not v.fps or fp in v.fps:
                return v
            if fp not in v.fps:
                continue
        return None

    def _fp_chain(self, t, floor, xy, fp) -> Visitor | None:
        best, best_dt = None, None
        for (lt, vid, fl, x, y) in self._fp_last.get(fp, ()):
            dt = t - lt
            if not (0 <= dt <= self.cfg.burst_chain_s):
                continue
            reach = self.cfg.walk_speed_mps * dt + self.cfg.burst_dist_m
            if np.isfinite(xy).all() and np.isfinite(x) and np.hypot(xy[0] - x, xy[1] - y) > reach:
                continue
            if best_dt is None or dt < best_dt:
                best, best_dt = vid, dt
        return self.visitors.get(best) if best else None

    # -- updates ---------------------------------------------------------------------------
    def observe(self, vid: str, t: float, floor: int, xy) -> None:
        v = self.visitors.get(vid)
        if v is None:
            return
        v.last_t = max(v.last_t, t)
        if floor >= 0:
            v.floor = floor
        if np.isfinite(xy).all():
            v.xy = (float(xy[0]), float(xy[1]))
            b = v.bbox
            b[0], b[1] = min(b[0], xy[0]), min(b[1], xy[1])
            b[2], b[3] = max(b[2], xy[0]), max(b[3], xy[1])

    def split_device(self, device_id: str, t: float) -> Visitor | None:
        """Move a device that was linked by mistake to a visitor of its own."""
        vid = self.of_device.get(device_id)
        old = self.visitors.get(vid) if vid else None
        if old is None:
            return None
        old.devices.discard(device_id)
        if device_id in old.all_devices:
            old.all_devices.remove(device_id)
        old.n_devices -= 1
        self.merged -= 1
        v = self._new(t)
        v.devices.add(device_id)
        v.all_devices.append(device_id)
        v.n_devices = 1
        self.of_device[device_id] = v.id
        return v

    def note_wifi_burst(self, vid: str, fp: str | None, t: float, floor: int, xy) -> None:
        if fp is None:
            return
        lst = self._fp_last.setdefault(fp, [])
        lst.append((t, vid, floor, float(xy[0]), float(xy[1])))
        horizon = t - self.cfg.burst_chain_s
        if len(lst) > 8 or lst[0][0] < horizon:
            lst[:] = [e for e in lst if e[0] >= horizon][-64:]

    def device_gone(self, device_id: str, kind: str, fp, last_t: float, floor: int, xy) -> Visitor | None:
        """A device expired. Remember it for rotation matching; returns its visitor."""
        vid = self.of_device.pop(device_id, None)
        v = self.visitors.get(vid) if vid else None
        if v is None:
            return None
        v.devices.discard(device_id)
        self._silent[device_id] = (vid, kind, fp, last_t, floor, float(xy[0]), float(xy[1]))
        if not v.devices:
            v.ended_t = last_t
        return v

    def note_silent(self, device_id: str, kind: str, fp, last_t: float, floor: int, xy) -> None:
        """A device has not been heard for a while but is not expired yet (rotation candidate)."""
        vid = self.of_device.get(device_id)
        if vid is not None:
            self._silent[device_id] = (vid, kind, fp, last_t, floor, float(xy[0]), float(xy[1]))

    def is_excluded(self, v: Visitor) -> bool:
        cfg = self.cfg
        span = v.last_t - v.first_t
        if v.beacon or span >= cfg.staff_presence_s:
            return True
        return span >= cfg.fixed_min_s and v.spread_m < cfg.fixed_spread_m

    def expire(self, now: float) -> list[Visitor]:
        """Visitors whose last device has been gone for ``expiry_s``: finished, dropped."""
        cfg = self.cfg
        out = [v for v in self.visitors.values()
               if not v.devices and v.ended_t is not None and now - v.ended_t >= cfg.expiry_s]
        for v in out:
            del self.visitors[v.id]
            if v.member and self.by_member.get(v.member) == v.id:
                del self.by_member[v.member]
        horizon = now - max(cfg.rotation_gap_s, cfg.expiry_s)
        for dev in [d for d, e in self._silent.items() if e[3] < horizon]:
            del self._silent[dev]
        return out

    def forget_member(self, member: str) -> None:
        """Consent revoked: unlink the member everywhere (analytics.crm calls this)."""
        vid = self.by_member.pop(member, None)
        for v in self.visitors.values():
            if v.member == member:
                v.member = None
