"""The demo's business inputs, made from the simulation's truth: the CRM members file (with
consent, a few never given, a few revoked during the run) and the tills' POS transactions."""
from __future__ import annotations

import csv
from pathlib import Path

CURRENCY = "EUR"


def write_crm(truth, members_csv: Path, tokens_csv: Path, opts) -> tuple[Path, Path, list]:
    """members.csv (member_id, tier, consent) from the simulated members; a few never consented
    (consent false) and ``revoke_members`` revoke it during the afternoon (at most 20 min in)."""
    import numpy as np

    rng = np.random.default_rng(opts.seed)
    members = sorted(set(truth.member.values()))
    tiers = rng.choice(["basic", "silver", "gold", "platinum"], len(members),
                       p=[0.55, 0.25, 0.15, 0.05])
    no_consent = set(rng.choice(members, min(len(members) // 20 + 1, len(members)),
                                replace=False).tolist()) if members else set()
    rest = [m for m in members if m not in no_consent]
    revoked = rng.choice(rest, min(opts.revoke_members, len(rest)), replace=False).tolist() \
        if rest else []
    members_csv.parent.mkdir(parents=True, exist_ok=True)
    with open(members_csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["member_id", "tier", "consent"])
        for m, tier in zip(members, tiers):
            w.writerow([m, tier, "false" if m in no_consent else "true"])
    with open(tokens_csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["token", "member_id"])
        for tok, m, _f, _t in truth.member_tokens():
            w.writerow([tok, m])
    return members_csv, tokens_csv, [str(m) for m in revoked]


def pos_transactions(site_id: str, purchases_csv: Path, truth, revoked) -> list:
    """The tills' transactions; a member's carries the app token shown at checkout."""
    from gateway.wire import PosTransaction

    tokens: dict[str, list] = {}
    for tok, m, f, t in truth.member_tokens():
        tokens.setdefault(m, []).append((f, t, tok))
    out = []
    with open(purchases_csv, newline="") as fh:
        for i, r in enumerate(csv.DictReader(fh)):
            t = float(r["t"])
            tok = None
            if r["member"] and r["member"] not in revoked:
                tok = next((k for f, e, k in tokens.get(r["member"], []) if f <= t <= e), None)
            out.append(PosTransaction(site_id, round(t, 3), r["store"], round(float(r["amount"]), 3),
                                      CURRENCY, f"T{i:06d}", tok))
    return out
