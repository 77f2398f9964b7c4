"""The edge agent's configuration: TOML, typed, validated once at start, immutable.

Every problem is collected and reported together, each naming its key path ("mqtt.port: must be
an integer in 1..65535"). The program never writes the file back. deploy/edge.sample.toml
documents every key.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.errors import ConfigError, SiteSecretMissing
from edge.publisher import MqttSettings

_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_BEACON = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:\d{1,5}:\d{1,5}"
                     r"|[0-9a-f]{20}:[0-9a-f]{12}")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class BleConfig:
    enabled: bool = False
    adapter: str = "hci0"
    scanning_mode: str = "passive"
    watchdog_s: float = 60.0


@dataclass(frozen=True)
class WifiConfig:
    enabled: bool = False
    interface: str = "mon0"
    channels: tuple[int, ...] = (1, 6, 11)
    hop_interval_s: float = 0.5


@dataclass(frozen=True)
class ReplayConfig:
    files: tuple[str, ...] = ()
    speed: float = 0.0
    rebase: bool = False


@dataclass(frozen=True)
class EdgeConfig:
    """site, gw: ids. window_s: aggregation window, s. state_dir: spool database folder.
    status_interval_s: heartbeat period, s. secret_file: site secret (>= 16 bytes).
    rotation_s: pseudonym salt period, s. opt_out_file: opt-out hashes, one per line.
    member_uuid: iBeacon UUID of the consented member app. beacons: registered beacon ids.
    spool_max_bytes: spool bound. grace_s: how long after its end a window waits for stragglers.
    exit_when_done: end after the replays finish (when no radio runs)."""

    site: str
    gw: str
    secret_file: str
    window_s: float = 1.0
    state_dir: str = "/var/lib/mallsense-edge"
    status_interval_s: float = 30.0
    rotation_s: float = 86400.0
    opt_out_file: str | None = None
    member_uuid: str | None = None
    beacons: tuple[str, ...] = ()
    spool_max_bytes: int = 64 * 1024 * 1024
    grace_s: float = 0.5
    exit_when_done: bool = True
    drain_timeout_s: float = 10.0
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    ble: BleConfig = field(default_factory=BleConfig)
    wifi: WifiConfig = field(default_factory=WifiConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    source: str = "<memory>"

    def read_secret(self) -> bytes:
        try:
            secret = Path(self.secret_file).read_bytes().strip()
        except OSError as exc:
            raise SiteSecretMissing(self.secret_file, str(exc)) from None
        if len(secret) < 16:
            raise SiteSecretMissing(self.secret_file, f"{len(secret)} bytes, need >= 16")
        return secret


class _Reader:
    """Typed reads from a nested dict that record problems instead of raising."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.problems: list[tuple[str, str]] = []
        self.used: set[str] = set()

    def table(self, name: str) -> dict[str, Any]:
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            self.problems.append((name, "must be a table"))
            return {}
        return value

    def get(self, table: str, key: str, kind: type | tuple, default: Any = ..., *,
            check=None, why: str = "") -> Any:
        path = f"{table}.{key}"
        self.used.add(path)
        src = self.table(table)
        if key not in src:
            if default is ...:
                self.problems.append((path, "required"))
                return None
            return default
        value = src[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds and type(value) is int:
            value = float(value)
        if type(value) not in kinds:
            names = "/".join(k.__name__ for k in kinds)
            self.problems.append((path, f"must be {names}, got {type(value).__name__}"))
            return default if default is not ... else None
        if check is not None and not check(value):
            self.problems.append((path, why or "invalid value"))
            return default if default is not ... else None
        return value

    def unknown_keys(self, tables: dict[str, tuple[str, ...]]) -> None:
        for name, value in self.data.items():
            if name not in tables:
                self.problems.append((name, "unknown table"))
                continue
            if isinstance(value, dict):
                for key in value:
                    if key not in tables[name]:
                        self.problems.append((f"{name}.{key}", "unknown key"))


_KEYS = {
    "gateway": ("site", "id", "window_s", "state_dir", "status_interval_s", "grace_s",
                "exit_when_done", "drain_timeout_s"),
    "privacy": ("secret_file", "rotation_s", "opt_out_file", "member_uuid", "beacons"),
    "mqtt": ("host", "port", "username", "password", "password_file", "tls", "ca_file",
             "cert_file", "key_file", "client_id", "keepalive_s", "max_inflight",
             "backoff_initial_s", "backoff_cap_s"),
    "spool": ("max_mb",),
    "ble": ("enabled", "adapter", "scanning_mode", "watchdog_s"),
    "wifi": ("enabled", "interface", "channels", "hop_interval_s"),
    "replay": ("files", "speed", "rebase"),
}


def _pos(x: float) -> bool:
    return x > 0


def parse_config(data: dict[str, Any], source: str = "<memory>") -> EdgeConfig:
    r = _Reader(data)
    r.unknown_keys(_KEYS)
    is_id = _ID.fullmatch
    site = r.get("gateway", "site", str, check=is_id, why="1-64 of A-Z a-z 0-9 _ -")
    gw = r.get("gateway", "id", str, check=is_id, why="1-64 of A-Z a-z 0-9 _ -")
    window_s = r.get("gateway", "window_s", float, 1.0, check=lambda x: 0 < x <= 60,
                     why="must be in (0, 60] seconds")
    state_dir = r.get("gateway", "state_dir", str, "/var/lib/mallsense-edge")
    status_s = r.get("gateway", "status_interval_s", float, 30.0, check=_pos, why="must be > 0")
    grace_s = r.get("gateway", "grace_s", float, 0.5, check=lambda x: 0 <= x <= 60,
                    why="must be in [0, 60]")
    exit_done = r.get("gateway", "exit_when_done", bool, True)
    drain_s = r.get("gateway", "drain_timeout_s", float, 10.0, check=lambda x: x >= 0,
                    why="must be >= 0")
    secret_file = r.get("privacy", "secret_file", str)
    rotation_s = r.get("privacy", "rotation_s", float, 86400.0, check=lambda x: x >= 60,
                       why="must be >= 60 seconds")
    opt_out = r.get("privacy", "opt_out_file", str, None)
    member = r.get("privacy", "member_uuid", str, None, check=lambda s: bool(_UUID.fullmatch(
        s.lower())), why="must be a UUID like 01234567-89ab-cdef-0123-456789abcdef")
    beacons = r.get("privacy", "beacons", list, [])
    for i, b in enumerate(beacons or []):
        if not isinstance(b, str) or not _BEACON.fullmatch(b.lower()):
            r.problems.append((f"privacy.beacons[{i}]",
                               "must be 'uuid:major:minor' or Eddystone 'namespace:instance'"))
    port = r.get("mqtt", "port", int, 1883, check=lambda p: 1 <= p <= 65535,
                 why="must be an integer in 1..65535")
    password = r.get("mqtt", "password", str, None)
    password_file = r.get("mqtt", "password_file", str, None)
    if password_file:
        try:
            password = Path(password_file).read_text().strip()
        except OSError as exc:
            r.problems.append(("mqtt.password_file", f"unreadable: {exc}"))
    tls = r.get("mqtt", "tls", bool, False)
    files = {}
    for key in ("ca_file", "cert_file", "key_file"):
        files[key] = r.get("mqtt", key, str, None)
        if files[key] and not Path(files[key]).is_file():
            r.problems.append((f"mqtt.{key}", f"no such file: {files[key]}"))
    if (files["cert_file"] is None) != (files["key_file"] is None):
        r.problems.append(("mqtt.cert_file", "cert_file and key_file go together"))
    mqtt = MqttSettings(
        host=r.get("mqtt", "host", str, "localhost", check=bool, why="must not be empty"),
        port=port,
        username=r.get("mqtt", "username", str, None),
        password=password,
        tls=tls,
        ca_file=files["ca_file"], cert_file=files["cert_file"], key_file=files["key_file"],
        client_id=r.get("mqtt", "client_id", str, None),
        keepalive_s=r.get("mqtt", "keepalive_s", int, 30, check=lambda x: 5 <= x <= 3600,
                          why="must be in 5..3600"),
        max_inflight=r.get("mqtt", "max_inflight", int, 50, check=lambda x: 1 <= x <= 1000,
                           why="must be in 1..1000"),
        backoff_initial_s=r.get("mqtt", "backoff_initial_s", float, 1.0, check=_pos,
                                why="must be > 0"),
        backoff_cap_s=r.get("mqtt", "backoff_cap_s", float, 60.0, check=_pos, why="must be > 0"),
    )
    max_mb = r.get("spool", "max_mb", float, 64.0, check=lambda x: 0.01 <= x <= 100_000,
                   why="must be in 0.01..100000 MB")
    ble = BleConfig(
        enabled=r.get("ble", "enabled", bool, False),
        adapter=r.get("ble", "adapter", str, "hci0"),
        scanning_mode=r.get("ble", "scanning_mode", str, "passive",
                            check=lambda m: m in ("active", "passive"),
                            why="must be 'active' or 'passive'"),
        watchdog_s=r.get("ble", "watchdog_s", float, 60.0, check=lambda x: x >= 5,
                         why="must be >= 5"),
    )
    channels = r.get("wifi", "channels", list, [1, 6, 11])
    if channels is not None and not all(type(c) is int and 1 <= c <= 233 for c in channels):
        r.problems.append(("wifi.channels", "must be a list of channel numbers 1..233"))
        channels = []
    wifi = WifiConfig(
        enabled=r.get("wifi", "enabled", bool, False),
        interface=r.get("wifi", "interface", str, "mon0", check=lambda s: 0 < len(s) < 16,
                        why="must be an interface name (1-15 chars)"),
        channels=tuple(channels or ()),
        hop_interval_s=r.get("wifi", "hop_interval_s", float, 0.5, check=lambda x: x >= 0.05,
                             why="must be >= 0.05"),
    )
    files_list = r.get("replay", "files", list, [])
    if files_list is not None:
        for i, f in enumerate(files_list):
            if not isinstance(f, str) or not Path(f).is_file():
                r.problems.append((f"replay.files[{i}]", f"no such file: {f}"))
    replay = ReplayConfig(
        files=tuple(files_list or ()),
        speed=r.get("replay", "speed", float, 0.0, check=lambda x: x >= 0, why="must be >= 0"),
        rebase=r.get("replay", "rebase", bool, False),
    )
    if not (ble.enabled or wifi.enabled or replay.files):
        r.problems.append(("ble.enabled", "no source: enable [ble], [wifi] or give replay.files"))
    if r.problems:
        raise ConfigError(source, r.problems)
    return EdgeConfig(
        site=site, gw=gw, secret_file=secret_file, window_s=window_s, state_dir=state_dir,
        status_interval_s=status_s, rotation_s=rotation_s, opt_out_file=opt_out,
        member_uuid=member.lower() if member else None,
        beacons=tuple(b.lower() for b in beacons or ()),
        spool_max_bytes=int(max_mb * 1024 * 1024), grace_s=grace_s, exit_when_done=exit_done,
        drain_timeout_s=drain_s, mqtt=mqtt, ble=ble, wifi=wifi, replay=replay, source=source,
    )


def load_config(path: str | Path) -> EdgeConfig:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(path), [("<file>", f"unreadable: {exc}")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [("<file>", f"not TOML: {exc}")]) from None
    return parse_config(data, str(path))
