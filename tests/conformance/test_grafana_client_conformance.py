"""grafana-client: the calls of dashboards/push.py, over real HTTP to a loopback server.

Grafana itself is not installed here, so the server is a stdlib HTTP server that records what
arrives and answers as Grafana's HTTP API documents; the library's URL building, auth header,
JSON encoding, error mapping and timeout are the installed ones.
"""
from __future__ import annotations

import inspect
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException, GrafanaTimeoutError
from grafana_client.elements.dashboard import Dashboard
from grafana_client.elements.datasource import Datasource


class _Grafana(BaseHTTPRequestHandler):
    calls: list = []

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(n)) if n else None
        self.calls.append((self.command, self.path, self.headers.get("Authorization"), body))
        return body

    def do_GET(self):  # noqa: N802 - http.server's naming
        self._record()
        if self.path == "/api/datasources/uid/missing":
            return self._answer(404, {"message": "Data source not found"})
        if self.path == "/api/datasources/uid/there":
            return self._answer(200, {"uid": "there", "id": 3})
        return self._answer(404, {"message": "not found"})

    def do_POST(self):  # noqa: N802
        body = self._record()
        if self.path == "/api/dashboards/db":
            uid = body["dashboard"]["uid"]
            return self._answer(200, {"status": "success", "uid": uid, "version": 1, "id": 7})
        if self.path == "/api/datasources":
            return self._answer(200, {"id": 1, "message": "Datasource added"})
        return self._answer(404, {"message": "not found"})

    def do_PUT(self):  # noqa: N802
        self._record()
        return self._answer(200, {"message": "Datasource updated"})

    def log_message(self, *args):
        pass


@pytest.fixture
def grafana():
    _Grafana.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Grafana)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Grafana.calls
    finally:
        server.shutdown()
        server.server_close()


def test_signatures_we_call():
    from_url = inspect.signature(GrafanaApi.from_url).parameters
    assert {"url", "credential", "timeout"} <= set(from_url)
    assert list(inspect.signature(Dashboard.update_dashboard).parameters) == ["self", "dashboard"]
    assert list(inspect.signature(Datasource.get_datasource_by_uid).parameters) == \
        ["self", "datasource_uid"]
    assert list(inspect.signature(Datasource.update_datasource_by_uid).parameters) == \
        ["self", "datasource_uid", "datasource"]
    assert list(inspect.signature(Datasource.create_datasource).parameters) == \
        ["self", "datasource"]


def test_push_calls_reach_grafana_as_documented(grafana):
    url, calls = grafana
    api = GrafanaApi.from_url(url, credential="glsa_token", timeout=5.0)  # push.connect
    body = {"dashboard": {"uid": "mallsense-operator", "title": "t", "panels": []},
            "overwrite": True, "message": "push", "folderUid": "f1"}
    answer = api.dashboard.update_dashboard(body)
    assert answer["uid"] == "mallsense-operator" and answer["status"] == "success"
    api.datasource.create_datasource({"uid": "mallsense-influxql", "type": "influxdb"})
    api.datasource.update_datasource_by_uid("there", {"uid": "there"})
    assert api.datasource.get_datasource_by_uid("there") == {"uid": "there", "id": 3}
    assert [(m, p) for m, p, _, _ in calls] == [
        ("POST", "/api/dashboards/db"), ("POST", "/api/datasources"),
        ("PUT", "/api/datasources/uid/there"), ("GET", "/api/datasources/uid/there")]
    assert calls[0][3] == body  # sent unchanged: uid match, overwrite, folderUid
    assert {auth for _, _, auth, _ in calls} == {"Bearer glsa_token"}


def test_missing_datasource_is_a_client_error_with_status_404(grafana):
    # push.ensure_datasource creates the data source only on exactly this.
    url, _ = grafana
    api = GrafanaApi.from_url(url, credential=None, timeout=5.0)
    with pytest.raises(GrafanaClientError) as err:
        api.datasource.get_datasource_by_uid("missing")
    assert err.value.status_code == 404


def test_credentials_in_the_url_become_basic_auth(grafana):
    url, calls = grafana
    api = GrafanaApi.from_url(url.replace("http://", "http://admin:secret@"), timeout=5.0)
    api.datasource.get_datasource_by_uid("there")
    assert calls[-1][2] == "Basic YWRtaW46c2VjcmV0"  # base64("admin:secret")


def test_timeout_is_in_seconds():
    silent = socket.create_server(("127.0.0.1", 0))  # accepts (backlog), never answers
    try:
        api = GrafanaApi.from_url(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.3)
        t0 = time.monotonic()
        with pytest.raises(GrafanaException) as err:
            api.datasource.get_datasource_by_uid("x")
        assert isinstance(err.value, GrafanaTimeoutError)
        assert time.monotonic() - t0 < 5.0
    finally:
        silent.close()
