"""Visitors, not addresses: merge a phone's rotating pseudonyms into one visitor.

Phones rotate their BLE resolvable private address (every ~15 min) and, when randomizing,
their Wi-Fi address (per probe burst). One visitor therefore shows up as a chain of device ids
per radio, plus the ids of its other radio. Evidence used, strongest first:

1. ``member`` token: a consented member's app frames (and Wi-Fi portal login) name the member;
   same member -> same visitor (only if the CRM says consent, see ``analytics.crm``).
2. BLE rotation continuity (decided by ``analytics.pipeline`` on the device table, passed in
   as ``rotation_vid``): a BLE id that fell silent just before the new one spoke, nearby, whose
   radio signature (``analytics.linking``) matches.
3. The same id back after the device table let it go (``recent_id``): a phone with a global
   Wi-Fi address probes less often than the table's expiry.
4. Wi-Fi bursts: with ``wifi_chains``, the burst whose 802.11 sequence number this one
   continues (``chain_match``: same fingerprint, a few frames on, 20 s..5 min later, in
   walking range); otherwise co-location (the BLE visitor tracked nearest, ``burst_dist_m``,
   same fingerprint or none yet) and the last burst with the same fingerprint in walking range.
5. Otherwise a new visitor.

Chains are off by default: they link a randomizing Android phone's bursts well (on firmware_sim
the longest chain holds ~75 % of a Wi-Fi-only phone's bursts), but whether a chain belongs to a
phone we also follow over BLE cannot be told by co-location at today's fix accuracy, and
counting every chain double-counts those phones (docs/metrics.md, "Visitors").

Per-visitor state is bounded: a visitor with no live device for ``expiry_s`` is finished
(``expire`` returns it, the journey engine closes it) and dropped; the member index and the
silent-id index only hold entries younger than their horizon.

Staff and fixed devices (``is_excluded``): registered beacons and public BLE addresses
(``beacon``: phones advertise under private addresses); anything present longer than
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
    rotation_sig_db: float = 5.0      # signature distance of an address rotation (linking.py)
    rotation_gap_db_s: float = 0.3    # what each second between old and new id adds to it
    rotation_dist_db_m: float = 0.05  # and each metre between their tracks
    burst_sig_db: float = 5.0         # a Wi-Fi burst and a BLE id of the same phone
    chain_sig_db: float = 5.0         # two Wi-Fi bursts of the same phone
    # Chaining a randomizing phone's Wi-Fi bursts by 802.11 sequence numbers (off: see
    # docs/metrics.md, "Wi-Fi chains": chains are right, but which chains belong to phones we
    # also follow over BLE cannot be told by co-location at today's fix accuracy).
    wifi_chains: bool = False
    chain_seq_max: int = 16           # a phone's next burst continues its 802.11 count by this
    chain_min_gap_s: float = 20.0     # bursts of one phone are this far apart at least
    chain_bursts: int = 3             # bursts before a chain is judged (Wi-Fi-only or a BLE phone's)
    chain_votes: int = 2              # bursts next to one BLE visitor that make it that phone's
    chain_vote_m: float = 20.0        # "next to": its track within this distance, same floor
    wifi_expiry_s: float = 240.0      # a chain visitor outlives its bursts this long (next burst)
    ble_model_share: float = 0.2      # chains of a fingerprint folded into BLE visitors this often: a BLE phone's
    burst_dist_m: float = 6.0
    burst_chain_s: float = 300.0     # a phone's next burst (one may be missed) comes within
    walk_speed_mps: float = 1.6
    expiry_s: float = 30.0            # after the last device is gone
    staff_presence_s: float = 4 * 3600.0
    fixed_min_s: float = 1800.0
    # RMS radius of the track below which it is position noise, not walking: on firmware_sim
    # (20 min, seed 11) still BLE fixtures spread 5.5-6.8 m (median; p90 8.4-9.9), shoppers
    # 16.8 m (p10 9.4), staff 12 m (p10 9.4).
    fixed_spread_m: float = 8.0


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
    # A chain of Wi-Fi bursts (linked by sequence numbers): (t, inside, floor, x, y) per burst,
    # the BLE visitor next to it at each burst, and whether it has been judged.
    bursts: list = field(default_factory=list)
    ble_votes: list = field(default_factory=list)
    chain_judged: bool = False

    @property
    def is_chain(self) -> bool:
        """Every id it has is a Wi-Fi burst (linked by sequence numbers), none BLE."""
        return bool(self.bursts) and len(self.bursts) >= self.n_devices

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
        # Wi-Fi bursts by fingerprint: fp -> [(t, sq, visitor, floor, x, y)], newest last
        self._chain: dict[str, list] = {}
        # Ids gone from the device table lately: id -> (visitor, gone at); a phone with a
        # global Wi-Fi address probes less often than the table's expiry and comes back.
        self._recent: dict[str, tuple[str, float]] = {}
        # Per probe fingerprint (a phone model): chains judged, and of those folded into a BLE
        # visitor. A model that also advertises over BLE has its chains folded far more often
        # than chance co-location does; its unfolded chains are not counted as Wi-Fi-only phones.
        self.fp_judged: dict[str, list[int]] = {}
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
               member: str | None, live_positions=None, rotation_vid: str | None = None,
               legacy: bool = True) -> Visitor:
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
        if v is None and legacy:
            v = self._rotation_match(kind, t, floor, xy, fp)
        if v is None and kind == "wifi" and live_positions is not None:
            v = self._colocate(t, floor, xy, fp, live_positions)
        if v is None and legacy and kind == "wifi" and fp is not None:
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
        self._recent[device_id] = (vid, last_t)
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

    # -- Wi-Fi burst chains ------------------------------------------------------------------
    def chain_match(self, fp: str, sq: int, t: float, floor: int, xy) -> str | None:
        """The visitor whose last burst (same fingerprint) this burst continues: its sequence
        number a few ahead, at least ``chain_min_gap_s`` later, within walking range."""
        cfg = self.cfg
        best, best_key = None, None
        heads = self._chain.get(fp, ())
        for i, (te, qe, vid, fl, x, y) in enumerate(heads):
            dt = t - te
            dq = (sq - qe) % 4096
            if not (cfg.chain_min_gap_s <= dt <= cfg.burst_chain_s and 0 < dq <= cfg.chain_seq_max):
                continue
            reach = cfg.walk_speed_mps * dt + 2 * cfg.rotation_dist_m
            if np.isfinite(xy).all() and np.isfinite(x) and np.hypot(xy[0] - x, xy[1] - y) > reach:
                continue
            key = (dq, dt)
            if vid in self.visitors and (best_key is None or key < best_key):
                best, best_key = i, key
        if best is None:
            return None
        # A burst has one successor: the head it continues is consumed (note_burst adds the new).
        return heads.pop(best)[2]

    def note_burst(self, vid: str, fp: str | None, sq: int, t: float, floor: int, xy,
                   inside: bool, ble_vid: dict | None) -> Visitor | None:
        """Record a Wi-Fi burst of a chain visitor; returns the visitor."""
        v = self.visitors.get(vid)
        if v is None:
            return None
        x, y = (float(xy[0]), float(xy[1])) if np.isfinite(xy).all() else (np.nan, np.nan)
        v.bursts.append((t, bool(inside), int(floor), x, y))
        v.ble_votes.append(ble_vid or {})
        if fp is not None and sq >= 0:
            lst = self._chain.setdefault(fp, [])
            lst.append((t, int(sq), vid, int(floor), x, y))
            horizon = t - self.cfg.burst_chain_s
            if lst[0][0] < horizon:
                lst[:] = [e for e in lst if e[0] >= horizon]
        return v

    def judged(self, fp: str | None, folded: bool) -> None:
        if fp is None:
            return
        c = self.fp_judged.setdefault(fp, [0, 0])
        c[0] += 1
        c[1] += int(folded)

    def ble_model(self, fp: str | None) -> bool:
        """Whether chains of this fingerprint belong to phones we follow over BLE (a prior of
        one fold in ten keeps the first chains of every model countable)."""
        n, k = self.fp_judged.get(fp, (0, 0))
        return (k + 1) / (n + 10) > self.cfg.ble_model_share

    def recent_id(self, device_id: str) -> str | None:
        """The visitor of this id if it was gone from the device table only lately."""
        e = self._recent.pop(device_id, None)
        return e[0] if e is not None and e[0] in self.visitors else None

    def merge(self, src: str, dst: str) -> Visitor | None:
        """Fold visitor ``src`` (a Wi-Fi chain) into ``dst`` (the BLE visitor it belongs to)."""
        a, b = self.visitors.get(src), self.visitors.get(dst)
        if a is None or b is None or a is b:
            return None
        for d in a.devices:
            self.of_device[d] = dst
        b.devices |= a.devices
        b.all_devices += a.all_devices[: max(0, 10_000 - len(b.all_devices))]
        b.n_devices += a.n_devices
        b.fps |= a.fps
        b.first_t, b.last_t = min(b.first_t, a.first_t), max(b.last_t, a.last_t)
        if b.devices:
            b.ended_t = None
        for lst in self._chain.values():
            for i, e in enumerate(lst):
                if e[2] == src:
                    lst[i] = e[:2] + (dst,) + e[3:]
        del self.visitors[src]
        self.merged += 1
        return b

    def expire(self, now: float) -> list[Visitor]:
        """Visitors whose last device has been gone for ``expiry_s`` (a Wi-Fi chain still
        waiting for its next burst: ``wifi_expiry_s``): finished, dropped."""
        cfg = self.cfg

        def gone_for(v):
            return cfg.wifi_expiry_s if v.is_chain else cfg.expiry_s

        out = [v for v in self.visitors.values()
               if not v.devices and v.ended_t is not None and now - v.ended_t >= gone_for(v)]
        for v in out:
            del self.visitors[v.id]
            if v.member and self.by_member.get(v.member) == v.id:
                del self.by_member[v.member]
        horizon = now - max(cfg.rotation_gap_s, cfg.expiry_s)
        for dev in [d for d, e in self._silent.items() if e[3] < horizon]:
            del self._silent[dev]
        horizon = now - cfg.wifi_expiry_s - 90.0
        if self._recent and next(iter(self._recent.values()))[1] < horizon:
            self._recent = {d: e for d, e in self._recent.items() if e[1] >= horizon}
        return out

    def forget_member(self, member: str) -> None:
        """Consent revoked: unlink the member everywhere (analytics.crm calls this)."""
        vid = self.by_member.pop(member, None)
        for v in self.visitors.values():
            if v.member == member:
                v.member = None
