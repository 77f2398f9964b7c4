"""influxdb-client: the synchronous v2 write path of analytics/sink/transports.py:V2ClientTransport.

The sink deletes a batch from its spool when ``send()`` returns, so "write returned" must mean
"the server answered 2xx"; an error answer must raise ``ApiException`` with the status; and the
client must neither retry on its own (``retries=False``: ours are in the sink) nor wait longer
than ``timeout`` (milliseconds). All of it is driven over loopback HTTP: VictoriaMetrics for the
real v2 write API, and two raw sockets for a slow server and a silent one.
"""
from __future__ import annotations

import inspect
import socket
import threading
import time
import urllib.request

import pytest
from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS, WriteApi, WriteType
from influxdb_client.rest import ApiException


def _client(url: str, timeout_ms: int = 10_000) -> InfluxDBClient:
    # Exactly the keywords of transports.py V2ClientTransport.__init__.
    return InfluxDBClient(url=url, token="conformance", org="mallsense", timeout=timeout_ms,
                          enable_gzip=True, retries=False)


def _force_flush(vm) -> None:
    # Makes everything VictoriaMetrics has accepted searchable now (no polling for visibility).
    urllib.request.urlopen(f"{vm.url}/internal/force_flush", timeout=10).close()


def test_signatures_we_call():
    p = inspect.signature(InfluxDBClient.__init__).parameters
    assert {"url", "token", "org", "timeout", "enable_gzip"} <= set(p)
    assert any(x.kind is inspect.Parameter.VAR_KEYWORD for x in p.values())  # retries= goes here
    assert "write_options" in inspect.signature(InfluxDBClient.write_api).parameters
    assert list(inspect.signature(WriteApi.write).parameters)[1:5] == \
        ["bucket", "org", "record", "write_precision"]
    assert SYNCHRONOUS.write_type == WriteType.synchronous
    # The sink passes its precision as the plain strings of the line protocol.
    assert (WritePrecision.NS, WritePrecision.US, WritePrecision.MS, WritePrecision.S) == \
        ("ns", "us", "ms", "s")
    assert {"status", "body"} <= set(vars(ApiException(status=400, reason="x")))


def test_retries_false_reaches_the_http_pool():
    with _client("http://127.0.0.1:9") as client:
        assert client.api_client.rest_client.retries is False
        assert client.api_client.configuration.enable_gzip is True


def test_synchronous_bytes_write_is_stored_when_write_returns(victoriametrics):
    t = int(time.time())
    body = (f"conf_sync,site=demo,zone=z1 visitors=3i {t}\n"
            f"conf_sync,site=demo,zone=z2 visitors=5i {t}").encode()
    with _client(victoriametrics.url) as client:
        write = client.write_api(write_options=SYNCHRONOUS)
        assert write.write(bucket="mallsense", org="mallsense", record=body,
                           write_precision="s") is None
        _force_flush(victoriametrics)
        rows = victoriametrics.export('{__name__="conf_sync_visitors"}')
        write.close()
    got = {r["metric"]["zone"]: (r["values"], r["timestamps"]) for r in rows}
    assert got == {"z1": ([3], [t * 1000]), "z2": ([5], [t * 1000])}


def test_point_with_second_precision(victoriametrics):
    t = int(time.time()) - 60
    with _client(victoriametrics.url) as client:
        client.write_api(write_options=SYNCHRONOUS).write(
            bucket="mallsense", record=Point("conf_point").tag("gw", "gw-01")
            .field("rssi", -71.5).time(t, WritePrecision.S))
    _force_flush(victoriametrics)
    (row,) = victoriametrics.export('{__name__="conf_point_rssi"}')
    assert row["metric"]["gw"] == "gw-01" and row["values"] == [-71.5]
    assert row["timestamps"] == [t * 1000]


def test_victoriametrics_drops_malformed_lines_without_an_error(victoriametrics):
    # Not a client property, but the sink's reject path depends on it: VictoriaMetrics answers
    # 204 to line protocol it cannot parse, so through it a bad line is lost, never rejected.
    with _client(victoriametrics.url) as client:
        assert client.write_api(write_options=SYNCHRONOUS).write(
            bucket="mallsense", org="mallsense", record=b"conf_bad,=x v=", write_precision="s"
        ) is None
    _force_flush(victoriametrics)
    assert victoriametrics.export('{__name__=~"conf_bad.*"}') == []


@pytest.mark.parametrize("status", [400, 413, 429, 503])
def test_error_answer_raises_api_exception_with_status_and_body(status):
    body = b'{"code":"invalid","message":"unable to parse \'conf_bad,=x v=\'"}'
    server = _RawHttp(delay_s=0.0, status=status, body=body)
    try:
        with _client(server.url) as client:
            write = client.write_api(write_options=SYNCHRONOUS)
            with pytest.raises(ApiException) as err:
                write.write(bucket="b", org="o", record=b"conf_bad,=x v=", write_precision="s")
        # transports.py: int(exc.status) picks transient vs rejected; str(exc.body) is logged.
        assert int(err.value.status) == status
        assert "unable to parse" in str(err.value.body)
        assert server.connections == 1  # not even 429/503 is retried by the client
    finally:
        server.close()


class _RawHttp:
    """A loopback TCP server answering each request after ``delay_s`` (or never)."""

    def __init__(self, delay_s: float | None, status: int = 204, body: bytes = b"") -> None:
        self.delay_s = delay_s
        self.answer = (f"HTTP/1.1 {status} X\r\nConnection: close\r\n"
                       f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                       ).encode() + body
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        self.received_before_answer = b""
        self.answered_at = None
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            self._conns.append(conn)
            if self.delay_s is None:
                continue  # accept, read nothing, never answer
            conn.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, rest = data.partition(b"\r\n\r\n")
            length = int([h.split(b":")[1] for h in head.split(b"\r\n")
                          if h.lower().startswith(b"content-length")][0])
            while len(rest) < length:
                rest += conn.recv(65536)
            self.received_before_answer = rest
            time.sleep(self.delay_s)
            self.answered_at = time.monotonic()
            conn.sendall(self.answer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for c in self._conns:
            c.close()
        self.sock.close()


def test_write_returns_only_after_the_server_answered():
    server = _RawHttp(delay_s=0.4)
    try:
        with _client(server.url) as client:
            t0 = time.monotonic()
            client.write_api(write_options=SYNCHRONOUS).write(
                bucket="b", org="o", record=b"m v=1 1700000000", write_precision="s")
            returned = time.monotonic()
        assert server.answered_at is not None and returned >= server.answered_at
        assert returned - t0 >= 0.4
        assert server.received_before_answer  # the gzipped body was sent before the answer
    finally:
        server.close()


def test_timeout_is_in_milliseconds_and_nothing_is_retried():
    server = _RawHttp(delay_s=None)
    try:
        with _client(server.url, timeout_ms=300) as client:
            write = client.write_api(write_options=SYNCHRONOUS)
            t0 = time.monotonic()
            with pytest.raises(Exception) as err:
                write.write(bucket="b", org="o", record=b"m v=1 1700000000", write_precision="s")
            took = time.monotonic() - t0
        assert not isinstance(err.value, ApiException)  # the sink reads it as transient
        assert 0.25 <= took < 3.0, took
        assert server.connections == 1  # retries=False: one attempt only
    finally:
        server.close()
