"""Ground truth for the demo: who was where, which pseudonym was whose, and accuracy figures.

Pseudonyms are HMAC of the addresses with the site secret (``edge.privacy.Pseudonymizer``); the
demo owns the secret, so it can map the simulator's address truth (``truth/addresses.csv``) to
the pseudonyms seen on MQTT. analytics exposes no hook for its per-device fixes, so accuracy is
measured on the sightings the demo's observer collected from the broker, run through the same
per-device tracker the ingest pipeline uses (``analytics.devices.DeviceTable``: floor HMM,
Kalman filter, locate) for a sample of shoppers' devices.
"""
from __future__ import annotations

import csv
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.privacy import Pseudonymizer, parse_address

log = logging.getLogger(__name__)


@dataclass
class Truth:
    folder: Path
    start: float
    end: float
    role: dict[str, str] = field(default_factory=dict)          # person -> role
    device_person: dict[str, str] = field(default_factory=dict)
    member: dict[str, str] = field(default_factory=dict)        # person -> member id
    addresses: list[tuple[str, str, str, float, float]] = field(default_factory=list)
    present: set | None = None                                         # persons, once scanned
    beacons: set = field(default_factory=set)                          # persons: registered
    transitions: Counter = field(default_factory=Counter)             # (from, to) -> n

    @classmethod
    def load(cls, folder: Path, start: float, end: float) -> Truth:
        tr = cls(folder, start, end)
        for r in _rows(folder / "roles.csv"):
            tr.role[r["person"]] = r["role"]
            tr.device_person[r["devices"]] = r["person"]
            if r["member"]:
                tr.member[r["person"]] = r["member"]
        for r in _rows(folder / "beacons.csv"):
            tr.beacons.add(tr.device_person.get(r["device"], ""))
        for r in _rows(folder / "addresses.csv"):
            tr.addresses.append((r["device"], r["kind"], r["address"], float(r["from"]),
                                 float(r["to"])))
        return tr

    def raw_addresses(self) -> set[str]:
        return {a for _d, k, a, _f, _t in self.addresses if k in ("ble", "wifi")}

    def member_tokens(self) -> list[tuple[str, str, float, float]]:
        """(token, member id, from, to) of every member-app token."""
        out = []
        for d, k, a, f, t in self.addresses:
            if k == "member_token":
                m = self.member.get(self.device_person.get(d, ""), "")
                if m:
                    out.append((a, m, f, t))
        return out

    def pseudonyms(self, secret: bytes, rotation_s: float, devices: set[str]) -> dict[str, str]:
        """pseudonym -> device for the radio addresses of ``devices``."""
        ps = Pseudonymizer(secret, rotation_s)
        out = {}
        for d, k, a, f, t in self.addresses:
            if d in devices and k in ("ble", "wifi"):
                raw = parse_address(a)
                for e in range(ps.epoch(f), ps.epoch(t) + 1):
                    out[ps.pseudonym(raw, max(f, e * rotation_s))] = d
        return out

    # -- counts --------------------------------------------------------------------------------
    def counts(self) -> dict:
        """Shoppers present in the period (analytics counts a shopper first heard inside as a
        visitor too), those who entered in it, passers-by, capture rate."""
        here = self.present if self.present is not None else set(self.role)
        role = {p: r for p, r in self.role.items() if p in here}
        present = {p for p, r in role.items() if r == "shopper"}
        entered = {r["person"] for r in _rows(self.folder / "journeys.csv")
                   if self.start <= float(r["entry"]) < self.end and r["person"] in present}
        passers = {p for p, r in role.items() if r == "passerby"}
        staff = sum(1 for r in role.values() if r == "staff")
        fixed = sum(1 for p, r in role.items() if r == "fixed" and p not in self.beacons)
        v, p = len(present), len(passers)
        return {"visitors": v, "entered": len(entered), "passersby": p,
                "capture_rate": v / (v + p) if v + p else None,
                "staff": staff, "fixed_unregistered": fixed}

    def stores(self) -> dict[str, dict]:
        """Per store, shoppers' visits overlapping the period: visits, mean dwell (s, clipped
        to the period, as the sensors saw it), conversion (buyers in the period / visitors)."""
        dwell: dict[str, list[float]] = defaultdict(list)
        visitors: dict[str, set] = defaultdict(set)
        for r in _rows(self.folder / "visits.csv"):
            if not r["zone"] or self.role.get(r["person"]) != "shopper":
                continue
            enter, leave = max(float(r["enter"]), self.start), min(float(r["exit"]), self.end)
            if leave > enter:
                dwell[r["zone"]].append(leave - enter)
                visitors[r["zone"]].add(r["person"])
        buyers: dict[str, set] = defaultdict(set)
        for r in _rows(self.folder / "purchases.csv"):
            if self.start <= float(r["t"]) < self.end:
                buyers[r["store"]].add(r["person"])
        out = {}
        for z, d in dwell.items():
            b = len(buyers[z] & visitors[z])
            out[z] = {"visits": len(d), "mean_dwell_s": float(np.mean(d)),
                      "conversion": b / len(visitors[z]) if visitors[z] else 0.0}
        return out

    def scan_positions(self, devices: set[str]):
        """One pass over positions.csv (large: streamed): {device: {t: (x, y, floor)}} for
        ``devices``, and the shoppers' floor transitions (from, to) -> count; also notes who
        was present in [start, end) (``self.present``: persons)."""
        out: dict[str, dict] = defaultdict(dict)
        seen: set[str] = set()
        shopper = {d for d, p in self.device_person.items() if self.role.get(p) == "shopper"}
        last: dict[str, str] = {}
        trans: Counter = Counter()
        with open(self.folder / "positions.csv", newline="") as f:
            next(f)
            for line in f:
                t, d, x, y, fl, _z = line.rstrip("\n").split(",")
                if float(t) >= self.end:
                    break  # rows are in time order
                seen.add(d)
                if d in devices:
                    out[d][int(t)] = (float(x), float(y), fl)
                if d in shopper:
                    prev = last.get(d)
                    if prev != fl:
                        if prev is not None:
                            trans[(prev, fl)] += 1
                        last[d] = fl
        self.transitions = trans
        self.present = {self.device_person.get(d, "") for d in seen}
        return out


