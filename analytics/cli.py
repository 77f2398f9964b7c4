"""`mallsense ingest`: the analytics ingest service."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "ingest", help="run the analytics ingest service (MQTT -> journeys -> InfluxDB)",
        description="Subscribe to a site's sightings (MQTT 5, persistent session, QoS 1), build "
                    "shopper journeys and write metrics to InfluxDB (v1 or v2 API).")
    p.add_argument("--site", required=True, help="site model TOML file")
    p.add_argument("--mqtt", required=True, help="broker URL, mqtt://user:pass@host:1883")
    p.add_argument("--client-id", default="mallsense-ingest",
                   help="MQTT client id; the persistent session is keyed on it")
    p.add_argument("--share-group", default=None,
                   help="subscribe as $share/GROUP/... so several workers split the load")
    p.add_argument("--session-expiry", type=int, default=3600,
                   help="seconds the broker keeps our session and queued messages")
    p.add_argument("--influx", required=True, help="InfluxDB URL, http://host:8086")
    p.add_argument("--influx-v2", action="store_true", help="use the v2 API (org, bucket, token)")
    p.add_argument("--org", default=None)
    p.add_argument("--bucket", default=None)
    p.add_argument("--token", default=os.environ.get("INFLUX_TOKEN"),
                   help="v2 token (default: $INFLUX_TOKEN)")
    p.add_argument("--db", default=None, help="v1 database")
    p.add_argument("--rp", default=None, help="v1 retention policy")
    p.add_argument("--spool", default="ingest-spool.db", help="SQLite spool for outages")
    p.add_argument("--batch-lines", type=int, default=5000)
    p.add_argument("--flush-s", type=float, default=1.0)
    p.add_argument("--lateness-s", type=float, default=3.0,
                   help="allowed event-time lateness before a window closes")
    p.add_argument("--members", default=None, help="CRM members CSV or SQLite file")
    p.add_argument("--pos-csv", default=None, help="POS transactions CSV to match (besides the pos topic)")
    p.add_argument("--run-s", type=float, default=None, help="stop after this many seconds")
    p.set_defaults(func=run)


def _usage_error(msg: str) -> int:
    """Bad flags or files: exit code 2 and a message naming the flag (as argparse does)."""
    sys.stderr.write(f"mallsense ingest: error: {msg}\n")
    return 2


def run(args: argparse.Namespace) -> int:
    from gateway.site import SiteError, load_site

    from analytics.mqtt_source import BrokerUrl

    from analytics._blas import limit_blas_threads
    from analytics.crm import load_members
    from analytics.errors import ConfigError
    from analytics.ingest import IngestService
    from analytics.pipeline import Pipeline, PipelineConfig
    from analytics.pos import read_pos_csv
    from analytics.sink import make_sink

    limit_blas_threads(1)
    for flag, value, ok, why in (
            ("--flush-s", args.flush_s, args.flush_s > 0, "must be > 0"),
            ("--lateness-s", args.lateness_s, args.lateness_s >= 0, "must be >= 0"),
            ("--batch-lines", args.batch_lines, args.batch_lines >= 1, "must be >= 1"),
            ("--session-expiry", args.session_expiry, args.session_expiry >= 0, "must be >= 0")):
        if not ok:
            return _usage_error(f"{flag} {value}: {why}")
    if not args.influx_v2 and not args.db:
        return _usage_error("--db: required for the v1 transport (or use --influx-v2)")
    try:
        BrokerUrl.parse(args.mqtt)
        site = load_site(args.site)
        crm = load_members(args.members) if args.members else None
        sink = make_sink(url=args.influx, db=args.db, rp=args.rp, org=args.org, bucket=args.bucket,
                         token=args.token, v2=args.influx_v2, spool_path=args.spool,
                         batch_lines=args.batch_lines, precision="ns")
    except SiteError as exc:
        return _usage_error(f"--site {args.site}: {exc}")
    except ConfigError as exc:
        return _usage_error(str(exc))
    except OSError as exc:
        return _usage_error(f"{getattr(exc, 'filename', '') or args.site}: {exc}")
    pipeline = Pipeline(site, PipelineConfig(lateness_s=args.lateness_s), crm=crm)
    svc = IngestService(pipeline, sink, args.mqtt, client_id=args.client_id,
                        share_group=args.share_group, session_expiry_s=args.session_expiry,
                        flush_s=args.flush_s)
    if args.pos_csv:
        for txn in read_pos_csv(args.pos_csv, site.id):
            svc.handle(pipeline.pos(txn))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    svc.run(stop, max_s=args.run_s)
    return 0
