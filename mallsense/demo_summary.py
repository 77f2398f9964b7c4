"""The demo's results: analytics figures read back from InfluxDB (InfluxQL), heatmap PNGs drawn
over the floor plan, the summary (JSON + text) and the output folder's README."""
from __future__ import annotations

import json
import logging
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def influxql(url: str, db: str, q: str) -> list[dict]:
    """The series of one InfluxQL statement (raises on an error answer)."""
    data = urllib.parse.urlencode({"q": q, "db": db, "epoch": "s"}).encode()
    with urllib.request.urlopen(f"{url.rstrip('/')}/query", data=data, timeout=60) as r:
        ans = json.loads(r.read())
    res = ans.get("results", [{}])[0]
    if "error" in res:
        raise RuntimeError(f"InfluxQL {q!r}: {res['error']}")
    return res.get("series", [])


def _w(site: str, start: float, end: float) -> str:
    return f"WHERE \"site\" = '{site}' AND time >= {int(start)}s AND time < {int(end) + 3600}s"


def analytics_figures(url: str, db: str, site, start: float, end: float, top: int = 5) -> dict:
    w = _w(site.id, start, end)
    out: dict = {}
    ser = influxql(url, db, f'SELECT sum("visitors"), sum("passersby"), sum("members"), '
                            f'sum("excluded") FROM "visitors" {w}')
    v = p = m = x = 0
    if ser:
        _t, v, p, m, x = ser[0]["values"][0]
    v, p = int(v or 0), int(p or 0)
    out.update(visitors=v, passersby=p, members=int(m or 0), excluded=int(x or 0),
               capture_rate=v / (v + p) if v + p else None)
    stores = {}
    for s in influxql(url, db, f'SELECT sum("visits"), sum("buyers") FROM "store_visits" {w} '
                               f'GROUP BY "store"'):
        _t, visits, buyers = s["values"][0]
        stores[s["tags"]["store"]] = {"visits": int(visits or 0), "buyers": int(buyers or 0)}
    for s in influxql(url, db, f'SELECT "visits", "mean_dwell_s" FROM "store_visits" {w} '
                               f'GROUP BY "store"'):
        vals = [(a, b) for _t, a, b in s["values"] if a]
        n = sum(a for a, _b in vals)
        if n:
            stores[s["tags"]["store"]]["mean_dwell_s"] = sum(a * b for a, b in vals) / n
    for st in stores.values():
        st["conversion"] = st["buyers"] / st["visits"] if st["visits"] else 0.0
    names = {z.id: z.tenant or z.name for z in site.zones}
    # Rankings only among stores with enough visits to mean something (>= the median store).
    min_visits = max(5, int(np.percentile([s["visits"] for s in stores.values()], 50))) \
        if stores else 5
    ranked = sorted((k for k in stores if "mean_dwell_s" in stores[k]
                     and stores[k]["visits"] >= min_visits),
                    key=lambda k: -stores[k]["mean_dwell_s"])
    conv = sorted((k for k in stores if stores[k]["visits"] >= min_visits),
                  key=lambda k: (-stores[k]["conversion"], -stores[k]["visits"]))
    out["stores"] = stores
    out["top_dwell"] = [{"store": k, "tenant": names.get(k), **stores[k]} for k in ranked[:top]]
    out["top_conversion"] = [{"store": k, "tenant": names.get(k), **stores[k]}
                             for k in conv[:top]]
    out["conversion_min_visits"] = min_visits
    trans = {}
    for s in influxql(url, db, f'SELECT sum("count") FROM "floor_transitions" {w} '
                               f'GROUP BY "from", "to"'):
        trans[f'{s["tags"]["from"]}->{s["tags"]["to"]}'] = int(s["values"][0][1] or 0)
    out["floor_transitions"] = dict(sorted(trans.items(), key=lambda kv: -kv[1]))
    ff = influxql(url, db, f'SELECT sum("entries"), sum("exits") FROM "footfall" {w}')
    out["entries"] = int(ff[0]["values"][0][1] or 0) if ff else 0
    out["exits"] = int(ff[0]["values"][0][2] or 0) if ff else 0
    ev = influxql(url, db, f'SELECT count("visitor") FROM "journey_event" {w} GROUP BY "type"')
    out["events"] = {s["tags"]["type"]: int(s["values"][0][1]) for s in ev}
    return out


