"""The shopper journey per visitor: passby, entry, floor_change, zone_enter/zone_exit, purchase, exit.

Input is visitor-level (``analytics.pipeline`` maps device transitions to visitors); output is
``gateway.wire.Event`` records for real-time consumers and, when a visitor is finished, one
``VisitRecord`` that the metrics aggregate (so staff and fixed devices, known only once their
presence is long, are excluded from shopper metrics).

Store visits of one visitor are merged across its devices: when the phone's address rotates
inside a store, the old id's visit ends and the new id's begins; a re-entry of the same zone
within ``merge_gap_s`` continues the visit. A zone_exit is published once the gap has passed.

Purchases (POS): matched to a visit of that store by member (a consented member id) or, when
anonymous, to the visitor whose visit of the store covers the transaction time (slack
``pos_slack_s`` either side), the longest such visit; unmatched transactions wait up to
``pos_wait_s`` for the visit to be detected.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from gateway.wire import Event, PosTransaction

log = logging.getLogger(__name__)


@dataclass
class StoreVisit:
    zone: str
    enter_t: float
    exit_t: float
    purchases: list = field(default_factory=list)   # (txn_id, amount, currency, t)


@dataclass
class VisitRecord:
    """A finished visitor, as the metrics need it."""

    visitor: str
    member: str | None
    first_t: float
    last_t: float
    entered: bool
    entry_t: float | None
    entrance: str | None
    exit_t: float | None
    exit_entrance: str | None
    passby_entrance: str | None
    floor_changes: list            # (t, from, to, via)
    visits: list                   # StoreVisit
    excluded: bool
    returning: bool
    n_devices: int
    device_ids: tuple = ()


@dataclass
class _State:
    vid: str
    member: str | None = None
    inside: bool = False
    entered: bool = False
    entry_t: float | None = None
    entrance: str | None = None
    exit_t: float | None = None
    exit_entrance: str | None = None
    near_entrance: str | None = None
    found_inside_ok: bool = False
    was_inside: bool = False
    floor: str | None = None
    floor_changes: list = field(default_factory=list)
    open: dict = field(default_factory=dict)      # zone -> [enter_t, last_t, n_dev]
    pending: dict = field(default_factory=dict)   # zone -> StoreVisit awaiting merge gap
    visits: list = field(default_factory=list)


class JourneyEngine:
    def __init__(self, site_id: str, *, merge_gap_s: float = 300.0, pos_slack_s: float = 120.0,
                 pos_wait_s: float = 900.0, min_visit_s: float = 0.0) -> None:
        self.site_id = site_id
        self.merge_gap_s = merge_gap_s
        self.pos_slack_s = pos_slack_s
        self.pos_wait_s = pos_wait_s
        self.min_visit_s = min_visit_s
        self.states: dict[str, _State] = {}
        self.events: list[Event] = []
        self._pos_pending: list[PosTransaction] = []
        self._recent: list[tuple[str, StoreVisit, str | None]] = []  # finished visits for POS

    def _st(self, vid: str) -> _State:
        st = self.states.get(vid)
        if st is None:
            st = self.states[vid] = _State(vid)
        return st

    def _emit(self, type_: str, t: float, st: _State, **fields) -> None:
        if st.member is not None:
            fields.setdefault("member", st.member)
        self.events.append(Event(self.site_id, type_, round(t, 3), st.vid, **fields))

    def take_events(self) -> list[Event]:
        out, self.events = self.events, []
        return out

    # -- transitions -----------------------------------------------------------------------
    def set_member(self, vid: str, member: str | None) -> None:
        self._st(vid).member = member

    def near_entrance(self, vid: str, entrance: str | None) -> None:
        if entrance:
            self._st(vid).near_entrance = entrance

    def allow_found_inside(self, vid: str) -> None:
        self._st(vid).found_inside_ok = True

    def went_in(self, vid: str, t: float, entrance: str | None) -> None:
        st = self._st(vid)
        if st.inside:
            return
        st.inside = True
        st.was_inside = True
        if entrance:
            st.near_entrance = entrance
        if not st.entered and (entrance or st.found_inside_ok):
            # A visitor counts when its entry is seen, or when it was already inside as
            # ingest started (warm-up). Found inside later, it is a fragment of somebody whose
            # address rotated unnoticed: its store visits count, it is not a new visitor.
            st.entered = True
            st.entry_t = t
            st.entrance = entrance
            if entrance:
                self._emit("entry", t, st, entrance=entrance)

    def went_out(self, vid: str, t: float, entrance: str | None) -> None:
        st = self._st(vid)
        if not st.inside:
            return
        st.inside = False
        st.exit_t = t
        st.exit_entrance = entrance or st.near_entrance

    def floor_change(self, vid: str, t: float, f_from: str, f_to: str, via: str | None) -> None:
        st = self._st(vid)
        if st.floor is not None and st.floor != f_from:
            f_from = st.floor
        if f_from == f_to:
            return
        st.floor = f_to
        st.floor_changes.append((t, f_from, f_to, via))
        self._emit("floor_change", t, st, floor_from=f_from, floor_to=f_to,
                   **({"via": via} if via else {}))

    def set_floor(self, vid: str, floor: str) -> None:
        st = self._st(vid)
        if st.floor is None:
            st.floor = floor

    def zone_enter(self, vid: str, zone: str, enter_t: float) -> None:
        st = self._st(vid)
        o = st.open.get(zone)
        if o is not None:
            o[1] += 1
            o[0].enter_t = min(o[0].enter_t, enter_t)
            return
        p = st.pending.pop(zone, None)
        if p is not None and enter_t - p.exit_t <= self.merge_gap_s:
            st.open[zone] = [p, 1]        # continue the visit
            return
        if p is not None:
            self._close(st, p)
        st.open[zone] = [StoreVisit(zone, enter_t, enter_t), 1]
        self._emit("zone_enter", enter_t, st, zone=zone)

    def zone_exit(self, vid: str, zone: str, enter_t: float, exit_t: float) -> None:
        st = self._st(vid)
        o = st.open.get(zone)
        if o is None:
            return
        o[0].exit_t = max(o[0].exit_t, exit_t)
        o[1] -= 1
        if o[1] <= 0:
            del st.open[zone]
            st.pending[zone] = o[0]

    def _close(self, st: _State, sv: StoreVisit) -> None:
        if sv.exit_t - sv.enter_t < self.min_visit_s:
            return
        st.visits.append(sv)
        self._emit("zone_exit", sv.exit_t, st, zone=sv.zone, dwell_s=round(sv.exit_t - sv.enter_t, 3))
        self._recent.append((st.vid, sv, st.member))

    def tick(self, now: float) -> None:
        """Publish zone exits whose merge gap has passed; retry waiting POS transactions."""
        for st in self.states.values():
            if st.pending:
                for zone in [z for z, p in st.pending.items() if now - p.exit_t > self.merge_gap_s]:
                    self._close(st, st.pending.pop(zone))
        if self._pos_pending:
            keep = []
            for txn in self._pos_pending:
                if not self._match(txn) and now - txn.t < self.pos_wait_s:
                    keep.append(txn)
            self._pos_pending = keep
        horizon = now - self.pos_wait_s - self.pos_slack_s
        if self._recent and self._recent[0][1].exit_t < horizon:
            self._recent = [r for r in self._recent if r[1].exit_t >= horizon]

    # -- POS -------------------------------------------------------------------------------
    def purchase(self, txn: PosTransaction) -> bool:
        """Match a transaction now, or keep it waiting. True if matched."""
        if self._match(txn):
            return True
        self._pos_pending.append(txn)
        return False

    def _candidates(self, txn: PosTransaction):
        slack = self.pos_slack_s
        for st in self.states.values():
            o = st.open.get(txn.store)
            if o is not None and o[0].enter_t - slack <= txn.t:
                yield st, o[0], 1e9 + txn.t - o[0].enter_t   # an open visit covering now wins
            p = st.pending.get(txn.store)
            if p is not None and p.enter_t - slack <= txn.t <= p.exit_t + slack:
                yield st, p, p.exit_t - p.enter_t
        for vid, sv, member in self._recent:
            if sv.zone == txn.store and sv.enter_t - slack <= txn.t <= sv.exit_t + slack:
                st = self.states.get(vid) or _State(vid, member=member)
                yield st, sv, sv.exit_t - sv.enter_t

    def _match(self, txn: PosTransaction) -> bool:
        cands = list(self._candidates(txn))
        if txn.member is not None:
            cands = [c for c in cands if c[0].member == txn.member]
        else:
            # Anonymous: prefer a visit not yet credited with a purchase, then the longest.
            cands = [c for c in cands if not c[1].purchases] or cands
        if not cands:
            return False
        st, sv, _ = max(cands, key=lambda c: c[2])
        sv.purchases.append((txn.txn_id, txn.amount, txn.currency, txn.t))
        self._emit("purchase", txn.t, st, zone=txn.store, amount=txn.amount, currency=txn.currency,
                   txn_id=txn.txn_id)
        return True

    # -- end of a visitor ------------------------------------------------------------------
    def finish(self, vid: str, *, first_t: float, last_t: float, excluded: bool,
               returning: bool, n_devices: int, passby_entrance: str | None = None,
               device_ids: tuple = ()) -> VisitRecord:
        st = self.states.pop(vid, None) or _State(vid)
        # Visits still open end at their last observation.
        for zone, o in st.open.items():
            if zone in st.pending:
                self._close(st, st.pending.pop(zone))
            st.pending[zone] = o[0]
        st.open.clear()
        for sv in st.pending.values():
            self._close(st, sv)
        st.pending.clear()
        if st.entered:
            exit_t = st.exit_t if (st.exit_t is not None and not st.inside) else last_t
            st.exit_t = exit_t
            ent = st.exit_entrance or st.near_entrance or st.entrance
            st.exit_entrance = ent
            if ent:
                self._emit("exit", exit_t, st, entrance=ent,
                           duration_s=round(max(exit_t - (st.entry_t or first_t), 0.0), 3))
        elif passby_entrance and not excluded:
            self._emit("passby", last_t, st, entrance=passby_entrance)
        return VisitRecord(vid, st.member, first_t, last_t, st.entered, st.entry_t, st.entrance,
                           st.exit_t, st.exit_entrance, None if st.entered else passby_entrance,
                           st.floor_changes, st.visits, excluded, returning, n_devices,
                           tuple(device_ids))
