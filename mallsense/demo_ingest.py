"""The demo's ingest process: ``python -m mallsense.demo_ingest ...`` (run by mallsense.demo).

It is `mallsense ingest` plus what the demo's CRM needs: the app server's token -> member map
(rotating member tokens) and members revoking consent half way through the afternoon. A
separate process so that ingest has a core of its own, as it would in production.

Work-around (reported): locate.multilaterate refused a negative z until locate d38262a, and the
sample mall has a basement (B1 at -5 m), so every floor of the site model handed to the pipeline
is lifted by the same height. Distances between gateways and devices, hence every RSSI model,
are unchanged, so it stays harmless with a locate that accepts negative z.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import logging
import signal
import sys
import threading
import time


def lifted_site(site):
    """The site with every floor raised so that no elevation (nor device height) is negative."""
    low = min(f.elevation_m for f in site.floors)
    if low >= 0:
        return site
    lift = -low
    floors = tuple(dataclasses.replace(f, elevation_m=f.elevation_m + lift) for f in site.floors)
    return dataclasses.replace(site, floors=floors)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mallsense.demo_ingest")
    p.add_argument("--site", required=True)
    p.add_argument("--mqtt", required=True)
    p.add_argument("--influx", required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--spool", required=True)
    p.add_argument("--members", required=True, help="CRM CSV (member_id, tier, consent)")
    p.add_argument("--tokens", required=True, help="CSV token,member_id (the app server's map)")
    p.add_argument("--revoke", default="", help="member ids revoking consent at --revoke-at")
    p.add_argument("--revoke-at", type=float, default=0.0, help="event time (unix s)")
    p.add_argument("--lateness-s", type=float, default=20.0)
    p.add_argument("--ready-file", default=None,
                   help="created once the broker acknowledged every subscription")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("mallsense.demo_ingest")

    from analytics._blas import limit_blas_threads
    from analytics.crm import load_members
    from analytics.ingest import IngestService
    from analytics.pipeline import Pipeline, PipelineConfig
    from analytics.sink import make_sink
    from gateway.site import load_site

    # One core, as `mallsense ingest` runs: OpenBLAS threads spinning beside the edge agents
    # made every window's matrix products several times slower.
    limit_blas_threads(1)
    site = lifted_site(load_site(args.site))
    crm = load_members(args.members)
    with open(args.tokens, newline="") as f:
        crm.add_tokens({row["token"]: row["member_id"] for row in csv.DictReader(f)})
    revoke = [m for m in args.revoke.split(",") if m]
    sink = make_sink(url=args.influx, db=args.db, spool_path=args.spool, precision="ns")
    pipeline = Pipeline(site, PipelineConfig(lateness_s=args.lateness_s), crm=crm)
    svc = IngestService(pipeline, sink, args.mqtt, client_id="mallsense-demo-ingest",
                        flush_s=1.0)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    # IngestService.run's loop, plus the revocations once event time has passed revoke_at.
    next_flush = 0.0
    ready_file = args.ready_file
    try:
        while not stop.is_set():
            svc.source.poll(0.05)
            # The demo's gateways must not publish before ingest listens (no session exists yet).
            if ready_file and svc.source.subscribed:
                open(ready_file, "w").close()
                log.info("subscribed to %s", svc.source.filters)
                ready_file = None
            if revoke and pipeline.devices.t >= args.revoke_at:
                for m in revoke:
                    crm.revoke(m)
                log.info("%d members revoked consent at event time %.0f", len(revoke),
                         pipeline.devices.t)
                revoke = []
            if time.monotonic() >= next_flush:
                svc.flush()
                next_flush = time.monotonic() + svc.flush_s
    finally:
        svc.close()
    log.info("ingest finished: %s", dict(pipeline.stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
