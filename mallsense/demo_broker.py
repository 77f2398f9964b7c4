"""The demo's broker, secured like production: per-gateway credentials and ACLs, no anonymous.

Every gateway is provisioned with ``gateway.provision`` (its own broker user, pinned by the ACL
to ``mallsense/v1/{site}/gw/{gw}/#``); the demo adds three service users the same way:

- ``ingest``: reads the site's tree, writes events and dead letters;
- ``pos``: the tills, write-only on the ``pos`` topic;
- ``observer``: read-only on everything (the demo's accuracy evaluation and privacy capture).
"""
from __future__ import annotations

import logging
import secrets
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from gateway.provision import password_line, provision
from gateway.wire import Topic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Credentials:
    username: str | None
    password: str | None


@dataclass
class BrokerPlan:
    """What provisioning produced: users per gateway and per service, the broker files."""

    site_secret: Path
    gateways: dict[str, Credentials] = field(default_factory=dict)
    configs: dict[str, Path] = field(default_factory=dict)   # provisioned edge config per gw
    services: dict[str, Credentials] = field(default_factory=dict)
    password_file: Path | None = None
    acl_file: Path | None = None


SERVICE_ACL = {
    "ingest": ("topic read mallsense/v1/{site}/#", "topic write mallsense/v1/{site}/events/#",
               "topic write mallsense/v1/{site}/deadletter"),
    "pos": ("topic write mallsense/v1/{site}/pos",),
    "observer": ("topic read #",),
}


def provision_site(site, folder: Path, broker_url: str) -> BrokerPlan:
    """Provision every gateway of ``site`` into ``folder`` and write the broker's password and
    ACL files (mosquitto format) for them and the service users."""
    folder.mkdir(parents=True, exist_ok=True)
    gw_dir = folder / "gateways"
    lines: list[str] = []
    acl: list[str] = []
    plan = BrokerPlan(site_secret=gw_dir / "site.secret")
    for g in site.gateways:
        p = provision(site, g.id, gw_dir, broker_url=broker_url,
                      secret_path=str(gw_dir / "site.secret"), spool_path=str(folder / "spool"),
                      force=True)
        plan.gateways[g.id] = Credentials(p.username, p.password)
        plan.configs[g.id] = p.config
        lines.append(p.passwd.read_text().strip())
        acl += p.acl.read_text().strip().splitlines() + [""]
    for user, rules in SERVICE_ACL.items():
        pw = secrets.token_urlsafe(18)
        plan.services[user] = Credentials(user, pw)
        lines.append(password_line(user, pw))
        acl += [f"# demo service user {user}", f"user {user}"]
        acl += [r.format(site=site.id) for r in rules] + [""]
    plan.password_file = folder / "broker.passwd"
    plan.acl_file = folder / "broker.acl"
    plan.password_file.write_text("\n".join(lines) + "\n")
    plan.password_file.chmod(0o600)
    plan.acl_file.write_text("\n".join(acl))
    assert str(Topic.gateway_filter(site.id, site.gateways[0].id)) in plan.acl_file.read_text()
    log.info("provisioned %d gateways and %d service users", len(plan.gateways),
             len(plan.services))
    return plan


def open_plan(site, folder: Path, url: str) -> BrokerPlan:
    """A broker the user gave (--mqtt URL): its credentials (if any) for every client; the
    site secret is still made by provisioning (the gateways must share it)."""
    u = urllib.parse.urlsplit(url)
    cred = Credentials(urllib.parse.unquote(u.username) if u.username else None,
                       urllib.parse.unquote(u.password) if u.password else None)
    folder.mkdir(parents=True, exist_ok=True)
    gw_dir = folder / "gateways"
    plan = BrokerPlan(site_secret=gw_dir / "site.secret")
    for g in site.gateways:
        p = provision(site, g.id, gw_dir, broker_url=url,
                      secret_path=str(gw_dir / "site.secret"), force=True)
        plan.gateways[g.id] = cred
        plan.configs[g.id] = p.config
    for user in SERVICE_ACL:
        plan.services[user] = cred
    return plan


def split_url(url: str) -> tuple[str, int, bool]:
    u = urllib.parse.urlsplit(url)
    tls = u.scheme in ("mqtts", "ssl")
    return u.hostname or "127.0.0.1", u.port or (8883 if tls else 1883), tls


def url_with(url: str, cred: Credentials) -> str:
    """``url`` with ``cred`` as its user info (for services that take a URL)."""
    host, port, tls = split_url(url)
    scheme = "mqtts" if tls else "mqtt"
    if cred.username is None:
        return f"{scheme}://{host}:{port}"
    user = urllib.parse.quote(cred.username, safe="")
    pw = urllib.parse.quote(cred.password or "", safe="")
    return f"{scheme}://{user}:{pw}@{host}:{port}"
