"""The tenant report's figures, each cell carrying how many distinct visitors stand behind it.

k-anonymity (DESIGN.md, privacy): a cell backed by fewer than ``k`` distinct visitors is not
shown; it reads ``<k``. A count or mean is suppressed when its visitors are fewer than k; a
share (conversion, members) also when its numerator's visitors are 1..k-1 (zero is shown: "no
one bought" names nobody). Suppressed cells are also left out of the charts. Secondary
suppression (deriving a hidden cell from a total) is not attempted: totals are shown only where
they are themselves above k, and the per-day and per-hour tables do not print their sum.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from analytics.report.query import ScopeTotals, VisitRow

DEFAULT_K = 5
# Dwell bins in minutes: [lo, hi); the last is open.
DWELL_BINS_MIN: tuple[tuple[float, float | None], ...] = (
    (0, 2), (2, 5), (5, 10), (10, 20), (20, 30), (30, 60), (60, None))


@dataclass(frozen=True)
class Cell:
    value: float | None
    visitors: int            # distinct visitors behind the value
    numerator_visitors: int | None = None  # for shares: distinct visitors in the numerator
    unit: str = ""
    digits: int = 0

    def suppressed(self, k: int) -> bool:
        if self.visitors < k:
            return True
        n = self.numerator_visitors
        return n is not None and 0 < n < k

    def shown(self, k: int) -> str:
        if self.suppressed(k):
            return f"<{k}"
        if self.value is None:
            return ""
        return f"{self.value:.{self.digits}f}{self.unit}"

    def chart_value(self, k: int) -> float | None:
        return None if self.suppressed(k) or self.value is None else float(self.value)


@dataclass
class Table:
    name: str
    title: str
    columns: tuple[str, ...]
    rows: list[tuple[str, tuple[Cell, ...]]] = field(default_factory=list)


def _ratio(num: int, den: int) -> float | None:
    return 100.0 * num / den if den else None


def _group_cells(rows: list[VisitRow]) -> tuple[Cell, ...]:
    visitors = {r.visitor for r in rows}
    buyers = {r.visitor for r in rows if r.purchase}
    members = {r.visitor for r in rows if r.member}
    n = len(rows)
    return (
        Cell(n, len(visitors)),
        Cell(len(visitors), len(visitors)),
        Cell(_ratio(sum(r.purchase for r in rows), n), len(visitors), len(buyers), "%", 1),
        Cell(_ratio(sum(r.member for r in rows), n), len(visitors), len(members), "%", 1),
    )


GROUP_COLUMNS = ("visits", "distinct visitors", "conversion", "members' share")


def per_day(rows: list[VisitRow], tz: str) -> Table:
    zone = ZoneInfo(tz)
    days: dict[str, list[VisitRow]] = {}
    for r in rows:
        days.setdefault(datetime.fromtimestamp(r.t, zone).date().isoformat(), []).append(r)
    t = Table("per_day", "Visits per day", GROUP_COLUMNS)
    t.rows = [(d, _group_cells(days[d])) for d in sorted(days)]
    return t


def per_hour(rows: list[VisitRow], tz: str) -> Table:
    zone = ZoneInfo(tz)
    hours: dict[int, list[VisitRow]] = {}
    for r in rows:
        hours.setdefault(datetime.fromtimestamp(r.t, zone).hour, []).append(r)
    t = Table("per_hour", "Visits per hour of day (all days)", ("visits", "distinct visitors"))
    t.rows = [(f"{h:02d}:00", _group_cells(hours[h])[:2]) for h in sorted(hours)]
    return t


def dwell_distribution(rows: list[VisitRow]) -> Table:
    t = Table("dwell", "Dwell distribution", ("visits", "distinct visitors"))
    for lo, hi in DWELL_BINS_MIN:
        inside = [r for r in rows if r.dwell_s >= lo * 60 and (hi is None or r.dwell_s < hi * 60)]
        label = f"{lo:g}-{hi:g} min" if hi is not None else f">= {lo:g} min"
        v = {r.visitor for r in inside}
        t.rows.append((label, (Cell(len(inside), len(v)), Cell(len(v), len(v)))))
    return t


def scope_cells(tot: ScopeTotals) -> tuple[Cell, ...]:
    per_store = tot.visits / tot.stores if tot.stores else None
    return (
        Cell(tot.visits, tot.visitors),
        Cell(per_store, tot.visitors, digits=1),
        Cell(tot.dwell_mean_s / 60.0 if tot.dwell_mean_s is not None else None, tot.visitors,
             unit=" min", digits=1),
        Cell(_ratio(tot.purchases, tot.visits), tot.visitors, tot.purchasers, "%", 1),
        Cell(_ratio(tot.members, tot.visits), tot.visitors, tot.member_visitors, "%", 1),
    )


def comparison(store: ScopeTotals, floor: ScopeTotals, mall: ScopeTotals, *, store_id: str,
               floor_id: str | None) -> Table:
    t = Table("comparison", "The store compared with its floor and the mall",
              ("visits", "visits per store", "mean dwell", "conversion", "members' share"))
    t.rows = [(f"store {store_id}", scope_cells(store)),
              (f"floor {floor_id or '?'} (all stores)", scope_cells(floor)),
              ("mall (all stores)", scope_cells(mall))]
    return t


def totals_from_rows(rows: list[VisitRow]) -> ScopeTotals:
    visitors = {r.visitor for r in rows}
    return ScopeTotals(
        visits=len(rows), visitors=len(visitors), purchases=sum(r.purchase for r in rows),
        members=sum(r.member for r in rows),
        purchasers=len({r.visitor for r in rows if r.purchase}),
        member_visitors=len({r.visitor for r in rows if r.member}),
        dwell_mean_s=(sum(r.dwell_s for r in rows) / len(rows)) if rows else None,
        stores=1 if rows else 0)


def utc_iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")
