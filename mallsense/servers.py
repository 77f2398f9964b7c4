"""Run the real servers (mosquitto, InfluxDB 1.x, VictoriaMetrics) on free loopback ports.

The tests and `mallsense demo` start their own instances from the Debian binaries that
`scripts/setup.sh` installs, each with a temporary data folder, and always stop them. A server
keeps its port and data folder across `stop()` / `start()`, so clients can reconnect to it and
persistence can be checked, the way a real restart behaves.
"""
from __future__ import annotations

import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


class ServerError(RuntimeError):
    """A server binary is missing, would not start, or would not stop."""


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that is free on `host` right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def find_binary(name: str, *candidates: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for c in candidates:
        if os.access(c, os.X_OK):
            return c
    raise ServerError(f"{name} is not installed: run `make setup` (installs the Debian package)")


class _Server:
    """Common life cycle: start on a fixed port, wait until ready, stop (TERM, then KILL)."""

    name = "server"
    ready_timeout_s = 30.0

    def __init__(self, data_dir: str | os.PathLike | None = None, port: int | None = None):
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix=f"mallsense-{self.name}-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.host = LOOPBACK
        self.proc: subprocess.Popen | None = None
        self.log_path = self.data_dir / f"{self.name}.log"

    # --- to override -------------------------------------------------------------------------
    def _command(self) -> list[str]:
        raise NotImplementedError

    def _is_ready(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def _prepare(self) -> None:
        """Write config files before each start."""

    def _ports(self) -> list[int]:
        return [self.port]

    def _check_ports_free(self) -> None:
        # Readiness is probed by connecting, which another process on the port would answer.
        for port in self._ports():
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind((self.host, port))
                except OSError as exc:
                    raise ServerError(f"{self.name}: port {self.host}:{port} is taken ({exc})")

    # --- life cycle ----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> "_Server":
        if self.running:
            return self
        self._check_ports_free()
        self._prepare()
        logf = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                self._command(), stdout=logf, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        finally:
            logf.close()
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"{self.name} exited with {self.proc.returncode}: {self.log_tail()}")
            if self._is_ready():
                log.info("%s ready on %s:%d", self.name, self.host, self.port)
                return self
            time.sleep(0.05)
        self.stop()
        raise ServerError(f"{self.name} not ready after {self.ready_timeout_s:.0f} s: {self.log_tail()}")

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL, as a power cut or the OOM killer would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def restart(self) -> "_Server":
        self.stop()
        return self.start()

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> "_Server":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_bytes()[-n:].decode("utf-8", "replace")
        except OSError:
            return "(no log)"

    def _http_ok(self, path: str, ok=(200, 204)) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.host}:{self.port}{path}", timeout=1) as r:
                return r.status in ok
        except (urllib.error.URLError, OSError, ValueError):
            return False


@dataclass
class MosquittoSecurity:
    """Optional broker security: password file, ACL file and a TLS listener."""

    password_file: str | None = None
    acl_file: str | None = None
    allow_anonymous: bool = True
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    require_certificate: bool = False
    extra_lines: list[str] = field(default_factory=list)


