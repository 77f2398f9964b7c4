"""Read the store-visit measurement over InfluxQL (``GET /query``), as the dashboards do.

InfluxDB 1.x answers directly; 2.x and 3.x answer the same endpoint with a DBRP mapping and a
token (``Authorization: Token ...``). Only SELECTs are sent; the answer is decoded into rows.
"""
from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from analytics.errors import AnalyticsError
from dashboards import schema as s

log = logging.getLogger(__name__)


class ReportError(AnalyticsError):
    """The report cannot be made: the database refused a query, or there is nothing to show."""

    def __init__(self, why: str, *, query: str | None = None) -> None:
        super().__init__(f"{why}" + (f" (query: {query})" if query else ""))
        self.why = why
        self.query = query


@dataclass(frozen=True)
class VisitRow:
    t: float          # unix seconds, start of the visit (the point's time, zone_enter)
    dwell_s: float
    purchase: int     # 0/1
    member: int       # 0/1
    visitor: str      # opaque visitor id (docs/metrics.md), never an address


@dataclass(frozen=True)
class ScopeTotals:
    """Aggregates over a scope (one store, its floor, the mall)."""

    visits: int
    visitors: int     # distinct visitor ids (a returning person gets a new id: an upper bound)
    purchases: int
    members: int
    purchasers: int   # distinct visitors with a purchase
    member_visitors: int
    dwell_mean_s: float | None
    stores: int       # stores with at least one visit


class InfluxQL:
    def __init__(self, url: str, db: str, *, token: str | None = None, username: str | None = None,
                 password: str | None = None, timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.db = db
        self.token, self.username, self.password = token, username, password
        self.timeout_s = timeout_s

    def series(self, q: str) -> list[dict]:
        params = {"q": q, "db": self.db, "epoch": "ms"}
        if self.username:
            params.update(u=self.username, p=self.password or "")
        req = urllib.request.Request(f"{self.url}/query?{urllib.parse.urlencode(params)}")
        if self.token:
            req.add_header("Authorization", f"Token {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
                ans = json.loads(r.read())
        except urllib.error.HTTPError as exc:
            raise ReportError(f"InfluxDB answered {exc.code}: {exc.read()[:200]!r}", query=q) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise ReportError(f"cannot reach InfluxDB at {self.url}: {exc}", query=q) from exc
        res = ans.get("results", [{}])[0]
        if "error" in res:
            raise ReportError(res["error"], query=q)
        return res.get("series", [])


def _q(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _where(site: str, start_ms: int, end_ms: int, **tags: str) -> str:
    parts = [f'"{s.SITE}" = {_q(site)}'] + [f'"{k}" = {_q(v)}' for k, v in tags.items()]
    parts += [f"time >= {start_ms}ms", f"time < {end_ms}ms"]
    return "WHERE " + " AND ".join(parts)


def store_visits(db: InfluxQL, site: str, store: str, start_ms: int, end_ms: int) -> list[VisitRow]:
    q = (f'SELECT "dwell_s", "purchase", "member", "visitor" FROM "{s.STORE_VISIT}" '
         + _where(site, start_ms, end_ms, **{s.STORE: store}))
    rows = []
    for ser in db.series(q):
        for t, dwell, purchase, member, visitor in ser["values"]:
            if dwell is None:
                continue
            rows.append(VisitRow(t / 1000.0, float(dwell), int(purchase or 0), int(member or 0),
                                 str(visitor or "")))
    rows.sort(key=lambda r: r.t)
    return rows


def store_floor(db: InfluxQL, site: str, store: str, start_ms: int, end_ms: int) -> str | None:
    q = (f'SHOW TAG VALUES FROM "{s.STORE_VISIT}" WITH KEY = "{s.FLOOR}" '
         f'WHERE "{s.SITE}" = {_q(site)} AND "{s.STORE}" = {_q(store)}')
    vals = [v[1] for ser in db.series(q) for v in ser["values"]]
    return vals[0] if vals else None


def scope_totals(db: InfluxQL, site: str, start_ms: int, end_ms: int, **tags: str) -> ScopeTotals:
    w = _where(site, start_ms, end_ms, **tags)
    m = s.STORE_VISIT
    per_store = db.series(f'SELECT count("dwell_s") FROM "{m}" {w} GROUP BY "{s.STORE}"')
    one = db.series(
        f'SELECT count("dwell_s"), count(distinct("visitor")), sum("purchase"), sum("member"), '
        f'mean("dwell_s") FROM "{m}" {w}')
    buyers = db.series(f'SELECT count(distinct("visitor")) FROM "{m}" {w} AND "purchase" = 1')
    mem = db.series(f'SELECT count(distinct("visitor")) FROM "{m}" {w} AND "member" = 1')
    if not one:
        return ScopeTotals(0, 0, 0, 0, 0, 0, None, 0)
    _, visits, visitors, purchases, members, dwell = one[0]["values"][0]

    def first(series):
        return int(series[0]["values"][0][1]) if series else 0

    return ScopeTotals(int(visits or 0), int(visitors or 0), int(purchases or 0), int(members or 0),
                       first(buyers), first(mem), dwell, len(per_store))
