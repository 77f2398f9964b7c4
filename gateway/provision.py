"""Provision one gateway: its edge config, its broker credentials and its broker ACL.

``mallsense gateway provision --site FILE --gateway ID --out DIR`` writes into DIR:

- ``{gw}.toml``   the gateway's edge config (site, gateway, [mqtt] with a fresh password,
                  [privacy] secret_file, [spool] path); mode 0600, it holds the password;
- ``{gw}.passwd`` the gateway's line for mosquitto's ``password_file``;
- ``{gw}.acl``    the gateway's block for mosquitto's ``acl_file``: write-only under
                  ``mallsense/v1/{site}/gw/{gw}/#`` (DESIGN.md "Privacy and security");
- ``site.secret`` the site's pseudonym key (32 random bytes, 0600) unless it exists already:
                  every gateway of a site must share it, or pseudonyms differ between gateways.

The password hash is made by ``mosquitto_passwd`` when installed, else here in the same
``$7$`` format (PBKDF2-HMAC-SHA512, mosquitto 2.0's ``sha512-pbkdf2``).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from gateway.errors import GatewayError
from gateway.site import Site
from gateway.wire import Topic

log = logging.getLogger(__name__)

# mosquitto 2.0 src/password_mosq.h: PW_DEFAULT_ITERATIONS 101, SALT_LEN 12, sha512 => 64 bytes.
PBKDF2_ITERATIONS = 101
SALT_BYTES = 12
SITE_SECRET_BYTES = 32  # edge.privacy needs >= 16
MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"
DEFAULT_BROKER = "mqtts://mqtt.local:8883"
DEFAULT_SECRET_PATH = "/etc/mallsense/site.secret"
DEFAULT_SPOOL_PATH = "/var/lib/mallsense/spool"


class ProvisionError(GatewayError):
    """Provisioning refused: unknown gateway, files that exist, a broken tool."""


@dataclass(frozen=True)
class Provisioned:
    """What provision() wrote. ``password`` is the plain password, also in ``config``."""

    username: str
    password: str
    config: Path
    passwd: Path
    acl: Path
    site_secret: Path
    secret_created: bool


def username_for(site_id: str, gw_id: str) -> str:
    """Broker user of a gateway: ``{site}.{gw}`` ('.' is not allowed in ids, so unambiguous)."""
    return f"{site_id}.{gw_id}"


def mosquitto_hash(password: str, salt: bytes | None = None,
                   iterations: int = PBKDF2_ITERATIONS) -> str:
    """``$7$iterations$b64(salt)$b64(hash)``: mosquitto's PBKDF2-SHA512 password entry."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return "$7${}${}${}".format(
        iterations, base64.b64encode(salt).decode("ascii"), base64.b64encode(digest).decode("ascii")
    )


def check_mosquitto_hash(password: str, entry: str) -> bool:
    """True if a ``$7$`` entry (hash part of a password-file line) matches ``password``."""
    try:
        _, kind, iterations, salt, digest = entry.split("$")
        if kind != "7":
            return False
        want = base64.b64decode(digest, validate=True)
        got = hashlib.pbkdf2_hmac(
            "sha512", password.encode("utf-8"), base64.b64decode(salt, validate=True),
            int(iterations),
        )
    except ValueError:
        return False
    return hmac.compare_digest(want, got)


def password_line(username: str, password: str, tool: str | None = MOSQUITTO_PASSWD) -> str:
    """One ``user:hash`` line for mosquitto's password file (no newline)."""
    if ":" in username or "\n" in username:
        raise ProvisionError(f"username {username!r} may not contain ':' or a newline")
    if tool and Path(tool).is_file() and os.access(tool, os.X_OK):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "passwd"
            # -c creates the file; -b takes the password as an argument (visible to ps on this
            # machine for the few ms the tool runs: acceptable on a provisioning laptop).
            done = subprocess.run(
                [tool, "-c", "-b", str(path), username, password],
                capture_output=True, text=True, timeout=30, check=False,
            )
            if done.returncode != 0:
                raise ProvisionError(f"{tool} failed: {done.stderr.strip() or done.returncode}")
            line = path.read_text().strip()
        log.debug("password hash made by %s", tool)
        return line
    return f"{username}:{mosquitto_hash(password)}"


