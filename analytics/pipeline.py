"""The pure core of ingest: batches in, journey events and metric points out; time is an input.

``Pipeline.process(batch, now)`` dedupes by (gateway, seq), assembles event-time windows, and
for every window the watermark closes runs locate once for all devices (``DeviceTable``), maps
devices to visitors (``VisitorRegistry``), drives the journey engine and the metrics. No I/O:
``analytics.ingest`` wires it to MQTT and InfluxDB.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from analytics.dedupe import SeqDedupe
from analytics.devices import DeviceConfig, DeviceTable
from analytics.journey import JourneyEngine, VisitRecord
from analytics.linking import signature_distance
from analytics.locating import KINDS
from analytics.metrics import MetricsAggregator
from analytics.sink.lineprotocol import Point
from analytics.visitors import VisitorConfig, VisitorRegistry
from analytics.windows import Window, WindowAssembler
from gateway.wire import (
    DeadLetter,
    Event,
    PosTransaction,
    SightingsBatch,
    Status,
    Topic,
    WireError,
    decode_any,
)

log = logging.getLogger(__name__)


@dataclass
class PipelineConfig:
    window_s: float = 1.0
    lateness_s: float = 3.0
    occupancy_every_s: float = 10.0
    heat_every_s: float = 60.0
    heat_cell_m: float = 2.0
    present_s: float = 30.0           # heard within this long: counts as present (occupancy)
    link_defer_s: float = 16.0        # wait this long before deciding an address rotation
    housekeeping_s: float = 5.0       # visitor expiry / pending zone exits checked this often
    warmup_s: float = 300.0           # visitors found inside this early were there before ingest
    device: DeviceConfig = field(default_factory=DeviceConfig)
    visitor: VisitorConfig = field(default_factory=VisitorConfig)


@dataclass
class Output:
    events: list[Event] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)
    deadletters: list[DeadLetter] = field(default_factory=list)
    visits: list[VisitRecord] = field(default_factory=list)
    # What the input's effects wait for before they are durable: the (still open) window a
    # batch went to, or None. Ingest acknowledges the message once ``hold.closed`` is true.
    hold: object = None

    def extend(self, other: "Output") -> None:
        self.events += other.events
        self.points += other.points
        self.deadletters += other.deadletters
        self.visits += other.visits


class Pipeline:
    def __init__(self, site, config: PipelineConfig | None = None, *, crm=None) -> None:
        self.site = site
        self.cfg = cfg = config or PipelineConfig()
        self.crm = crm
        self.dedupe = SeqDedupe()
        self.windows = WindowAssembler(cfg.window_s, cfg.lateness_s)
        self.devices = DeviceTable(site, config=cfg.device)
        consent = crm.has_consent if crm is not None else None
        self.visitors = VisitorRegistry(cfg.visitor, consent=consent)
        self.journey = JourneyEngine(site.id)
        self.metrics = MetricsAggregator(site, tier_of=crm.tier if crm is not None else None)
        if crm is not None:
            crm.on_revoke(self._revoked)
        n = cfg.device.capacity
        self.slot_vid = np.full(n, None, dtype=object)
        self.rotated = np.zeros(n, bool)
        # new slot -> (old slot, link time): a rotation link is undone if the old id speaks again
        self._links: dict[int, tuple[int, float]] = {}
        self._pending: dict[int, float] = {}       # born slot -> birth time, not yet linked
        self.floor_ids = self.devices.loc.floor_ids
        self.zone_ids = self.devices.zone_ids
        self._next_occ = None
        self._next_house = float("-inf")
        self._t_first: float | None = None
        self._heat_t = None
        self._heat = {}
        self.seen_before: dict[str, float] = {}     # member / stable id -> last visit end
        self.stats = {"batches": 0, "duplicates": 0, "late_batches": 0, "sightings": 0,
                      "deadletters": 0, "windows": 0}

    # -- inputs ----------------------------------------------------------------------------
    def process_payload(self, topic: str, payload: bytes, now: float) -> Output:
        """Decode one MQTT message by its topic; anything bad becomes a DeadLetter."""
        try:
            tp = Topic.parse(topic)
            if tp.kind == "sightings":
                rec = SightingsBatch.decode_arrays(payload)
                if rec.site != tp.site or rec.gw != tp.gw:
                    raise WireError("topic_mismatch", "gw", f"{rec.gw!r} on {topic!r}")
            else:
                rec = decode_any(tp, payload)
            if getattr(rec, "site", self.site.id) != self.site.id:
                raise WireError("wrong_site", "site", f"{rec.site!r} is not {self.site.id!r}")
        except WireError as exc:
            self.stats["deadletters"] += 1
            return Output(deadletters=[DeadLetter.from_error(self.site.id, now, topic, payload, exc)])
        if isinstance(rec, Status):
            return self.status(rec)
        if isinstance(rec, PosTransaction):
            return self.pos(rec, now)
        if isinstance(rec, (Event, DeadLetter)):
            return Output()       # our own output echoed back: not an input
        return self.process(rec, now)

    def process(self, batch, now: float | None = None) -> Output:
        """One gateway batch (SightingsBatch or its SightingArrays)."""
        if isinstance(batch, SightingsBatch):
            batch = batch.arrays()
        self.stats["batches"] += 1
        if not self.dedupe.accept(batch.gw, batch.seq, batch.t):
            self.stats["duplicates"] += 1
            # The original may still sit in an open window: so does the duplicate.
            return Output(hold=self.windows.open_window(batch.gw, batch.t))
        self.stats["sightings"] += len(batch)
        late0 = self.windows.late_batches
        self.windows.add(batch)
        self.stats["late_batches"] += self.windows.late_batches - late0
        out = Output(hold=self.windows.last_window)
        for w in self.windows.close_ready():
            out.extend(self._window(w))
        return out

    def close_windows(self) -> Output:
        """Close every open window now (the input went quiet); visitors stay as they are."""
        out = Output()
        for w in self.windows.close_all():
            out.extend(self._window(w))
        return out

    def pos(self, txn: PosTransaction, now: float | None = None) -> Output:
        self.journey.purchase(txn)
        return Output(events=self.journey.take_events())

    def status(self, st: Status) -> Output:
        self.metrics.gateway_status(st)
        points = self.metrics.take_points()
        off = self.windows.offset_estimate(st.gw)
        if off is not None:
            # The gateway's clock offset as ingest estimates it from its batches (s, + = ahead).
            points = [Point(p.measurement, p.tags, {**p.fields, "clock_offset_s": float(off)}, p.t)
                      if p.measurement == "gateway_status" else p for p in points]
        return Output(points=points)

    def flush(self) -> Output:
        """End of data: close every window, finish every visitor, emit every metric."""
        out = Output()
        for w in self.windows.close_all():
            out.extend(self._window(w))
        if self._pending:
            by_t: dict[float, list[int]] = {}
            for s_, tb in self._pending.items():
                by_t.setdefault(tb, []).append(s_)
            self._pending.clear()
            for tb, slots in sorted(by_t.items()):
                self._link_born([s_ for s_ in slots if self.devices.ids[s_] is not None],
                                self.devices.t, tb)
        tr = self.devices.close()
        self._apply(tr, self.devices.t)
        t_end = self.devices.t + 1e9
        for v in self.visitors.expire(t_end):
            out.visits.append(self._finish(v))
        self.journey.tick(t_end)
        out.events += self.journey.take_events()
        out.points += self.metrics.take_points()
        return out

    # -- one window ------------------------------------------------------------------------
    def _window(self, w: Window) -> Output:
        self.stats["windows"] += 1
        tr = self.devices.step(w)
        self._apply(tr, w.t)
        out = Output()
        if not w.late:
            if w.t >= self._next_house:
                # Visitor expiry and zone-exit publication need second, not window, precision.
                self._next_house = w.t + self.cfg.housekeeping_s
                for v in self.visitors.expire(w.t):
                    out.visits.append(self._finish(v))
                self.journey.tick(w.t)
            self._snapshots(w.t)
        out.events = self.journey.take_events()
        out.points = self.metrics.take_points()
        return out

    def _check_links(self, t: float) -> None:
        """Undo rotation links whose old id was heard again: two phones, not one."""
        dev = self.devices
        horizon = 4 * self.cfg.visitor.rotation_gap_s
        for new, (old, t_link) in list(self._links.items()):
            if t - t_link > horizon or dev.ids[new] is None:
                del self._links[new]
                continue
            if dev.ids[old] is not None and dev.last_t[old] > t_link:
                del self._links[new]
                self.rotated[old] = False
                v = self.visitors.split_device(dev.ids[new], t)
                if v is not None:
                    self.slot_vid[new] = v.id

    def _apply(self, tr, t: float) -> None:
        if self._links:
            self._check_links(t)
        if tr.born:
            for s_ in tr.born:
                self._pending[s_] = t
        due = [s_ for s_, tb in self._pending.items() if t - tb >= self.cfg.link_defer_s or tr.late]
        if due:
            by_t: dict[float, list[int]] = {}
            for s_ in due:
                by_t.setdefault(self._pending.pop(s_), []).append(s_)
            for tb, slots in sorted(by_t.items()):
                self._link_born([s_ for s_ in slots if self.devices.ids[s_] is not None], t, tb)
        fid, zid = self.floor_ids, self.zone_ids
        for s, f_from, f_to, _t, via in tr.floor_changes:
            vid = self.slot_vid[s]
            if vid:
                self.journey.floor_change(vid, _t, fid[f_from], fid[f_to], zid[via] if via >= 0 else None)
        for s, _t, e in tr.went_in:
            if self.slot_vid[s]:
                self.journey.went_in(self.slot_vid[s], _t, zid[e] if e >= 0 else None)
        for s, _t, e in tr.went_out:
            if self.slot_vid[s]:
                self.journey.went_out(self.slot_vid[s], _t, zid[e] if e >= 0 else None)
        for s, z, enter_t, exit_t in tr.zone_exits:
            if self.slot_vid[s]:
                self.journey.zone_exit(self.slot_vid[s], zid[z], enter_t, exit_t)
        for s, z, enter_t in tr.zone_enters:
            if self.slot_vid[s]:
                self.journey.zone_enter(self.slot_vid[s], zid[z], enter_t)
        for g in tr.gone:
            vid = self.slot_vid[g.slot]
            self.slot_vid[g.slot] = None
            self._pending.pop(g.slot, None)
            self.rotated[g.slot] = False
            if vid is None:
                continue
            v = self.visitors.device_gone(g.id, g.kind, g.fp, g.last_t, g.last_floor, g.last_xy)
            if v is not None:
                v.first_t = min(v.first_t, g.first_t)
                v.last_t = max(v.last_t, g.last_t)
                # The fixed-device rule (VisitorRegistry.is_excluded) reads the largest spread.
                v.spread_m = max(v.spread_m, g.spread_m)
                if np.isfinite(g.bbox).all():
                    vb = v.bbox
                    vb[0], vb[1] = min(vb[0], g.bbox[0]), min(vb[1], g.bbox[1])
                    vb[2], vb[3] = max(vb[2], g.bbox[2]), max(vb[3], g.bbox[3])
                if g.entrance >= 0 and g.out_long:
                    # A passer-by is seen outside (street, metro concourse) by an entrance; an
                    # id first heard in the entrance hall is more often a shopper's new address.
                    self.journey.near_entrance(vid, zid[g.entrance])
                if g.fp and g.kind == "wifi":
                    self.visitors.note_wifi_burst(vid, g.fp, g.last_t, g.last_floor, g.last_xy)

    def _link_born(self, born: list[int], t: float, t_born: float | None = None) -> None:
        """Visitors for devices first heard at ``t_born`` (decided ``link_defer_s`` later).

        Evidence, strongest first (member tokens are matched in ``VisitorRegistry.assign``):
        - BLE address rotation: a BLE id that fell silent just before, on the same floor within
          ``rotation_dist_m``, scored by radio signature (``analytics.linking``) plus a cost per
          second of gap and per metre; the best under ``rotation_sig_db`` is the same phone;
        - the same id back after the device table let it expire (a global Wi-Fi address);
        - Wi-Fi bursts: with ``wifi_chains``, the burst whose 802.11 sequence number this one
          continues (``VisitorRegistry.chain_match``); otherwise the BLE visitor tracked next to
          it, or the last burst with its fingerprint within walking range.
        Otherwise the id is a new visitor.
        """
        dev = self.devices
        vc = self.cfg.visitor
        t_born = t if t_born is None else t_born
        born_arr = np.asarray(born)
        live = np.flatnonzero(dev.live)
        live = live[~np.isin(live, born_arr)]
        lv_t = dev.last_t[live]
        lv_kind = dev.kind[live]
        lv_vid = self.slot_vid[live]
        has_vid = np.array([v is not None for v in lv_vid], bool)
        # Silent candidates for an address rotation: same radio, fell silent shortly before the
        # new id was born and has stayed silent since (the decision waits ``defer`` to see that).
        silent = (lv_t < t_born) & (lv_t >= t_born - vc.rotation_gap_s) & ~self.rotated[live] & has_vid
        wifi = KINDS.index("wifi")
        # For Wi-Fi bursts: BLE visitors heard around the burst, with their tracked positions.
        fresh = ((lv_t >= t_born - 3.0) & (lv_kind != wifi) & has_vid
                 & np.isfinite(dev.kf.x[live, :2]).all(axis=1))
        ble_pos = (lv_vid[fresh], dev.floor[live[fresh]], dev.kf.x[live[fresh], :2])
        for s in born:
            kind = int(dev.kind[s])
            a = dev.sig[s]
            fp = dev.fp[s]
            link_vid = None
            # Address rotation is a BLE thing; a randomizing Wi-Fi phone's bursts are chained
            # by sequence numbers below.
            cand = np.flatnonzero(silent & (lv_kind == kind)) if kind != wifi else ()
            if len(cand):
                # Where the phone was (same floor, walking range) and how soon after it fell
                # silent the new id spoke narrow the candidates; the signature decides.
                d = signature_distance(a, dev.sig[live[cand]])
                xy = dev.kf.x[s, :2]
                lxy = dev.kf.x[live[cand], :2]
                dist = np.hypot(lxy[:, 0] - xy[0], lxy[:, 1] - xy[1])
                dist = np.where(np.isfinite(dist), dist, vc.rotation_dist_m * 0.5)
                dist = dist + np.where(dev.floor[live[cand]] == dev.floor[s], 0.0,
                                       vc.rotation_floor_penalty_m)
                gap = t_born - dev.last_t[live[cand]]
                d = np.where(dist <= vc.rotation_dist_m,
                             d + vc.rotation_gap_db_s * gap + vc.rotation_dist_db_m * dist, np.inf)
                if fp is not None:
                    d = np.where([dev.fp[live[c]] in (None, fp) for c in cand], d, np.inf)
                j = int(np.argmin(d))
                if d[j] <= vc.rotation_sig_db:
                    old = live[cand[j]]
                    link_vid = lv_vid[cand[j]]
                    self.rotated[old] = True
                    self._links[s] = (int(old), t)
                    silent[cand[j]] = False
            fl = int(dev.floor[s])
            xy = dev.kf.x[s, :2]
            q = int(dev.sq[s])
            if link_vid is None:
                # The same id back after it expired (a Wi-Fi phone with its global address
                # probes less often than the table's expiry): the same visitor.
                back = self.visitors.recent_id(dev.ids[s])
                if back is not None:
                    link_vid = back
            chains = vc.wifi_chains and kind == wifi and fp is not None and q >= 0
            if link_vid is None and chains:
                link_vid = self.visitors.chain_match(fp, q, t_born, fl, xy)
            # Without chains a Wi-Fi burst joins the BLE visitor tracked nearest to it, or the
            # visitor of the last burst with its fingerprint within walking range.
            legacy = kind == wifi and not chains
            v = self.visitors.assign(dev.ids[s], KINDS[kind], t, fl, xy, fp,
                                     self._member_key(dev.member[s]), rotation_vid=link_vid,
                                     live_positions=ble_pos if legacy else None, legacy=legacy)
            self.slot_vid[s] = v.id
            if kind != wifi and dev.rnd[s] == 0:
                # Phones advertise BLE under resolvable private addresses; a public address is
                # a POS terminal, a beacon or another fixture: never a shopper.
                v.beacon = True
            if self._t_first is None:
                self._t_first = t_born
            if t_born - self._t_first <= self.cfg.warmup_s:
                self.journey.allow_found_inside(v.id)
            if v.member:
                self.journey.set_member(v.id, v.member)
            if fl >= 0:
                self.journey.set_floor(v.id, self.floor_ids[fl])
            if dev.inside[s]:
                # It went inside while its link was being decided: through an entrance only
                # after a committed outside state, as DeviceTable decides for its went_in.
                e = int(dev.entrance[s]) if t - dev.entrance_t[s] <= 120.0 else -1
                if not dev.been_out[s]:
                    e = -1
                self.journey.went_in(v.id, t, self.zone_ids[e] if e >= 0 else None)
            if chains:
                self._chain_burst(v, s, fp, q, t_born, fl, xy, ble_pos)

    def _chain_burst(self, v, s: int, fp: str, q: int, t_born: float, fl: int, xy, ble_pos) -> None:
        """A Wi-Fi burst of a chain visitor: note it (with the BLE visitor next to it), and
        judge the chain once it has ``chain_bursts`` bursts: a BLE phone's Wi-Fi (folded into
        that visitor) or a Wi-Fi-only phone (a visitor of its own, entered when seen inside)."""
        vc = self.cfg.visitor
        dev = self.devices
        # The BLE visitor nearest the burst gets a vote: over a chain, the phone's own BLE id
        # is nearest more often than any bystander.
        vote = {}
        vids, bfl, bxy = ble_pos
        if len(vids) and np.isfinite(xy).all():
            d = np.hypot(bxy[:, 0] - xy[0], bxy[:, 1] - xy[1])
            d = np.where(bfl == fl, d, np.inf)
            j = int(np.argmin(d))
            if d[j] <= vc.chain_vote_m:
                vote[vids[j]] = float(d[j])
        inside = bool(dev.inside_m[s] > 0.5)
        self.visitors.note_burst(v.id, fp, q, t_born, fl, xy, inside, vote)
        if v.chain_judged or not v.is_chain or len(v.bursts) < vc.chain_bursts:
            return
        v.chain_judged = True
        votes: Counter = Counter()
        dist: Counter = Counter()
        for vote in v.ble_votes:
            for x, dx in vote.items():
                if x in self.visitors.visitors and x != v.id:
                    votes[x] += 1
                    dist[x] += dx
        top = min(votes, key=lambda x: (-votes[x], dist[x])) if votes else None
        folded = top is not None and votes[top] >= vc.chain_votes
        self.visitors.judged(fp, folded)
        # The model decides: chains of a model that also advertises over BLE are folded into
        # the BLE visitor next to them (or left as fragments); chains of a Wi-Fi-only model are
        # phones of their own, whoever stood next to them.
        if self.visitors.ble_model(fp):
            if folded:
                for d_id in v.devices:
                    slot = dev.slot_of.get(d_id)
                    if slot is not None:
                        self.slot_vid[slot] = top
                self.journey.states.pop(v.id, None)
                self.visitors.merge(v.id, top)
            return
        ins = [b for b in v.bursts if b[1]]
        if len(ins) * 2 < len(v.bursts):
            return
        t_in = ins[0][0]
        ent = None
        first = v.bursts[0]
        if np.isfinite(first[3]) and first[2] >= 0 and len(dev.entr_idx):
            e = dev._nearest_entrance(np.array([[first[3], first[4]]]), np.array([first[2]]))[0]
            ent = self.zone_ids[e] if e >= 0 else None
        self.journey.went_in(v.id, t_in, ent)

    def _member_key(self, token: str | None) -> str | None:
        """The member behind a (rotating) token: its CRM id when the CRM resolves it and the
        member consents; no link otherwise. Without a CRM the token itself is the key."""
        if token is None:
            return None
        if self.crm is None:
            return token
        m = self.crm.resolve(token)
        return m.id if (m is not None and m.consent) else None

    def _finish(self, v) -> VisitRecord:
        excluded = self.visitors.is_excluded(v)
        key = v.member
        returning = bool(key and key in self.seen_before)
        if key:
            self.seen_before[key] = v.last_t
        st = self.journey.states.get(v.id)
        passby_ent = None
        if st is not None and not st.entered and not st.was_inside:
            passby_ent = st.near_entrance
        rec = self.journey.finish(v.id, first_t=v.first_t, last_t=v.last_t, excluded=excluded,
                                  returning=returning, n_devices=v.n_devices,
                                  passby_entrance=passby_ent, device_ids=tuple(v.all_devices))
        self.metrics.add_visit(rec)
        return rec

    def _revoked(self, member_id: str, tokens: list[str]) -> None:
        """Consent revoked: delete every link to the member we hold."""
        toks = set(tokens)
        for tok in toks:
            self.visitors.forget_member(tok)
            self.seen_before.pop(tok, None)
        for st in self.journey.states.values():
            if st.member in toks:
                st.member = None
        dev = self.devices
        for s in np.flatnonzero(np.isin(dev.member.astype(str), list(toks))).tolist():
            dev.member[s] = None

    # -- snapshots -------------------------------------------------------------------------
    def _snapshots(self, t: float) -> None:
        cfg = self.cfg
        dev = self.devices
        if self._heat_t is None:
            self._heat_t = t - (t % cfg.heat_every_s)
        if self._next_occ is None:
            self._next_occ = t - (t % cfg.occupancy_every_s)
        heard = np.flatnonzero(dev.live & (dev.last_t == t))
        vids = self.slot_vid[heard]
        self._accumulate_heat(heard, vids)
        if t >= self._next_occ:
            self._next_occ = t - (t % cfg.occupancy_every_s) + cfg.occupancy_every_s
            self._occupancy(t)
        if t >= self._heat_t + cfg.heat_every_s:
            for f, grid in self._heat.items():
                b = dev.loc.floor_bounds[self.floor_ids.index(f)]
                self.metrics.heat(self._heat_t, f, cfg.heat_cell_m, grid, (b[0], b[1]))
            self._heat = {}
            self._heat_t = t - (t % cfg.heat_every_s)

    def _accumulate_heat(self, slots: np.ndarray, vids) -> None:
        dev = self.devices
        if not len(slots):
            return
        # One count per visitor: its first device heard in this window.
        _, first = np.unique(np.array([v or "" for v in vids], dtype=object).astype(str), return_index=True)
        s = slots[first]
        xy = dev.kf.x[s, :2]
        fl = dev.floor[s]
        ok = np.isfinite(xy).all(axis=1) & (fl >= 0) & dev.inside[s]
        cell = self.cfg.heat_cell_m
        for f in np.unique(fl[ok]).tolist():
            m = ok & (fl == f)
            b = dev.loc.floor_bounds[f]
            nx = int(np.ceil((b[2] - b[0]) / cell)) + 1
            ny = int(np.ceil((b[3] - b[1]) / cell)) + 1
            grid = self._heat.setdefault(self.floor_ids[f], np.zeros((nx, ny), np.int64))
            ix = np.clip(((xy[m, 0] - b[0]) // cell).astype(int), 0, nx - 1)
            iy = np.clip(((xy[m, 1] - b[1]) // cell).astype(int), 0, ny - 1)
            np.add.at(grid, (ix, iy), 1)

    def _occupancy(self, t: float) -> None:
        dev = self.devices
        live = np.flatnonzero(dev.live & (dev.last_t >= t - self.cfg.present_s))
        floors = {f: set() for f in self.floor_ids}
        zones: dict[str, set] = {}
        for s in live.tolist():
            vid = self.slot_vid[s]
            if vid is None or not dev.inside[s]:
                continue
            v = self.visitors.visitors.get(vid)
            if v is None or self.visitors.is_excluded(v):
                continue
            f = dev.floor[s]
            if f >= 0:
                floors[self.floor_ids[f]].add(vid)
            z = dev.zh.zone[s]
            if z >= 0:
                zones.setdefault(self.zone_ids[z], set()).add(vid)
        self.metrics.occupancy(t, {f: len(v) for f, v in floors.items()},
                               {z: len(v) for z, v in zones.items()})
