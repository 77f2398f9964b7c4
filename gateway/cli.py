"""`mallsense gateway provision ...` and `mallsense fleet ...` (field tools)."""
from __future__ import annotations

import argparse
import sys
import time

from gateway.errors import GatewayError


def register(subparsers: argparse._SubParsersAction) -> None:
    gw = subparsers.add_parser("gateway", help="field tools for gateways")
    gw_sub = gw.add_subparsers(dest="gateway_command", metavar="COMMAND")
    gw_sub.required = True
    p = gw_sub.add_parser(
        "provision",
        help="write a gateway's edge config, broker password line and ACL",
        description="Writes DIR/{gw}.toml (edge config, 0600), DIR/{gw}.passwd (mosquitto "
        "password_file line), DIR/{gw}.acl (mosquitto acl_file block) and DIR/site.secret "
        "(if missing; shared by every gateway of the site).",
    )
    p.add_argument("--site", required=True, metavar="FILE", help="site model TOML")
    p.add_argument("--gateway", required=True, metavar="ID", help="gateway id in the site")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--broker", default=None, metavar="URL", help="broker URL in the config")
    p.add_argument("--secret-path", default=None, metavar="PATH",
                   help="where the site secret is installed on the gateway")
    p.add_argument("--spool-path", default=None, metavar="PATH", help="spool folder on the gateway")
    p.add_argument("--force", action="store_true", help="overwrite: rotates the password")
    p.set_defaults(func=cmd_provision)

    f = subparsers.add_parser(
        "fleet",
        help="health of every gateway of a site from its retained status",
        description="Exits 1 if any gateway is offline, stale, unreadable or missing.",
    )
    f.add_argument("--mqtt", required=True, metavar="URL", help="mqtt[s]://[user:pw@]host[:port]")
    f.add_argument("--site", required=True, metavar="ID", help="site id")
    f.add_argument("--site-file", metavar="FILE", help="site TOML: also report silent gateways")
    f.add_argument("--wait", type=float, default=3.0, metavar="S", help="seconds to wait at most")
    f.add_argument("--stale", type=float, default=180.0, metavar="S",
                   help="an online heartbeat older than this counts as stale")
    f.add_argument("--username", help="broker user (or in the URL)")
    f.add_argument("--password", help="broker password (or in the URL)")
    f.set_defaults(func=cmd_fleet)


def cmd_provision(args: argparse.Namespace) -> int:
    from gateway import provision as prov
    from gateway.site import SiteError, load_site

    try:
        site = load_site(args.site)
        done = prov.provision(
            site, args.gateway, args.out,
            broker_url=args.broker or prov.DEFAULT_BROKER,
            secret_path=args.secret_path or prov.DEFAULT_SECRET_PATH,
            spool_path=args.spool_path or prov.DEFAULT_SPOOL_PATH,
            force=args.force,
        )
    except SiteError as exc:
        print(f"{args.site}: {len(exc.problems)} problem(s)\n{exc}", file=sys.stderr)
        return 2
    except GatewayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"gateway {args.gateway}: broker user {done.username}")
    for path in (done.config, done.passwd, done.acl):
        print(f"  wrote {path}")
    print(f"  {'created' if done.secret_created else 'kept'} {done.site_secret}")
    print("append the .passwd line to the broker's password_file and the .acl block to its "
          "acl_file, then reload mosquitto")
    return 0


def cmd_fleet(args: argparse.Namespace) -> int:
    from gateway import fleet

    expected: tuple[str, ...] = ()
    if args.site_file:
        from gateway.site import SiteError, load_site

        try:
            expected = tuple(g.id for g in load_site(args.site_file).gateways)
        except SiteError as exc:
            print(f"{args.site_file}: {exc}", file=sys.stderr)
            return 2
    try:
        found = fleet.collect_statuses(args.mqtt, args.site, args.wait, args.username,
                                       args.password)
    except fleet.FleetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    now = time.time()
    rows = fleet.assess(found, now, expected, args.stale)
    print(fleet.format_table(rows, now))
    return 0 if rows and all(r.ok for r in rows) else 1
