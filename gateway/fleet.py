"""Fleet health: read every gateway's retained status and say which are not well.

``mallsense fleet --mqtt URL --site ID`` subscribes to ``mallsense/v1/{site}/gw/+/status``,
collects the retained heartbeats the broker hands back, prints one row per gateway and exits 1
if any gateway is offline, stale (no heartbeat for ``stale_s``), unreadable, or (with
``--site-file``) listed in the site but never heard of.

The pure part (``assess``, ``format_table``) takes the statuses and ``now``; only
``collect_statuses`` touches the network and the clock.
"""
from __future__ import annotations

import logging
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from typing import Iterable

from gateway.errors import GatewayError
from gateway.wire import Status, Topic, WireError, decode_any

log = logging.getLogger(__name__)

DEFAULT_STALE_S = 180.0  # three missed 60 s heartbeats
QUIET_S = 0.3  # retained messages arrive right after SUBACK; this long without one means done


class FleetError(GatewayError):
    """The broker could not be reached or refused us."""


@dataclass(frozen=True)
class GatewayHealth:
    """One row of the fleet table. ``status`` None when missing or unreadable."""

    gw: str
    state: str  # "online", "offline", "stale", "missing", "invalid"
    status: Status | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.state == "online"


def assess(
    statuses: dict[str, Status | WireError],
    now: float,
    expected: Iterable[str] = (),
    stale_s: float = DEFAULT_STALE_S,
) -> list[GatewayHealth]:
    """Health of every gateway that reported or is ``expected``, sorted by gateway id."""
    rows = []
    for gw in sorted(set(statuses) | set(expected)):
        st = statuses.get(gw)
        if st is None:
            rows.append(GatewayHealth(gw, "missing", problem="no retained status"))
        elif isinstance(st, WireError):
            rows.append(GatewayHealth(gw, "invalid", problem=str(st)))
        elif st.state == "offline":
            rows.append(GatewayHealth(gw, "offline", st))
        elif now - st.t > stale_s:
            rows.append(GatewayHealth(gw, "stale", st, f"last heartbeat {now - st.t:.0f} s ago"))
        else:
            rows.append(GatewayHealth(gw, "online", st))
    return rows


def _age(seconds: float) -> str:
    if seconds < 0:
        return "future"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172_800:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"


def format_table(rows: list[GatewayHealth], now: float) -> str:
    """Fixed-width table: gateway, state, last seen, frames/s per radio, spool, temperature."""
    head = ("GATEWAY", "STATE", "SEEN", "BLE/S", "WIFI/S", "SPOOL", "DROPPED", "TEMP", "VERSION")
    body = []
    for r in rows:
        st = r.status
        if st is None:
            body.append((r.gw, r.state, "-", "-", "-", "-", "-", "-", r.problem[:60]))
            continue
        rate = lambda k: f"{st.frames_per_s[k]:.1f}" if k in st.frames_per_s else "-"  # noqa: E731
        temp = "-" if st.cpu_temp_c is None else f"{st.cpu_temp_c:.1f}C"
        body.append((
            r.gw, r.state, _age(now - st.t), rate("ble"), rate("wifi"), str(st.spool_depth),
            str(st.spool_dropped), temp, st.version,
        ))
    widths = [max(len(str(row[i])) for row in [head, *body]) for i in range(len(head))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [head, *body]
    ]
    bad = sum(1 for r in rows if not r.ok)
    lines.append(f"{len(rows)} gateway(s), {bad} not online")
    return "\n".join(lines)


def parse_url(url: str) -> tuple[str, int, bool, str | None, str | None]:
    """``mqtt[s]://[user[:password]@]host[:port]`` -> (host, port, tls, username, password)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not parts.hostname:
        raise FleetError(f"broker URL {url!r} is not mqtt://host[:port] or mqtts://host[:port]")
    tls = parts.scheme in ("mqtts", "ssl")
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise FleetError(f"broker URL {url!r} has a bad port") from None
    user = urllib.parse.unquote(parts.username) if parts.username else None
    pw = urllib.parse.unquote(parts.password) if parts.password else None
    return parts.hostname, port, tls, user, pw


def collect_statuses(
    url: str,
    site: str,
    wait_s: float = 3.0,
    username: str | None = None,
    password: str | None = None,
) -> dict[str, Status | WireError]:
    """The retained status of every gateway of ``site``, keyed by gateway id."""
    import paho.mqtt.client as mqtt  # the [tools] extra; the pure functions above work without

    host, port, tls, url_user, url_pw = parse_url(url)
    username, password = username or url_user, password or url_pw
    found: dict[str, Status | WireError] = {}
    subscribed = threading.Event()
    failed: list[str] = []
    last = [time.monotonic()]
    lock = threading.Lock()

    def on_connect(client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            failed.append(f"broker refused the connection: {reason_code}")
            subscribed.set()
            return
        client.subscribe(Topic.status_filter(site), qos=1)

    def on_subscribe(client, userdata, mid, reason_codes, properties):
        if any(rc.is_failure for rc in reason_codes):
            failed.append(f"subscription refused: {reason_codes}")
        last[0] = time.monotonic()
        subscribed.set()

    def on_message(client, userdata, msg):
        try:
            topic = Topic.parse(msg.topic)
            record = decode_any(topic, msg.payload)
        except WireError as exc:
            log.warning("unreadable status on %s: %s", msg.topic, exc)
            gw = msg.topic.split("/")[-2] if msg.topic.count("/") >= 5 else msg.topic
            with lock:
                found[gw] = exc
        else:
            with lock:
                found[topic.gw] = record
        last[0] = time.monotonic()

    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=f"mallsense-fleet-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv5,
    )
    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    if username:
        client.username_pw_set(username, password)
    if tls:
        client.tls_set()
    try:
        client.connect(host, port, keepalive=30)
    except OSError as exc:
        raise FleetError(f"cannot reach broker {host}:{port}: {exc}") from None
    client.loop_start()
    try:
        deadline = time.monotonic() + wait_s
        if not subscribed.wait(wait_s):
            raise FleetError(f"no answer from broker {host}:{port} within {wait_s:g} s")
        if failed:
            raise FleetError(failed[0])
        while time.monotonic() < deadline and time.monotonic() - last[0] < QUIET_S:
            time.sleep(0.05)
    finally:
        client.disconnect()
        client.loop_stop()
    with lock:
        return dict(found)
