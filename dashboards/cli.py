"""`mallsense dashboards build|push`: Grafana dashboards as code."""
from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser("dashboards", help="build Grafana dashboards or push them to a Grafana")
    sub = p.add_subparsers(dest="dashboards_command", metavar="ACTION")
    sub.required = True

    b = sub.add_parser("build", help="write dashboard JSON, floor plans and provisioning YAML")
    _site_args(b)
    b.add_argument("--out", required=True, help="output folder")
    b.add_argument("--influx-url", default="http://localhost:8086",
                   help="InfluxDB URL for the provisioned data source")
    b.add_argument("--db", default="mallsense", help="InfluxDB database (InfluxQL)")
    b.add_argument("--dashboards-path", default=None,
                   help="the dashboards folder as Grafana sees it (default: absolute OUT/dashboards)")
    b.set_defaults(func=_build)

    u = sub.add_parser("push", help="create or overwrite the dashboards in a running Grafana")
    _site_args(u)
    u.add_argument("--grafana", required=True, help="Grafana URL, e.g. http://localhost:3000")
    u.add_argument("--token", default=None, help="service account token (or user:password)")
    u.add_argument("--folder-uid", default=None, help="folder to put the dashboards in")
    u.add_argument("--influx-url", default=None,
                   help="also create/update the InfluxQL data source pointing here")
    u.add_argument("--db", default="mallsense", help="database for --influx-url")
    u.set_defaults(func=_push)


def _site_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--site", default=None, help="site TOML (default: the sample mall)")
    p.add_argument("--image-base-url", default=None,
                   help="URL prefix Grafana loads floor plans from (default /public/img/mallsense)")


def _load(args):
    from gateway.site import load_site, sample_site_path
    from dashboards.build import DEFAULT_IMAGE_BASE_URL
    site = load_site(args.site or sample_site_path())
    return site, args.image_base_url or DEFAULT_IMAGE_BASE_URL


def _build(args) -> int:
    from dashboards.build import write_all
    site, base = _load(args)
    res = write_all(site, args.out, image_base_url=base, influx_url=args.influx_url,
                    database=args.db, dashboards_path=args.dashboards_path)
    for uid, path in res.dashboards.items():
        print(f"{uid}: {path}")
    return 0


def _push(args) -> int:
    from dashboards.build import build_all
    from dashboards.push import connect, ensure_datasource, push_dashboards
    site, base = _load(args)
    token = args.token
    credential = tuple(token.split(":", 1)) if token and ":" in token else token
    api = connect(args.grafana, credential)
    if args.influx_url:
        ensure_datasource(api, args.influx_url, args.db)
    answers = push_dashboards(api, build_all(site, base), folder_uid=args.folder_uid)
    for a in answers:
        print(f"pushed {a.get('uid')}: {a.get('url')}")
    return 0
