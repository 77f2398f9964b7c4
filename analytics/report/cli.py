"""`mallsense report`: one tenant's store report as HTML (+ PNG charts) and CSV."""
from __future__ import annotations

import sys
from datetime import datetime, timezone


def _instant(text: str) -> float:
    """ISO 8601 date or date-time; without an offset it is taken as UTC."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def register(subparsers) -> None:
    p = subparsers.add_parser("report", help="write a tenant's store report (HTML, PNG, CSV)")
    p.add_argument("--influx", required=True, help="InfluxDB URL (InfluxQL /query endpoint)")
    p.add_argument("--db", required=True, help="database (1.x) or DBRP-mapped bucket (2.x/3.x)")
    p.add_argument("--token", default=None, help="InfluxDB 2.x/3.x token")
    p.add_argument("--site", required=True, help="site id")
    p.add_argument("--store", required=True, help="store zone id")
    p.add_argument("--from", dest="start", required=True, type=_instant, help="ISO start (inclusive)")
    p.add_argument("--to", dest="end", required=True, type=_instant, help="ISO end (exclusive)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--k", type=int, default=5, help="suppress cells with fewer distinct visitors")
    p.add_argument("--tz", default="UTC", help="time zone for days and hours, e.g. Europe/Berlin")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from analytics.report.query import InfluxQL, ReportError
    from analytics.report.report import make_report

    try:
        files = make_report(InfluxQL(args.influx, args.db, token=args.token), site=args.site,
                            store=args.store, start=args.start, end=args.end, out_dir=args.out,
                            k=args.k, tz=args.tz)
    except ReportError as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 2
    print(files.html)
    return 0
