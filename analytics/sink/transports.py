"""The two ways to InfluxDB, as Telegraf has them: v1 HTTP /write and v2 through influxdb-client.

A transport sends one already-encoded batch and either returns (the server accepted it) or
raises ``SinkError`` with ``transient`` telling the sink whether to retry/spool or to reject.
Batching, retries and the spool live in ``analytics.sink.sink``, not here.
"""
from __future__ import annotations

import gzip
import logging
import urllib.error
import urllib.parse
import urllib.request
from typing import Protocol

from analytics.errors import SinkError

log = logging.getLogger(__name__)

# 429 (rate limited) and 5xx are worth retrying; any other 4xx is the data's own fault.
def _is_transient(status: int | None) -> bool:
    return status is None or status == 429 or status >= 500


class Transport(Protocol):
    name: str

    def send(self, body: bytes, precision: str) -> None:
        """Send newline-separated line protocol (uncompressed bytes)."""

    def close(self) -> None: ...


class V1HttpTransport:
    """InfluxDB 1.x ``POST /write?db=&rp=&precision=`` with a gzipped body."""

    name = "v1"

    def __init__(self, url: str, db: str, rp: str | None = None, *, username: str | None = None,
                 password: str | None = None, timeout_s: float = 10.0, gzip_level: int = 5) -> None:
        self.url = url.rstrip("/")
        self.db = db
        self.rp = rp
        self.username = username
        self.password = password
        self.timeout_s = timeout_s
        self.gzip_level = gzip_level

    def _endpoint(self, precision: str) -> str:
        q = {"db": self.db, "precision": precision}
        if self.rp:
            q["rp"] = self.rp
        if self.username:
            q["u"] = self.username
            q["p"] = self.password or ""
        return f"{self.url}/write?{urllib.parse.urlencode(q)}"

    def send(self, body: bytes, precision: str) -> None:
        data = gzip.compress(body, compresslevel=self.gzip_level)
        req = urllib.request.Request(
            self._endpoint(precision), data=data, method="POST",
            headers={"Content-Encoding": "gzip", "Content-Type": "text/plain; charset=utf-8"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace")
            raise SinkError(f"v1 write refused: {detail}", status=exc.code,
                            transient=_is_transient(exc.code)) from None
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise SinkError(f"v1 write failed: {exc}", transient=True) from None

    def close(self) -> None:
        pass


class V2ClientTransport:
    """InfluxDB 2.x/3.x/Cloud (and VictoriaMetrics) through influxdb-client's *synchronous* API.

    We never use the library's batching writer: it has lost data on exit (influxdb-client-python
    issues #165, #394, #504, #697). Its own retries are off; ours are in the sink.
    """

    name = "v2"

    def __init__(self, url: str, org: str, bucket: str, token: str, *,
                 timeout_s: float = 10.0, gzip: bool = True) -> None:
        from influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        self.org = org
        self.bucket = bucket
        self._client = InfluxDBClient(url=url, token=token, org=org, timeout=int(timeout_s * 1000),
                                      enable_gzip=gzip, retries=False)
        self._write = self._client.write_api(write_options=SYNCHRONOUS)

    def send(self, body: bytes, precision: str) -> None:
        from influxdb_client.rest import ApiException

        try:
            self._write.write(bucket=self.bucket, org=self.org, record=body,
                              write_precision=precision)
        except ApiException as exc:
            status = int(exc.status) if exc.status else None
            raise SinkError(f"v2 write refused: {str(exc.body)[:300]}", status=status,
                            transient=_is_transient(status)) from None
        except Exception as exc:  # urllib3 connection/timeout errors have no common root
            raise SinkError(f"v2 write failed: {type(exc).__name__}: {exc}", transient=True) from None

    def close(self) -> None:
        self._write.close()
        self._client.close()
