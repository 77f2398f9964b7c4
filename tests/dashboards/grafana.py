"""What Grafana's InfluxDB data source does to a raw InfluxQL target before sending it.

Template variables (``$site``, ``${site}``, ``[[site]]``) are replaced by their value, ``$timeFilter``
by ``time >= <from>ms and time <= <to>ms``, ``$__interval`` by the panel interval; a panel's
``timeFrom`` replaces the range by the last N (or today so far, ``now/d``, UTC here) and
``timeShift`` then moves it back. Only what our dashboards use is emulated.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_DURATION = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def seconds(duration: str) -> int:
    m = re.fullmatch(r"(\d+)([smhdw])", duration.strip())
    assert m, f"unsupported duration {duration!r}"
    return int(m.group(1)) * _DURATION[m.group(2)]


@dataclass(frozen=True)
class Range:
    start: int  # unix seconds
    end: int

    def for_panel(self, panel: dict) -> "Range":
        rng = self
        time_from = panel.get("timeFrom")
        if time_from == "now/d":
            rng = Range(self.end - self.end % 86400, self.end)
        elif time_from:
            rng = Range(self.end - seconds(time_from), self.end)
        if panel.get("timeShift"):
            d = seconds(panel["timeShift"])
            rng = Range(rng.start - d, rng.end - d)
        return rng


def interpolate(query: str, variables: dict[str, str], rng: Range, interval: str = "1m") -> str:
    q = query.replace("$timeFilter", f"time >= {rng.start * 1000}ms and time <= {rng.end * 1000}ms")
    q = q.replace("$__interval_ms", str(seconds(interval) * 1000)).replace("$__interval", interval)
    # Longest names first, so $floor does not eat the start of a $floor_id.
    for name in sorted(variables, key=len, reverse=True):
        v = variables[name]
        q = q.replace("${" + name + "}", v).replace("[[" + name + "]]", v).replace("$" + name, v)
    left = re.findall(r"\$\{?\w+", q.replace("$tag_", "").replace("$col", ""))
    assert not left, f"unsubstituted {left} in {q}"
    return q


def targets(panel: dict) -> list[dict]:
    return [t for t in panel.get("targets", []) if not t.get("hide")]


def data_panels(model: dict) -> list[dict]:
    """Every panel that shows data (rows are layout only), including those in collapsed rows."""
    out = []
    for p in model.get("panels", []):
        if p.get("type") == "row":
            out.extend(p.get("panels", []) or [])
        else:
            out.append(p)
    return out
