"""The demo's last stage: figures, accuracy, heatmaps, tenant report, dashboards, README."""
from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def _rel(a, b):
    return None if not b else (a - b) / b


def results(site, cfg, opts, out: Path, truth, influx_url: str, db: str, obs, pseudo_dev,
            notes: list[str], pipeline: dict, wall0: float, mqtt_url: str, plan) -> dict:
    from mallsense.demo import write_summary
    from mallsense.demo_eval import accuracy
    from mallsense.demo_summary import README, analytics_figures, heatmaps, summary_text

    a = analytics_figures(influx_url, db, site, cfg.start, cfg.end)
    t0 = time.monotonic()
    acc = accuracy(site, obs.kept, pseudo_dev, truth)   # also scans who was present
    counts = truth.counts()
    t_stores = truth.stores()
    t_trans = {f"{x}->{y}": n for (x, y), n in truth.transitions.most_common()}
    acc["method"] = ("observer on the broker's sightings, pseudonyms mapped with the site "
                     "secret, tracked by analytics.devices.DeviceTable (the ingest's tracker)")
    acc["seconds"] = round(time.monotonic() - t0, 1)
    pngs = heatmaps(influx_url, db, site, cfg.start, cfg.end, out / "heatmaps")
    report = _tenant_report(influx_url, db, site, cfg, a, out / "report", notes)
    dash = _dashboards(site, influx_url, db, out / "grafana", notes)
    summary = {
        "site": site.id,
        "period": {"from": _iso(cfg.start), "to": _iso(cfg.end), "start": cfg.start,
                   "end": cfg.end},
        "config": {"seed": opts.seed, "duration_s": cfg.duration_s, "level": opts.level,
                   "shoppers_per_hour": opts.shoppers_per_hour},
        "servers": {"mqtt": mqtt_url.split("@")[-1], "influx": influx_url, "database": db},
        "analytics": a,
        "truth": {**counts, "stores": t_stores, "floor_transitions": t_trans},
        "errors": {"visitor_count_rel": _rel(a["visitors"], counts["visitors"]),
                   # Staff and fixed devices are excluded only after 4 h / 30 min of presence
                   # (analytics VisitorConfig): in a short afternoon they still count.
                   "visitor_count_rel_incl_staff_fixed": _rel(
                       a["visitors"] + a["excluded"],
                       counts["visitors"] + counts["staff"] + counts["fixed_unregistered"]),
                   "passersby_rel": _rel(a["passersby"], counts["passersby"])},
        "accuracy": acc,
        "pipeline": pipeline,
        "files": {"heatmaps": [p.name for p in pngs], "report": report,
                  "dashboards": dash},
        "notes": notes,
    }
    summary["wall_s"] = round(time.monotonic() - wall0, 1)
    summary["text"] = summary_text(summary)
    write_summary(out, summary)
    store = report.get("store") if report else None
    from dashboards.build import DATASOURCE_UID
    (out / "README.md").write_text(README.format(
        when=_iso(time.time()), site=site.name, period=f"{_iso(cfg.start)} .. {_iso(cfg.end)}",
        db=db, influx=influx_url, influx_hint=influx_url if opts.influx else
        "http://<your influxdb>:8086", store=store or "(none)", ds_uid=DATASOURCE_UID))
    return summary


def _tenant_report(url: str, db: str, site, cfg, a: dict, folder: Path, notes: list) -> dict:
    """The tenant report of the most visited store (analytics.report)."""
    stores = sorted(a["stores"].items(), key=lambda kv: -kv[1]["visits"])
    if not stores:
        notes.append("tenant report: no store visits in InfluxDB")
        return {}
    store = stores[0][0]
    try:
        from analytics.report import InfluxQL, make_report

        files = make_report(InfluxQL(url, db), site=site.id, store=store, start=cfg.start,
                            end=cfg.end + 3600, out_dir=folder, tz=site.timezone)
        return {"store": store, "html": str(files.html.relative_to(folder.parent))}
    except Exception as exc:
        log.exception("tenant report failed")
        notes.append(f"tenant report of {store} failed: {type(exc).__name__}: {exc}")
        return {"store": store, "error": str(exc)}


def _dashboards(site, url: str, db: str, folder: Path, notes: list) -> dict:
    try:
        from dashboards.build import write_all

        res = write_all(site, folder, influx_url=url, database=db,
                        dashboards_path="/var/lib/grafana/dashboards/mallsense")
        return {"dashboards": [str(p.relative_to(folder.parent)) for p in res.dashboards.values()],
                "provisioning": [str(p.relative_to(folder.parent)) for p in res.provisioning]}
    except Exception as exc:
        log.exception("dashboards failed")
        notes.append(f"dashboards build failed: {type(exc).__name__}: {exc}")
        return {"error": str(exc)}
