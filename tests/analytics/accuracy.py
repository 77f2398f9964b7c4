"""Score the pipeline's output against firmware_sim's ground truth (used by test_accuracy.py)."""
from __future__ import annotations

import csv
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from edge.privacy import Pseudonymizer
from firmware_sim import SimConfig, simulate
from gateway.wire import PosTransaction

from analytics.crm import Crm, Member
from analytics.pipeline import Output, Pipeline, PipelineConfig

SECRET = b"accuracy-test-site-secret-0123456789"


def read(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def run_sim(site, out_dir: Path, *, seed: int, start: str, duration_s: int, **kw):
    cfg = SimConfig(seed=seed, start=start, duration_s=duration_s, level="windows", **kw)
    res = simulate(site, cfg, out_dir=out_dir)
    return res, cfg


def crm_from_truth(tdir: Path) -> Crm:
    """The app server's view: members with consent, and which rotating token is whose."""
    roles = read(tdir / "roles.csv")
    members = {r["member"]: Member(r["member"], "basic", True) for r in roles if r["member"]}
    person_member = {r["person"]: r["member"] for r in roles if r["member"]}
    crm = Crm(members)
    crm.add_tokens({a["address"]: person_member[a["person"]]
                    for a in read(tdir / "addresses.csv")
                    if a["kind"] == "member_token" and a["person"] in person_member})
    return crm


def fast_arrays(res, secret: bytes):
    """(t, SightingArrays) per gateway per window straight from the simulator's window arrays:
    the same content as res.batches(secret) (same pseudonyms, fields), without building a
    Sighting object per row, so an afternoon feeds the pipeline in seconds."""
    from firmware_sim import devices as dv
    from firmware_sim.windows import NO_TX
    from gateway.wire import SightingArrays

    ps = Pseudonymizer(secret, 86400.0)
    gw_ids = res.gateway_ids
    fps = res.fingerprints
    beacons = res.beacon_ids
    seq = dict.fromkeys(range(len(gw_ids)), 0)
    for chunk in res.iter_windows():
        if len(chunk) == 0:
            continue
        t_all = chunk["t"]
        names = {}
        for a, t in zip(chunk["addr"].tolist(), t_all.tolist()):
            key = (a, ps.epoch(t))
            if key not in names:
                names[key] = ps.pseudonym(int(a).to_bytes(6, "big"), t)
        cut = np.flatnonzero((np.diff(t_all) != 0) | (np.diff(chunk["gw"]) != 0)) + 1
        for part in np.split(chunk, cut):
            t, g = float(part["t"][0]), int(part["gw"][0])
            ep = ps.epoch(t)
            seq[g] += 1
            fp = part["fp"].tolist()
            bc = part["beacon"].tolist()
            mb = part["member"].tolist()
            tx = part["tx"].astype(float)
            tx[part["tx"] == NO_TX] = np.nan
            yield t, SightingArrays(
                res.site.id, gw_ids[g], seq[g], round(t, 3), 1.0,
                [names[(a, ep)] for a in part["addr"].tolist()],
                part["kind"].astype(np.uint8), np.round(part["rssi"].astype(float), 1),
                part["n"].astype(np.int64), tx, part["rnd"].astype(np.int8),
                [fps[i] if i >= 0 else None for i in fp],
                [beacons[i] if i >= 0 else None for i in bc],
                [dv.token_str(m) if m >= 0 else None for m in mb],
                part["sq"].astype(np.int16))


def run_pipeline(site, res, tdir: Path, cfg: PipelineConfig | None = None) -> tuple[Pipeline, Output]:
    crm = crm_from_truth(tdir)
    pl = Pipeline(site, cfg or PipelineConfig(), crm=crm)
    pos = sorted((PosTransaction(site.id, round(float(p["t"]), 3), p["store"],
                                 round(float(p["amount"]), 3), "EUR", f"tx{i}", p["member"] or None)
                  for i, p in enumerate(read(tdir / "purchases.csv"))), key=lambda p: p.t)
    out = Output()
    pi = 0
    for t, arrays in fast_arrays(res, SECRET):
        while pi < len(pos) and pos[pi].t <= t:
            out.extend(pl.pos(pos[pi]))
            pi += 1
        out.extend(pl.process(arrays, t))
    for p in pos[pi:]:
        out.extend(pl.pos(p))
    out.extend(pl.flush())
    return pl, out


def device_person(tdir: Path, cfg) -> dict[str, str]:
    """Our pseudonym of every truth address -> person."""
    ps = Pseudonymizer(SECRET, 86400.0)
    out = {}
    for a in read(tdir / "addresses.csv"):
        if a["kind"] == "member_token":
            continue
        mac = bytes.fromhex(a["address"].replace(":", ""))
        for t in {float(a["from"]), float(a["to"])}:
            out[ps.pseudonym(mac, max(t, cfg.start))] = a["person"]
    return out


def score(out: Output, tdir: Path, cfg) -> dict:
    t0, t1 = cfg.start, cfg.start + cfg.duration_s
    roles = {r["person"]: r for r in read(tdir / "roles.csv")}
    dev2p = device_person(tdir, cfg)
    recs = out.visits
    rec_person = []
    for r in recs:
        ps = Counter(dev2p.get(d) for d in r.device_ids if dev2p.get(d))
        rec_person.append(ps.most_common(1)[0][0] if ps else None)
    m: dict = {}
    # People present in the period, by role.
    role_of = {p: r["role"] for p, r in roles.items()}
    jour = [j for j in read(tdir / "journeys.csv")]
    shoppers_inside = {j["person"] for j in jour if float(j["entry"]) < t1 and float(j["exit"]) >= t0}
    passers = {p for p, r in roles.items() if r["role"] == "passerby"}
    staff_fixed = {p for p, r in roles.items() if r["role"] in ("staff", "fixed")}
    ours_vis = [r for r in recs if r.entered and not r.excluded]
    ours_pass = [r for r in recs if not r.entered and not r.excluded and r.passby_entrance]
    m["visitors_true"], m["visitors_ours"] = len(shoppers_inside), len(ours_vis)
    m["records"] = len(recs)
    m["records_excluded"] = sum(r.excluded for r in recs)
    m["records_neither"] = sum(1 for r in recs if not r.entered and not r.passby_entrance)
    m["persons_seen"] = len({p for p in rec_person if p})
    m["passersby_true"], m["passersby_ours"] = len(passers), len(ours_pass)
    m["capture_true"] = len(shoppers_inside) / max(len(shoppers_inside) + len(passers), 1)
    m["capture_ours"] = len(ours_vis) / max(len(ours_vis) + len(ours_pass), 1)
    ent_true = Counter(j["entrance"] for j in jour if t0 <= float(j["entry"]) < t1)
    ent_ours = Counter(e.entrance for e in out.events if e.type == "entry")
    m["entries_true"], m["entries_ours"] = dict(ent_true), dict(ent_ours)
    # Staff / fixed excluded: every record of theirs excluded (records with no person ignored).
    sf_recs = [r for r, p in zip(recs, rec_person) if p in staff_fixed]
    m["staff_records"] = len(sf_recs)
    m["staff_excluded"] = sum(r.excluded for r in sf_recs) / max(len(sf_recs), 1)
    sf_present = {p for p in staff_fixed}
    sf_seen = {p for p in rec_person if p in staff_fixed}
    m["staff_persons_seen"] = len(sf_seen)
    m["staff_persons_all_excluded"] = sum(
        all(r.excluded for r, p in zip(recs, rec_person) if p == q) for q in sf_seen) / max(len(sf_seen), 1)
    # Store visits >= 3 min, P/R by (person, store, overlapping time).
    tv = defaultdict(list)
    for v in read(tdir / "visits.csv"):
        e, x = max(float(v["enter"]), t0), min(float(v["exit"]), t1)
        if x - e >= 180 and role_of.get(v["person"]) == "shopper":
            tv[(v["person"], v["zone"])].append([e, x, False])
    ov = []
    for r, p in zip(recs, rec_person):
        if r.excluded:
            continue
        for sv in r.visits:
            if sv.exit_t - sv.enter_t >= 180:
                ov.append((p, sv))
    hit = 0
    for p, sv in ov:
        for tr in tv.get((p, sv.zone), ()):
            if sv.enter_t < tr[1] and sv.exit_t > tr[0]:
                hit += 1
                tr[2] = True
                break
    n_true = sum(len(x) for x in tv.values())
    m["visits_true"], m["visits_ours"] = n_true, len(ov)
    m["visit_precision"] = hit / max(len(ov), 1)
    m["visit_recall"] = sum(tr[2] for x in tv.values() for tr in x) / max(n_true, 1)
    # Median dwell and conversion per store (stores with >= 10 true visits of any length).
    allv = defaultdict(list)
    for v in read(tdir / "visits.csv"):
        if role_of.get(v["person"]) == "shopper" and float(v["exit"]) >= t0 and float(v["enter"]) < t1:
            # The part of the visit inside the run: all that ingest can observe (a visit in
            # progress at the start, or still open at the end, is cut on both sides).
            allv[v["zone"]].append((v["person"], max(float(v["enter"]), t0), min(float(v["exit"]), t1)))
    bought = defaultdict(set)
    for p in read(tdir / "purchases.csv"):
        bought[p["store"]].add(p["person"])
    ours_by_store = defaultdict(list)
    for r in recs:
        if r.excluded:
            continue
        for sv in r.visits:
            ours_by_store[sv.zone].append(sv)
    dwell, conv = {}, {}
    for z, vs in allv.items():
        if len(vs) < 10:
            continue
        td = np.median([x - e for _, e, x in vs])
        od = np.median([sv.exit_t - sv.enter_t for sv in ours_by_store[z]]) if ours_by_store[z] else np.nan
        dwell[z] = (float(td), float(od))
        tc = sum(p in bought[z] for p, _, _ in vs) / len(vs)
        oc = (sum(bool(sv.purchases) for sv in ours_by_store[z]) / len(ours_by_store[z])
              if ours_by_store[z] else np.nan)
        conv[z] = (tc, float(oc))
    m["dwell"], m["conversion"] = dwell, conv
    # Floor transitions F1 over (person, from, to) multisets: every change between entry and
    # exit (floor_changes.csv; journeys.csv's ``floors`` is only the set of floors visited).
    complete = {j["person"] for j in jour if t0 <= float(j["entry"]) and float(j["exit"]) < t1}
    tt = Counter((c["person"], c["from"], c["to"]) for c in read(tdir / "floor_changes.csv")
                 if c["person"] in complete)
    def ours(entered_only: bool) -> Counter:
        # The same population on both sides: people whose whole journey lies in the run.
        return Counter((p, a, b) for r, p in zip(recs, rec_person)
                       if not r.excluded and (r.entered or not entered_only) and p in complete
                       for (_, a, b, _v) in r.floor_changes)

    def f1(ot: Counter) -> tuple[int, float]:
        inter = sum((tt & ot).values())
        prec, rec_ = inter / max(sum(ot.values()), 1), inter / max(sum(tt.values()), 1)
        return inter, 2 * prec * rec_ / max(prec + rec_, 1e-9)

    ot = ours(entered_only=True)
    m["floor_tp"], m["floor_f1"] = f1(ot)
    m["floor_true"], m["floor_ours"] = sum(tt.values()), sum(ot.values())
    # Diagnostic: every record of the person (fragments left by an address rotation that was
    # not linked included): floor-change detection without linking.
    m["floor_f1_all_records"] = f1(ours(entered_only=False))[1]
    return m
