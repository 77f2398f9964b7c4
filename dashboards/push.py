"""Upload the built dashboards to a running Grafana through its HTTP API (grafana-client)."""
from __future__ import annotations

import logging

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError

from dashboards.influxql import DATASOURCE_TYPE, DATASOURCE_UID

log = logging.getLogger(__name__)


def connect(grafana_url: str, token: str | None = None, timeout_s: float = 10.0) -> GrafanaApi:
    return GrafanaApi.from_url(grafana_url, credential=token, timeout=timeout_s)


def ensure_datasource(api: GrafanaApi, influx_url: str, database: str) -> None:
    """Create the InfluxQL data source with the uid the dashboards reference, or update it."""
    body = {
        "name": "MallSense InfluxDB", "uid": DATASOURCE_UID, "type": DATASOURCE_TYPE,
        "access": "proxy", "url": influx_url,
        "jsonData": {"dbName": database, "httpMode": "GET", "timeInterval": "10s"},
    }
    try:
        existing = api.datasource.get_datasource_by_uid(DATASOURCE_UID)
    except GrafanaClientError as exc:  # 404: not there yet; anything else is a real error
        if getattr(exc, "status_code", None) != 404:
            raise
        existing = None
    if existing:
        api.datasource.update_datasource_by_uid(DATASOURCE_UID, body)
        log.info("updated data source %s", DATASOURCE_UID)
    else:
        api.datasource.create_datasource(body)
        log.info("created data source %s", DATASOURCE_UID)


def push_dashboards(api: GrafanaApi, models: dict[str, dict], folder_uid: str | None = None,
                    message: str = "mallsense dashboards push") -> list[dict]:
    """Create or overwrite each dashboard (matched by uid); returns Grafana's answers."""
    answers = []
    for uid, model in models.items():
        model = dict(model)
        model.pop("id", None)  # Grafana matches on uid; a foreign numeric id would conflict
        body: dict = {"dashboard": model, "overwrite": True, "message": message}
        if folder_uid:
            body["folderUid"] = folder_uid
        answers.append(api.dashboard.update_dashboard(body))
        log.info("pushed dashboard %s", uid)
    return answers
