"""CRM linkage: loyalty members (id, tier, consent) from CSV or SQLite; consent is enforced.

Gateways send a *member token* only for members who opted in through the app or the Wi-Fi
portal; tokens may rotate (the app server resolves them: ``add_tokens``). A token that does not
resolve to a member with consent is never linked to a visitor. Revoking consent (``revoke``)
deletes every link already made: the registered listeners (the visitor registry and the
journey engine) drop the member from their state. Nothing member-identifying is written to
InfluxDB: events carry a 0/1 member flag, reports a tier.
"""
from __future__ import annotations

import csv
import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from analytics.errors import ConfigError

log = logging.getLogger(__name__)

TIERS = ("basic", "silver", "gold", "platinum")
_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f", ""}


@dataclass(frozen=True)
class Member:
    id: str
    tier: str
    consent: bool


class Crm:
    def __init__(self, members: dict[str, Member] | None = None) -> None:
        self.members: dict[str, Member] = dict(members or {})
        self._token: dict[str, str] = {}
        self._listeners: list[Callable[[str, list[str]], None]] = []

    def add_tokens(self, mapping: dict[str, str]) -> None:
        """token -> member id, as the app server resolves rotating tokens."""
        self._token.update(mapping)

    def resolve(self, token: str) -> Member | None:
        return self.members.get(self._token.get(token, token))

    def has_consent(self, token: str) -> bool:
        m = self.resolve(token)
        return bool(m and m.consent)

    def tier(self, token: str | None) -> str | None:
        m = self.resolve(token) if token else None
        return m.tier if m and m.consent else None

    def on_revoke(self, fn: Callable[[str, list[str]], None]) -> None:
        """fn(member_id, tokens) is called when a member revokes consent."""
        self._listeners.append(fn)

    def revoke(self, member_id: str) -> None:
        m = self.members.get(member_id)
        if m is None:
            raise ConfigError("member", f"unknown member {member_id!r}")
        self.members[member_id] = Member(m.id, m.tier, False)
        tokens = [t for t, mid in self._token.items() if mid == member_id] + [member_id]
        log.info("member consent revoked; deleting %d links", len(tokens))
        for fn in self._listeners:
            fn(member_id, tokens)


def _bool(value: str, where: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ConfigError(where, f"consent must be true/false, got {value!r}")


def load_members(path: str | Path) -> Crm:
    """Members from a CSV (member_id, tier, consent) or a SQLite file (table ``members``)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(str(path), "members file not found")
    with open(path, "rb") as fh:
        is_sqlite = fh.read(16) == b"SQLite format 3\x00"
    rows: list[tuple[str, str, str, str]] = []
    if is_sqlite:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            for i, (mid, tier, consent) in enumerate(
                    db.execute("SELECT member_id, tier, consent FROM members")):
                rows.append((str(mid), str(tier), str(consent), f"{path}:members[{i}]"))
        except sqlite3.Error as exc:
            raise ConfigError(str(path), f"needs table members(member_id, tier, consent): {exc}")
        finally:
            db.close()
    else:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            need = {"member_id", "tier", "consent"}
            if not need <= set(reader.fieldnames or ()):
                raise ConfigError(str(path), f"CSV header must name {sorted(need)}")
            for row in reader:
                rows.append((row["member_id"], row["tier"], row["consent"],
                             f"{path}:{reader.line_num}"))
    members = {}
    for mid, tier, consent, where in rows:
        mid = mid.strip()
        if not mid:
            raise ConfigError(where, "empty member_id")
        tier = tier.strip().lower() or "basic"
        members[mid] = Member(mid, tier, _bool(consent, where))
    return Crm(members)
