"""Charts (PNG, matplotlib Agg), the HTML page and the CSV of a tenant report.

The page references its charts as files next to it and carries a small script that marks
``<body data-images-loaded="yes">`` once every image has decoded (naturalWidth > 0), so a
headless browser can check the page is whole; suppressed cells read ``<k`` in tables and CSV.
"""
from __future__ import annotations

import csv
import html
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from analytics.report.figures import Table  # noqa: E402

log = logging.getLogger(__name__)

_COLOR = "#2f6f9f"
_SCRIPT = """<script>
(function () {
  function check() {
    var imgs = Array.prototype.slice.call(document.images);
    var ok = imgs.length > 0 && imgs.every(function (i) { return i.complete && i.naturalWidth > 0; });
    document.body.setAttribute('data-images-loaded', ok ? 'yes' : 'no');
    document.body.setAttribute('data-images', String(imgs.length));
  }
  window.addEventListener('load', check);
})();
</script>"""


def _bar_chart(path: Path, labels: list[str], values: list[float | None], title: str, ylabel: str,
               k: int, rotate: bool = False) -> Path:
    fig, ax = plt.subplots(figsize=(8, 3.2), dpi=100)
    xs = range(len(labels))
    shown = [v if v is not None else 0.0 for v in values]
    ax.bar(xs, shown, color=_COLOR)
    top = max(shown) if shown and max(shown) > 0 else 1.0
    for x, v in zip(xs, values):
        if v is None:
            ax.text(x, top * 0.02, f"<{k}", ha="center", va="bottom", fontsize=8, color="#888888")
    ax.set_xticks(list(xs))
    ax.set_xticklabels(labels, rotation=45 if rotate else 0, ha="right" if rotate else "center",
                       fontsize=8)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def charts(tables: dict[str, Table], out: Path, k: int) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    made: dict[str, Path] = {}
    for name, col, ylabel in (("per_day", 0, "visits"), ("per_hour", 0, "visits"),
                              ("dwell", 0, "visits")):
        t = tables[name]
        made[name] = _bar_chart(out / f"{name}.png", [r[0] for r in t.rows],
                                [cells[col].chart_value(k) for _, cells in t.rows], t.title,
                                ylabel, k, rotate=(name != "per_hour"))
    comp = tables["comparison"]
    labels = [r[0].split(" (")[0] for r in comp.rows]
    for name, col, ylabel in (("conversion", 3, "% of visits with a purchase"),
                              ("members", 4, "% of visits by members"),
                              ("mean_dwell", 2, "minutes")):
        made[name] = _bar_chart(out / f"{name}.png", labels,
                                [cells[col].chart_value(k) for _, cells in comp.rows],
                                f"{comp.columns[col].capitalize()}: store, floor, mall", ylabel, k)
    return made


def _table_html(t: Table, k: int) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ("",) + t.columns)
    body = "".join(
        "<tr><th>" + html.escape(label) + "</th>"
        + "".join(f"<td>{html.escape(c.shown(k))}</td>" for c in cells) + "</tr>"
        for label, cells in t.rows)
    return (f'<h2>{html.escape(t.title)}</h2>\n<table id="{t.name}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>")


def page(meta: dict[str, str], tables: dict[str, Table], images: dict[str, Path], k: int) -> str:
    info = "".join(f"<dt>{html.escape(a)}</dt><dd>{html.escape(b)}</dd>" for a, b in meta.items())
    imgs = "\n".join(f'<figure><img src="{p.name}" alt="{html.escape(n)}" width="800"></figure>'
                     for n, p in images.items())
    tabs = "\n".join(_table_html(t, k) for t in tables.values())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Store report: {html.escape(meta.get("store", ""))}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
dt {{ font-weight: bold; float: left; width: 9em; }} dd {{ margin-left: 10em; }}
</style></head>
<body data-images-loaded="pending">
<h1>Store report: {html.escape(meta.get("store", ""))}</h1>
<dl>{info}</dl>
<p>Cells backed by fewer than {k} distinct visitors are not shown (&lt;{k}).</p>
{imgs}
{tabs}
{_SCRIPT}
</body></html>
"""


def write_csv(path: Path, tables: dict[str, Table], k: int) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["table", "row", "column", "value"])
        for t in tables.values():
            for label, cells in t.rows:
                for col, c in zip(t.columns, cells):
                    w.writerow([t.name, label, col, c.shown(k)])
    return path
