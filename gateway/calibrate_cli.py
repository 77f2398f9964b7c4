"""`mallsense calibrate`: fit P0 per gateway from reference-beacon sightings."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "calibrate", help="fit P0 (and optionally the path-loss exponent) per gateway from "
                          "reference beacons",
        description="Reads sightings batches (a JSON-lines recording of the sightings topic, or "
                    "the live broker) and a beacon registry, fits each gateway's RSSI at 1 m "
                    "(with the site file's exponent, or one fitted for the building) and prints "
                    "residuals per gateway. Spread the beacons over each whole floor, stores "
                    "included, about 5 m apart: a gateway's offset is only as good as the "
                    "number of independent positions it hears or misses them at.")
    p.add_argument("--site", required=True, help="site model TOML")
    p.add_argument("--beacons", required=True,
                   help="beacon registry CSV: beacon (uuid:major:minor), floor, x, y[, z]")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--sightings", help="JSON-lines file, one sightings payload per line")
    src.add_argument("--mqtt", help="broker URL to listen to, mqtt://user:pass@host:1883")
    p.add_argument("--listen-s", type=float, default=300.0, help="seconds to listen with --mqtt")
    p.add_argument("--radio", choices=("ble",), default="ble")
    p.add_argument("--exponent", choices=("site", "shared"), default="site",
                   help="site: keep the site file's exponents (the offsets are used with them); "
                        "shared: fit one for the building (a check of the site file)")
    p.add_argument("--out", help="write the fitted offsets as TOML here")
    p.set_defaults(func=run)


def _read_jsonl(path: Path):
    from gateway.wire import SightingsBatch, WireError

    bad = 0
    with open(path, "rb") as f:
        for n, line in enumerate(f, start=1):
            line = line.strip()
            if not line:
                continue
            try:
                yield SightingsBatch.decode(line)
            except WireError as exc:
                bad += 1
                log.warning("%s:%d: skipped: %s", path, n, exc)
    if bad:
        log.warning("%s: %d lines were not sightings batches", path, bad)


def _listen(url: str, site_id: str, seconds: float):
    """Sightings batches heard on the live broker for `seconds` (QoS 1 subscription)."""
    import queue
    import time
    import uuid

    import paho.mqtt.client as mqtt

    from gateway.fleet import parse_url
    from gateway.wire import SightingsBatch, Topic, WireError

    host, port, tls, user, pw = parse_url(url)
    inbox: queue.Queue[bytes] = queue.Queue()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                         client_id=f"mallsense-calibrate-{uuid.uuid4().hex[:8]}",
                         protocol=mqtt.MQTTv5)
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(Topic.sightings_filter(site_id), qos=1)
    client.on_message = lambda c, u, m: inbox.put(m.payload)
    if user:
        client.username_pw_set(user, pw)
    if tls:
        client.tls_set()
    client.connect(host, port, keepalive=30)
    client.loop_start()
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                payload = inbox.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                yield SightingsBatch.decode(payload)
            except WireError as exc:
                log.warning("skipped a bad sightings payload: %s", exc)
    finally:
        client.disconnect()
        client.loop_stop()


def run(args: argparse.Namespace) -> int:
    from gateway.calibrate import (BeaconSurvey, CalibrationError, fit_survey, format_table,
                                   load_beacons, overrides_toml)
    from gateway.site import SiteError, load_site

    try:
        site = load_site(args.site)
        beacons = load_beacons(args.beacons, site)
    except (SiteError, CalibrationError, OSError) as exc:
        print(f"mallsense calibrate: {exc}", file=sys.stderr)
        return 2
    survey = BeaconSurvey(tuple(g.id for g in site.gateways), tuple(beacons))
    if args.sightings:
        survey.add_all(_read_jsonl(Path(args.sightings)))
    else:
        survey.add_all(_listen(args.mqtt, site.id, args.listen_s))
    try:
        rows = fit_survey(site, survey, args.radio, exponent=args.exponent)
    except CalibrationError as exc:
        print(f"mallsense calibrate: {exc}", file=sys.stderr)
        return 1
    print(format_table(rows))
    unheard = [g.id for g in site.gateways if g.id not in {r.gateway for r in rows}]
    if unheard:
        print(f"\nnot calibrated (fewer than 2 same-floor beacons heard): {', '.join(unheard)}")
    if args.out:
        Path(args.out).write_text(overrides_toml(rows))
        print(f"\noffsets written to {args.out}")
    return 0 if rows else 1