def heatmaps(url: str, db: str, site, start: float, end: float, folder: Path,
             cell_m: float = 2.0) -> list[Path]:
    """One PNG per floor: visitor-seconds per heat cell over the afternoon, over the floor plan."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon

    from dashboards import schema

    folder.mkdir(parents=True, exist_ok=True)
    w = _w(site.id, start, end)
    heat_name = schema.HEAT.name
    paths = []
    for fl in site.floors:
        o = np.asarray(fl.outline, float)
        x0, y0, x1, y1 = o[:, 0].min(), o[:, 1].min(), o[:, 0].max(), o[:, 1].max()
        nx, ny = int(np.ceil((x1 - x0) / cell_m)) + 1, int(np.ceil((y1 - y0) / cell_m)) + 1
        grid = np.zeros((ny, nx))
        # One row per cell whatever its tags are called; x_m/y_m place it (docs/metrics.md).
        for ser in influxql(url, db, f'SELECT sum("visitor_s"), mean("x_m"), mean("y_m") FROM '
                                     f'"{heat_name}" {w} AND "floor" = \'{fl.id}\' GROUP BY *'):
            _t, n, x, y = ser["values"][0]
            if n is None or x is None or y is None:
                continue
            ix, iy = int((x - x0) // cell_m), int((y - y0) // cell_m)
            if 0 <= ix < nx and 0 <= iy < ny:
                grid[iy, ix] += n
        fig, ax = plt.subplots(figsize=(10, 10 * (y1 - y0 + 10) / (x1 - x0 + 10)), dpi=100)
        hours = grid / 3600.0
        masked = np.ma.masked_where(hours <= 0, hours)
        im = ax.imshow(masked, origin="lower", extent=(x0, x0 + nx * cell_m, y0, y0 + ny * cell_m),
                       cmap="inferno_r", alpha=0.85, zorder=2)
        for z in site.zones_on(fl.id):
            colour = {"store": "#d9e4f0", "corridor": "#f4f4f4", "outside": "#e6f2e6",
                      "atrium": "#ffffff"}.get(z.kind, "#eeeeee")
            ax.add_patch(Polygon(np.asarray(z.polygon), closed=True, fc=colour, ec="#888888",
                                 lw=0.6, zorder=1))
            if z.kind == "store":
                c = np.asarray(z.polygon).mean(axis=0)
                ax.text(c[0], c[1], z.tenant or z.name, fontsize=6, ha="center", va="center",
                        color="#333333", zorder=3)
        ax.plot(*np.vstack([o, o[:1]]).T, color="black", lw=1.2, zorder=3)
        for g in site.gateways_on(fl.id):
            ax.plot(g.x, g.y, marker="^", color="#1f77b4", ms=4, zorder=4)
        ax.set_xlim(x0 - 5, x1 + 5)
        ax.set_ylim(y0 - 5, y1 + 5)
        ax.set_aspect("equal")
        ax.set_title(f"{site.name} - floor {fl.name}: shopper-hours per {cell_m:g} m cell")
        ax.set_xlabel("x (m)")
        ax.set_ylabel("y (m)")
        fig.colorbar(im, ax=ax, shrink=0.7, label="shopper-hours")
        path = folder / f"heatmap_{fl.id}.png"
        fig.savefig(path, bbox_inches="tight")
        plt.close(fig)
        paths.append(path)
    return paths


def summary_text(s: dict) -> str:
    a, t, acc = s["analytics"], s["truth"], s["accuracy"]

    def pct(x):
        return "n/a" if x is None else f"{100 * x:.1f}%"

    def num(x, fmt="{:.2f}"):
        return "n/a" if x is None else fmt.format(x)

    lines = [
        (f"MallSense demo - {s['site']} {s['period']['from']} .. {s['period']['to']} "
        f"({s['config']['level']} level, seed {s['config']['seed']})"),
        (f"  wall time {s['wall_s']:.0f} s; {s['pipeline']['gateways']} edge agents, "
        f"{s['pipeline']['frames']} frames simulated, {s['pipeline']['batches']} sighting batches "
        "over MQTT"),
        "",
        (f"Visitors      {a['visitors']:>7}   (truth {t['visitors']} shoppers present, "
        f"{t.get('entered', 'n/a')} entered in the period; error "
        f"{pct(s['errors']['visitor_count_rel'])})"),
        f"Passers-by    {a['passersby']:>7}   (truth {t['passersby']})",
        f"Capture rate  {pct(a['capture_rate']):>7}   (truth {pct(t['capture_rate'])})",
        (f"Members       {a['members']:>7}   staff/fixed excluded {a['excluded']} (truth present: "
        f"{t.get('staff')} staff, {t.get('fixed_unregistered')} fixed devices; excluded only "
        f"after 4 h / 30 min of presence)"),
        "",
        f"Top stores by mean dwell (>= {a['conversion_min_visits']} visits):",
    ]
    for r in a["top_dwell"]:
        lines.append(f"  {r['store']:<16} {str(r['tenant'])[:22]:<22} "
                     f"{r['mean_dwell_s'] / 60:5.1f} min  ({r['visits']} visits; truth "
                     f"{num(t['stores'].get(r['store'], {}).get('mean_dwell_s'), '{:.0f}')} s)")
    lines.append(f"Top stores by conversion (>= {a['conversion_min_visits']} visits):")
    for r in a["top_conversion"]:
        tc = t["stores"].get(r["store"], {}).get("conversion")
        lines.append(f"  {r['store']:<16} {str(r['tenant'])[:22]:<22} {pct(r['conversion']):>6}"
                     f"  ({r['buyers']}/{r['visits']}; truth {pct(tc)})")
    lines.append("Floor transitions (analytics / truth):")
    for k, n in list(a["floor_transitions"].items())[:10]:
        lines.append(f"  {k:<10} {n:>5} / {t['floor_transitions'].get(k, 0)}")
    lines += [
        "",
        (f"Accuracy vs ground truth ({acc.get('devices', 0)} sampled shopper devices, "
        f"{acc.get('fixes', 0)} fixes; {acc.get('method', '')}):"),
        (f"  position RMSE   {num(acc.get('position_rmse_m'))} m  (median "
        f"{num(acc.get('position_median_err_m'))} m; BLE {num(acc.get('position_rmse_m_ble'))}"
        f" m, Wi-Fi {num(acc.get('position_rmse_m_wifi'))} m)"),
        (f"  floor hit-rate  {pct(acc.get('floor_hit_rate'))}  (BLE "
        f"{pct(acc.get('floor_hit_rate_ble'))}, Wi-Fi {pct(acc.get('floor_hit_rate_wifi'))})"),
        (f"  visitor count error {pct(s['errors']['visitor_count_rel'])} vs shoppers, "
        f"{pct(s['errors']['visitor_count_rel_incl_staff_fixed'])} vs shoppers + staff + fixed "
        f"devices; passers-by {pct(s['errors']['passersby_rel'])}"),
    ]
    if s.get("notes"):
        lines += ["", "Notes:"] + [f"  - {n}" for n in s["notes"]]
    return "\n".join(lines) + "\n"


README = """# MallSense demo output