def _rows(path: Path):
    with open(path, newline="") as f:
        yield from csv.DictReader(f)


def sample_devices(truth: Truth, n: int, seed: int) -> set[str]:
    """Up to n shoppers' phones, drawn with the demo's seed."""
    shoppers = sorted(d for d, p in truth.device_person.items() if truth.role.get(p) == "shopper")
    rng = np.random.default_rng(seed)
    if len(shoppers) <= n:
        return set(shoppers)
    return set(rng.choice(shoppers, n, replace=False).tolist())


def accuracy(site, kept: list, pseudo_dev: dict[str, str], truth: Truth,
             window: tuple[float, float] | None = None) -> dict:
    """Position RMSE (m) and floor hit-rate of the tracked devices against the truth.

    kept: the observer's (t, gw, ids, kind, rssi) rows of the sampled devices, in arrival order.
    Per window the rows become one RSSI matrix and go through ``DeviceTable.step_matrix``; the
    filtered position and floor of each pseudonym is compared with its device's true position at
    that second (only where the tracker has a position and the truth has the device).
    """
    from analytics.devices import DeviceTable
    from analytics.locating import WindowMatrix
    from mallsense.demo_ingest import lifted_site

    lifted = lifted_site(site)
    table = DeviceTable(lifted)
    loc = table.loc
    by_t: dict[int, list] = defaultdict(list)
    for t, gw, ids, kind, rssi in kept:
        if window is None or window[0] <= t < window[1]:
            by_t[round(t)].append((gw, ids, kind, rssi))
    pos = truth.scan_positions(set(pseudo_dev.values()))
    floor_ix = {f: i for i, f in enumerate(loc.floor_ids)}
    err2 = {"ble": [], "wifi": []}
    hits = {"ble": [], "wifi": []}
    for t in sorted(by_t):
        row_of: dict[str, int] = {}
        parts = by_t[t]
        for gw, ids, _k, _r in parts:
            for i in ids:
                row_of.setdefault(i, len(row_of))
        n = len(row_of)
        rssi = np.full((n, len(loc.gw_ids)), np.nan)
        kind = np.zeros(n, np.uint8)
        for gw, ids, k, r in parts:
            col = loc.gw_col.get(gw)
            if col is None:
                continue
            rows = np.array([row_of[i] for i in ids], np.int64)
            rssi[rows, col] = np.fmax(rssi[rows, col], r)
            kind[rows] = k
        ids = list(row_of)
        wm = WindowMatrix(float(t), ids, kind, rssi, [None] * n, [None] * n,
                          np.full(n, -1, np.int8), sum(len(p[1]) for p in parts))
        table.step_matrix(wm)
        for i, pid in enumerate(ids):
            s = table.slot_of.get(pid)
            dev = pseudo_dev.get(pid)
            tp = pos.get(dev, {}).get(t) if dev else None
            if s is None or tp is None:
                continue
            xy = table.kf.x[s, :2]
            kname = "ble" if kind[i] == 0 else "wifi"
            if table.floor[s] >= 0:
                hits[kname].append(int(table.floor[s]) == floor_ix.get(tp[2], -2))
            if np.isfinite(xy).all():
                err2[kname].append((xy[0] - tp[0]) ** 2 + (xy[1] - tp[1]) ** 2)
    out: dict = {"devices": len(set(pseudo_dev.values())), "windows": len(by_t)}
    all_e = err2["ble"] + err2["wifi"]
    all_h = hits["ble"] + hits["wifi"]
    out["position_rmse_m"] = float(np.sqrt(np.mean(all_e))) if all_e else None
    out["position_median_err_m"] = float(np.median(np.sqrt(all_e))) if all_e else None
    out["floor_hit_rate"] = float(np.mean(all_h)) if all_h else None
    out["fixes"] = len(all_e)
    for k in ("ble", "wifi"):
        out[f"position_rmse_m_{k}"] = float(np.sqrt(np.mean(err2[k]))) if err2[k] else None
        out[f"floor_hit_rate_{k}"] = float(np.mean(hits[k])) if hits[k] else None
        out[f"fixes_{k}"] = len(err2[k])
    return out
