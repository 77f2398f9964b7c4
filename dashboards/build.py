"""Build every dashboard to JSON, with the floor-plan images and Grafana provisioning files.

``write_all(site, out_dir)`` lays out::

    out_dir/dashboards/<uid>.json        one file per dashboard (Grafana's dashboard model)
    out_dir/floorplans/<site>-<floor>.png the canvas backgrounds
    out_dir/provisioning/datasources/mallsense.yaml   InfluxDB, InfluxQL, uid mallsense-influxql
    out_dir/provisioning/dashboards/mallsense.yaml    file provider over out_dir/dashboards

Panel ids are assigned here in layout order, so they are unique and stable between builds.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards import field, operator, tenant
from dashboards.floorplan import image_name, render_floor
from dashboards.influxql import DATASOURCE_TYPE, DATASOURCE_UID

log = logging.getLogger(__name__)

# Where Grafana serves the floor plans from. Grafana serves <install>/public as /public, so the
# default needs the PNGs copied (or mounted) to public/img/mallsense; any web server works too.
DEFAULT_IMAGE_BASE_URL = "/public/img/mallsense"
BUILDERS: dict[str, Callable] = {
    operator.UID: operator.build, tenant.UID: tenant.build, field.UID: field.build,
}


@dataclass(frozen=True)
class BuildResult:
    dashboards: dict[str, Path]
    floorplans: list[Path]
    provisioning: list[Path]


def dashboard_json(builder, *args) -> dict:
    """The dashboard model as plain JSON data, with panel ids numbered 1..N in layout order."""
    model = json.loads(json.dumps(builder(*args).build(), cls=JSONEncoder))
    next_id = 1
    for panel in model.get("panels", []):
        panel["id"] = next_id
        next_id += 1
        for inner in panel.get("panels", []) or []:  # collapsed rows hold their panels
            inner["id"] = next_id
            next_id += 1
    return model


def build_all(site, image_base_url: str = DEFAULT_IMAGE_BASE_URL) -> dict[str, dict]:
    return {uid: dashboard_json(b, site, image_base_url) for uid, b in BUILDERS.items()}


def datasource_yaml(url: str = "http://localhost:8086", database: str = "mallsense") -> str:
    # InfluxQL mode: for InfluxDB 2.x/3.x add a DBRP mapping and put the token in
    # secureJsonData.httpHeaderValue1 ("Token ..."); see docs/dashboards.md.
    return (
        "apiVersion: 1\n"
        "datasources:\n"
        "  - name: MallSense InfluxDB\n"
        f"    uid: {DATASOURCE_UID}\n"
        f"    type: {DATASOURCE_TYPE}\n"
        "    access: proxy\n"
        f"    url: {url}\n"
        "    jsonData:\n"
        f"      dbName: {database}\n"
        "      httpMode: GET\n"
        "      timeInterval: 10s\n"
        "    isDefault: true\n"
        "    editable: false\n"
    )


def provider_yaml(dashboards_dir: str) -> str:
    return (
        "apiVersion: 1\n"
        "providers:\n"
        "  - name: mallsense\n"
        "    folder: MallSense\n"
        "    type: file\n"
        "    disableDeletion: false\n"
        "    updateIntervalSeconds: 30\n"
        "    allowUiUpdates: false\n"
        "    options:\n"
        f"      path: {dashboards_dir}\n"
        "      foldersFromFilesStructure: false\n"
    )


def write_all(site, out_dir: str | Path, *, image_base_url: str = DEFAULT_IMAGE_BASE_URL,
              influx_url: str = "http://localhost:8086", database: str = "mallsense",
              dashboards_path: str | None = None) -> BuildResult:
    """Write dashboards, floor plans and provisioning files under ``out_dir``.

    ``dashboards_path`` is the folder as Grafana will see it (for the provider YAML); by default
    the absolute path of ``out_dir/dashboards``.
    """
    out = Path(out_dir)
    dash_dir = out / "dashboards"
    dash_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for uid, model in build_all(site, image_base_url).items():
        path = dash_dir / f"{uid}.json"
        path.write_text(json.dumps(model, indent=2, sort_keys=True) + "\n")
        written[uid] = path
    plans = [render_floor(site, f.id, out / "floorplans" / image_name(site.id, f.id))
             for f in site.floors]
    prov = out / "provisioning"
    ds = prov / "datasources" / "mallsense.yaml"
    pv = prov / "dashboards" / "mallsense.yaml"
    ds.parent.mkdir(parents=True, exist_ok=True)
    pv.parent.mkdir(parents=True, exist_ok=True)
    ds.write_text(datasource_yaml(influx_url, database))
    pv.write_text(provider_yaml(dashboards_path or str(dash_dir.resolve())))
    log.info("wrote %d dashboards, %d floor plans to %s", len(written), len(plans), out)
    return BuildResult(written, plans, [ds, pv])