Made by `mallsense demo` ({when}): a simulated afternoon of **{site}** ({period}), radio frames
replayed by one edge agent per gateway through an MQTT broker into the analytics ingest, which
wrote InfluxDB database `{db}` at {influx}.

| file | what |
|---|---|
| `summary.txt`, `summary.json` | visitors, passers-by, capture rate, top stores, floor transitions, accuracy vs ground truth |
| `heatmaps/heatmap_<floor>.png` | shopper-hours per 2 m cell (InfluxDB `heat`) over the floor plan |
| `report/` | tenant report of `{store}` (`index.html`, charts, `report.csv`) |
| `grafana/dashboards/*.json` | the Grafana dashboards (built by `dashboards`) |
| `grafana/provisioning/` | Grafana provisioning: data source + dashboard provider |
| `grafana/floorplans/` | floor plan images the floor panels load |
| `sim/truth/` | the simulator's ground truth (CSV) |
| `logs/` | logs of the demo and the ingest process |

## Looking at it in Grafana

The demo stops its own InfluxDB when it ends (its data folder was temporary). To browse the
data in Grafana, run the demo against an InfluxDB 1.x that stays up:
`mallsense demo --out out/demo --influx http://127.0.0.1:8086` (database `{db}`).

1. Data source: type **InfluxDB**, query language **InfluxQL**, URL `{influx_hint}`, database
   `{db}` (InfluxDB 2.x/3.x: map a DBRP to the bucket and send the token as header
   `Authorization: Token ...`). The provisioning file `grafana/provisioning/datasources/mallsense.yaml`
   does this (uid `{ds_uid}`); copy it to `/etc/grafana/provisioning/datasources/`.
2. Dashboards: copy `grafana/provisioning/dashboards/mallsense.yaml` to
   `/etc/grafana/provisioning/dashboards/` and `grafana/dashboards/` to the path it names
   (edit `options.path` if you put them elsewhere), or import each JSON file by hand
   (Dashboards - New - Import).
3. Floor plans: copy `grafana/floorplans/*` to Grafana's `public/img/mallsense/`.
4. Set the time range to {period} (the simulated afternoon, UTC times in the data).
"""
