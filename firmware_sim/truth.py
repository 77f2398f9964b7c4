"""Ground truth as CSV files in out/truth/ (times in unix seconds, positions in metres)."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from firmware_sim import devices as dv
from firmware_sim.crowd import ROLES

TRUTH_FILES = ("positions.csv", "visits.csv", "journeys.csv", "floor_changes.csv",
               "purchases.csv", "roles.csv", "addresses.csv", "gateways.csv", "beacons.csv")


def person_id(i: int) -> str:
    return f"P{i:06d}"


def device_id(i: int) -> str:
    return f"D{i:06d}"


def member_id(m: int) -> str:
    return f"M{m:06d}" if m >= 0 else ""


class PositionsWriter:
    """positions.csv: t, device, x, y, floor, zone - every ``every`` seconds, active agents."""

    def __init__(self, path: Path, geo, n: int, every: int = 1) -> None:
        self._f = open(path, "w", newline="")
        self._f.write("t,device,x,y,floor,zone\n")
        self.geo, self.every = geo, int(every)
        self.dev = np.array([device_id(i) for i in range(n)])
        self.zone = np.array(list(geo.zone_ids) + [""])
        self.floor = np.array(geo.floor_ids)
        self.rows = 0

    def __call__(self, t, x, y, floor, active) -> None:
        if int(t) % self.every:
            return
        idx = np.flatnonzero(active)
        if idx.size == 0:
            return
        zi = self.geo.zone_at(x[idx], y[idx], floor[idx])
        ts = f"{t:.0f}"
        lines = [f"{ts},{d},{a:.2f},{b:.2f},{f},{z}\n" for d, a, b, f, z in zip(
            self.dev[idx].tolist(), x[idx].tolist(), y[idx].tolist(),
            self.floor[floor[idx]].tolist(), self.zone[zi].tolist())]
        self._f.write("".join(lines))
        self.rows += idx.size

    def close(self) -> None:
        self._f.close()


def _write(path: Path, header, rows) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def write_plans(out: Path, world, t0: float, t1: float) -> None:
    """visits, journeys, purchases, roles, gateways, beacons (everything but positions and
    addresses). Only what overlaps [t0, t1) is kept."""
    geo, c, rx = world.geo, world.crowd, world.receivers
    z = geo.zone_ids
    _write(out / "visits.csv", ("person", "device", "zone", "enter", "exit"),
           [(person_id(a), device_id(a), z[s], f"{e:.2f}", f"{x:.2f}")
            for a, s, e, x in c.visits if x >= t0 and e < t1])
    _write(out / "journeys.csv", ("person", "entry", "entrance", "floors", "exit",
                                  "exit_entrance"),
           [(person_id(a), f"{ti:.2f}", z[ei], ";".join(geo.floor_ids[f] for f in fl),
             f"{to:.2f}", z[eo]) for a, ti, ei, fl, to, eo, _h in c.journeys
            if to >= t0 and ti < t1])
    # Every floor change of a shopper between entry and exit, in order (journeys.csv's
    # ``floors`` is the set of floors visited, not the path).
    _write(out / "floor_changes.csv", ("person", "t", "from", "to", "via"),
           [(person_id(a), f"{t:.2f}", geo.floor_ids[fa], geo.floor_ids[fb], z[v] if v >= 0 else "")
            for a, _ti, _ei, _fl, _to, _eo, hops in c.journeys for t, fa, fb, v in hops
            if t0 <= t < t1])
    _write(out / "purchases.csv", ("t", "store", "person", "member", "amount"),
           [(f"{t:.2f}", z[s], person_id(a), member_id(m), f"{amt:.2f}")
            for t, s, a, m, amt in c.purchases if t0 <= t < t1])
    _write(out / "roles.csv", ("person", "role", "kind", "member", "portal", "devices", "home"),
           [(person_id(i), ROLES[c.role[i]], c.kind[i], member_id(int(c.member[i])),
             int(c.portal[i]), device_id(i), z[c.home_zone[i]] if c.home_zone[i] >= 0 else "")
            for i in range(c.n) if c.t_out[i] >= t0 and c.t_in[i] < t1])
    rows = []
    for k, gid in enumerate(rx.ids):
        for r, radio in enumerate(("ble", "wifi")):
            if rx.has[r, k]:
                rows.append((gid, radio, f"{rx.offset[r, k]:.3f}", f"{rx.exponent[r, k]:.3f}",
                             f"{rx.sens[r, k]:.1f}", f"{rx.clock[k]:.6f}",
                             *(f"{v:.2f}" for v in rx.xyz[k]), geo.floor_ids[rx.floor[k]]))
    _write(out / "gateways.csv", ("gateway", "radio", "true_offset_db", "exponent",
                                  "sensitivity_dbm", "clock_offset_s", "x", "y", "z_abs",
                                  "floor"), rows)


def write_beacons(out: Path, world, em) -> None:
    c = world.crowd
    rows = []
    for i in np.flatnonzero(em.ble_kind == dv.BLE_REFBEACON).tolist():
        v = int(em.beacon_value[i])
        k = c.offsets[i]
        rows.append((f"{dv.REFERENCE_UUID}:{v >> 16}:{v & 0xFFFF}", device_id(i),
                     f"{c.kx[k]:.2f}", f"{c.ky[k]:.2f}", world.geo.floor_ids[c.kf[k]],
                     dv.REFERENCE_UUID, v >> 16, v & 0xFFFF, dv.BEACON_POWER,
                     dv.mac_str(int(em.ble_addr[i]))))
    _write(out / "beacons.csv", ("beacon", "device", "x", "y", "floor", "uuid", "major",
                                 "minor", "power", "address"), rows)


def write_addresses(out: Path, world, em, t0: float, t1: float) -> None:
    """addresses.csv: person, device, kind (ble | wifi | member_token), address, from, to."""
    c, cfg = world.crowd, world.cfg
    rows = [(person_id(d), device_id(d), kind, dv.mac_str(a), f"{f:.3f}", f"{min(t, t1):.3f}")
            for d, kind, a, f, t in sorted(em.addr_log, key=lambda r: (r[3], r[0]))]
    period = cfg.member_token_period_s
    for i in np.flatnonzero(c.member >= 0).tolist():
        a, b = max(c.t_in[i], t0), min(c.t_out[i], t1)
        for e in range(int(np.floor(a / period)), int(np.floor(b / period)) + 1):
            tok = dv.member_token(np.array([c.member[i]]), e)[0]
            rows.append((person_id(i), device_id(i), "member_token", dv.token_str(tok),
                         f"{max(e * period, a):.3f}", f"{min((e + 1) * period, b):.3f}"))
    _write(out / "addresses.csv", ("person", "device", "kind", "address", "from", "to"), rows)