def acl_lines(site_id: str, gw_id: str) -> list[str]:
    """The gateway's mosquitto ACL block: publish under its own subtree, nothing else."""
    return [
        f"# gateway {gw_id} of site {site_id}: publish only under its own topics",
        f"user {username_for(site_id, gw_id)}",
        f"topic write {Topic.gateway_filter(site_id, gw_id)}",
    ]


def edge_config(site: Site, gw_id: str, username: str, password: str, broker_url: str,
                secret_path: str, spool_path: str) -> dict:
    """The edge agent's config (the layout edge.config.parse_config reads, deploy/edge.sample.toml).

    ``spool_path`` is the agent's state folder (spool database and persisted seq)."""
    from gateway.fleet import parse_url

    gw = site.gateway(gw_id)
    host, port, tls, _, _ = parse_url(broker_url)
    return {
        "gateway": {"site": site.id, "id": gw.id, "state_dir": spool_path},
        "privacy": {"secret_file": secret_path},
        "mqtt": {"host": host, "port": port, "username": username, "password": password,
                 "tls": tls},
        "ble": {"enabled": "ble" in gw.radios},
        "wifi": {"enabled": "wifi" in gw.radios},
    }


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


def provision(
    site: Site,
    gw_id: str,
    out_dir: str | os.PathLike,
    *,
    broker_url: str = DEFAULT_BROKER,
    secret_path: str = DEFAULT_SECRET_PATH,
    spool_path: str = DEFAULT_SPOOL_PATH,
    password: str | None = None,
    force: bool = False,
    tool: str | None = MOSQUITTO_PASSWD,
) -> Provisioned:
    """Write the gateway's config, password line and ACL block into ``out_dir``.

    Refuses (ProvisionError) a gateway the site does not list, and existing files of this
    gateway unless ``force`` (re-provisioning rotates the password).
    """
    try:
        site.gateway(gw_id)
    except KeyError:
        known = ", ".join(g.id for g in site.gateways[:10])
        raise ProvisionError(
            f"site {site.id} has no gateway {gw_id!r} (known: {known}...)"
        ) from None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config, passwd, acl = (out / f"{gw_id}.{ext}" for ext in ("toml", "passwd", "acl"))
    existing = [p.name for p in (config, passwd, acl) if p.exists()]
    if existing and not force:
        raise ProvisionError(f"{out}: {', '.join(existing)} exist; --force rotates the password")
    username = username_for(site.id, gw_id)
    password = password or secrets.token_urlsafe(24)
    secret = out / "site.secret"
    created = not secret.exists()
    if created:
        _write_private(secret, secrets.token_bytes(SITE_SECRET_BYTES))
        log.info("created site secret %s", secret)
    elif secret.stat().st_size < 16:
        raise ProvisionError(f"{secret} holds fewer than 16 bytes; delete it to make a new one")
    cfg = edge_config(site, gw_id, username, password, broker_url, secret_path, spool_path)
    header = (
        f"# Edge config of gateway {gw_id}, site {site.id}; written by `mallsense gateway "
        f"provision`.\n# Holds the broker password: keep it 0600. Install {secret.name} as "
        f"{secret_path}.\n"
    )
    _write_private(config, header.encode() + tomli_w.dumps(cfg).encode())
    _write_private(passwd, (password_line(username, password, tool) + "\n").encode())
    acl.write_text("\n".join(acl_lines(site.id, gw_id)) + "\n")
    log.info("provisioned %s as broker user %s in %s", gw_id, username, out)
    return Provisioned(username, password, config, passwd, acl, secret, created)
