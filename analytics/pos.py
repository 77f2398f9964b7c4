"""POS transactions from a CSV export (t, store, amount, currency, txn_id[, member])."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator

from gateway.wire import PosTransaction, WireError

from analytics.errors import ConfigError


def read_pos_csv(path: str | Path, site_id: str) -> Iterator[PosTransaction]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        need = {"t", "store", "amount", "currency", "txn_id"}
        if not need <= set(reader.fieldnames or ()):
            raise ConfigError(str(path), f"CSV header must name {sorted(need)}")
        for row in reader:
            try:
                yield PosTransaction(site_id, round(float(row["t"]), 3), row["store"],
                                     round(float(row["amount"]), 3), row["currency"],
                                     row["txn_id"], row.get("member") or None)
            except (ValueError, WireError) as exc:
                raise ConfigError(f"{path}:{reader.line_num}", str(exc)) from None
