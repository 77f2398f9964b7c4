"""Make one store's report: query, compute figures with k-anonymity, write HTML + PNG + CSV."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from analytics.report import figures as fig
from analytics.report.query import InfluxQL, ReportError, scope_totals, store_floor, store_visits
from analytics.report.render import charts, page, write_csv
from dashboards import schema as s

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    csv: Path
    images: dict[str, Path]
    tables: dict[str, fig.Table]


def make_report(db: InfluxQL, *, site: str, store: str, start: float, end: float,
                out_dir: str | Path, k: int = fig.DEFAULT_K, tz: str = "UTC") -> ReportFiles:
    """Write ``index.html``, ``report.csv`` and the charts for ``[start, end)`` (unix seconds)."""
    if k < 1:
        raise ReportError(f"k must be >= 1, got {k}")
    if end <= start:
        raise ReportError("the report period is empty (--to must be after --from)")
    start_ms, end_ms = int(start * 1000), int(end * 1000)
    rows = store_visits(db, site, store, start_ms, end_ms)
    if not rows:
        raise ReportError(f"no visits of store {store!r} at site {site!r} in the period")
    floor = store_floor(db, site, store, start_ms, end_ms)
    floor_tot = (scope_totals(db, site, start_ms, end_ms, **{s.FLOOR: floor}) if floor
                 else fig.totals_from_rows([]))
    mall_tot = scope_totals(db, site, start_ms, end_ms)
    tables = {
        "per_day": fig.per_day(rows, tz),
        "per_hour": fig.per_hour(rows, tz),
        "dwell": fig.dwell_distribution(rows),
        "comparison": fig.comparison(fig.totals_from_rows(rows), floor_tot, mall_tot,
                                     store_id=store, floor_id=floor),
    }
    out = Path(out_dir)
    images = charts(tables, out, k)
    meta = {"site": site, "store": store, "floor": floor or "?",
            "from": fig.utc_iso(start), "to": fig.utc_iso(end), "time zone": tz,
            "k-anonymity": f"k = {k} distinct visitors"}
    html_path = out / "index.html"
    html_path.write_text(page(meta, tables, images, k))
    csv_path = write_csv(out / "report.csv", tables, k)
    log.info("report for %s/%s: %d visits -> %s", site, store, len(rows), html_path)
    return ReportFiles(html_path, csv_path, images, tables)
