"""`mallsense dashboards push` speaks Grafana's HTTP API through the real grafana-client.

Grafana is not packaged for our machines, so the other end is a small HTTP server that records
each request and answers as Grafana's API documents (POST /api/dashboards/db, data sources by
uid); the client library, its URL handling and auth run unmodified.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dashboards.influxql import DATASOURCE_UID
from mallsense.cli import main


class _Recorder(BaseHTTPRequestHandler):
    calls: list = []

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self) -> dict | None:
        n = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(n)) if n else None
        self.calls.append((self.command, self.path, self.headers.get("Authorization"), body))
        return body

    def do_GET(self):  # noqa: N802 (http.server naming)
        self._record()
        if self.path.startswith("/api/datasources/uid/"):
            return self._answer(404, {"message": "Data source not found"})
        return self._answer(200, {"database": "ok", "version": "11.0.0"})

    def do_POST(self):  # noqa: N802
        body = self._record()
        if self.path == "/api/dashboards/db":
            uid = body["dashboard"]["uid"]
            return self._answer(200, {"status": "success", "uid": uid, "url": f"/d/{uid}",
                                      "version": 1, "id": 1})
        if self.path == "/api/datasources":
            return self._answer(200, {"id": 1, "message": "Datasource added", "name": body["name"]})
        return self._answer(404, {"message": "not found"})

    def log_message(self, *args):
        pass


@pytest.fixture
def grafana():
    _Recorder.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Recorder.calls
    server.shutdown()
    server.server_close()


def test_push_creates_datasource_and_overwrites_every_dashboard(grafana, capsys):
    url, calls = grafana
    assert main(["dashboards", "push", "--grafana", url, "--token", "glsa_test",
                 "--folder-uid", "mallsense", "--influx-url", "http://influx:8086",
                 "--db", "mall"]) == 0
    posts = [c for c in calls if c[0] == "POST"]
    ds = [c for c in posts if c[1] == "/api/datasources"]
    assert len(ds) == 1
    assert ds[0][3]["uid"] == DATASOURCE_UID and ds[0][3]["type"] == "influxdb"
    assert ds[0][3]["jsonData"]["dbName"] == "mall" and ds[0][3]["url"] == "http://influx:8086"
    dash = [c for c in posts if c[1] == "/api/dashboards/db"]
    assert sorted(c[3]["dashboard"]["uid"] for c in dash) == [
        "mallsense-field", "mallsense-operator", "mallsense-tenant"]
    for _, _, auth, body in dash:
        assert auth == "Bearer glsa_test"
        assert body["overwrite"] is True and body["folderUid"] == "mallsense"
        assert "id" not in body["dashboard"] and body["dashboard"]["panels"]
    out = capsys.readouterr().out
    assert "pushed mallsense-operator: /d/mallsense-operator" in out