class Mosquitto(_Server):
    """mosquitto 2.x on a loopback port with persistence in its data folder."""

    name = "mosquitto"

    def __init__(self, data_dir=None, port=None, security: MosquittoSecurity | None = None):
        super().__init__(data_dir, port)
        self.security = security or MosquittoSecurity()
        self.binary = find_binary("mosquitto", "/usr/sbin/mosquitto")
        self.conf_path = self.data_dir / "mosquitto.conf"

    @property
    def url(self) -> str:
        scheme = "mqtts" if self.security.certfile else "mqtt"
        return f"{scheme}://{self.host}:{self.port}"

    def _prepare(self) -> None:
        sec = self.security
        lines = [
            f"listener {self.port} {self.host}",
            f"allow_anonymous {'true' if sec.allow_anonymous else 'false'}",
            "persistence true",
            f"persistence_location {self.data_dir}/",
            "autosave_interval 1",
            # Offline persistent sessions (ingest restarting) must not lose queued QoS 1 messages.
            "max_queued_messages 0",
            "max_queued_bytes 0",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "connection_messages true",
        ]
        own = self._own_copy
        if sec.password_file:
            lines.append(f"password_file {own(sec.password_file)}")
        if sec.acl_file:
            lines.append(f"acl_file {own(sec.acl_file)}")
        if sec.certfile:
            lines += [f"cafile {own(sec.cafile)}", f"certfile {own(sec.certfile)}",
                      f"keyfile {own(sec.keyfile)}"]
            if sec.require_certificate:
                lines.append("require_certificate true")
        lines += sec.extra_lines
        self.conf_path.write_text("\n".join(lines) + "\n")
        self._hand_to_broker_user()

    def _own_copy(self, path: str) -> Path:
        # Run as root, mosquitto drops to its own user before it reads password, ACL and key
        # files, so it gets private copies inside its data folder, which it owns.
        dst = self.data_dir / "etc" / Path(path).name
        dst.parent.mkdir(exist_ok=True)
        shutil.copyfile(path, dst)
        dst.chmod(0o600)
        return dst

    def _hand_to_broker_user(self) -> None:
        if os.geteuid() != 0:
            return
        try:
            pw = pwd.getpwnam("mosquitto")
        except KeyError:
            return
        for parent in self.data_dir.resolve().parents:
            if not parent.stat().st_mode & 0o001:
                raise ServerError(f"mosquitto runs as user mosquitto and cannot enter {parent} "
                                  f"(mode {parent.stat().st_mode & 0o777:o}): choose a data "
                                  f"folder under a world-traversable one, e.g. /tmp")
        for p in [self.data_dir, *self.data_dir.rglob("*")]:
            try:
                os.chown(p, pw.pw_uid, pw.pw_gid)
            except OSError as exc:
                log.debug("chown %s: %s", p, exc)
        # mkdtemp folders are 0700: the broker's user must be able to enter its own folder.
        self.data_dir.chmod(0o700)

    def _command(self) -> list[str]:
        return [self.binary, "-c", str(self.conf_path)]


class InfluxDB1(_Server):
    """InfluxDB 1.x (Debian's influxd): v1 /write and InfluxQL /query."""

    name = "influxdb"

    def __init__(self, data_dir=None, port=None):
        super().__init__(data_dir, port)
        self.binary = find_binary("influxd", "/usr/bin/influxd")
        self.rpc_port = free_port()
        self.conf_path = self.data_dir / "influxdb.conf"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _prepare(self) -> None:
        d = self.data_dir
        self.conf_path.write_text(
            f"""reporting-disabled = true
bind-address = "{self.host}:{self.rpc_port}"
[meta]
  dir = "{d}/meta"
[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false
  wal-fsync-delay = "0s"
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "{self.host}:{self.port}"
  log-enabled = false
  max-body-size = 0
[logging]
  level = "warn"
[continuous_queries]
  enabled = false
"""
        )

    def _command(self) -> list[str]:
        return [self.binary, "-config", str(self.conf_path)]

    def _ports(self) -> list[int]:
        return [self.port, self.rpc_port]

    def _is_ready(self) -> bool:
        return self._http_ok("/ping")

    def query(self, q: str, db: str | None = None) -> dict:
        """Run InfluxQL and return the decoded JSON answer (for tests and the demo summary)."""
        import json
        import urllib.parse

        params = {"q": q, "epoch": "s"}
        if db:
            params["db"] = db
        data = urllib.parse.urlencode(params).encode()
        with urllib.request.urlopen(f"{self.url}/query", data=data, timeout=30) as r:
            return json.loads(r.read())

    def create_database(self, db: str) -> None:
        self.query(f'CREATE DATABASE "{db}"')


class VictoriaMetrics(_Server):
    """VictoriaMetrics single node: accepts the InfluxDB v1 and v2 write APIs."""

    name = "victoria-metrics"

    def __init__(self, data_dir=None, port=None):
        super().__init__(data_dir, port)
        self.binary = find_binary("victoria-metrics", "/usr/bin/victoria-metrics")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _command(self) -> list[str]:
        return [
            self.binary,
            f"-storageDataPath={self.data_dir}/data",
            f"-httpListenAddr={self.host}:{self.port}",
            "-retentionPeriod=100y",
            # Make freshly written samples visible to queries at once (default hides the last 30 s).
            "-search.latencyOffset=0s",
            "-search.disableCache",
            "-loggerLevel=ERROR",
        ]

    def _is_ready(self) -> bool:
        return self._http_ok("/health")

    def export(self, match: str) -> list[dict]:
        """Samples of the series matching a selector, via /api/v1/export (JSON lines)."""
        import json
        import urllib.parse

        q = urllib.parse.urlencode({"match[]": match})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{q}", timeout=30) as r:
            return [json.loads(line) for line in r.read().splitlines() if line.strip()]
