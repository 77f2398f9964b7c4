"""Privacy at the source: no raw address leaves the gateway.

Pseudonym (documented in docs/edge.md):
    epoch     = floor(t / rotation_s)
    salt      = epoch as 8 bytes big-endian
    pseudonym = hex(HMAC-SHA256(key=site_secret, msg=salt || addr))[:16]
with addr the 6 address bytes in display order. The same device gets the same pseudonym at every
gateway of the site within one epoch (so positioning can join gateways), a new one after each
rotation (daily by default), and without the site secret nothing links a pseudonym to an address.
16 hex chars = 64 bits: collisions among a mall's ~10^5 daily devices have probability ~3e-10.

Opt-out: the list holds hex(SHA-256(site_secret || addr)); :func:`opt_out_hash` computes one
entry, so the list itself contains no address either.

Members: a consented member app advertises an iBeacon with the site's member UUID; the token is
derived from its major/minor only (:func:`member_token`). Nothing else marks a device as member.
"""
from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Iterable

from edge.errors import SiteSecretMissing

MIN_SECRET_BYTES = 16


class Pseudonymizer:
    """Keyed, rotating pseudonyms of device addresses."""

    __slots__ = ("_key", "rotation_s", "_epoch", "_salt", "_cache")

    def __init__(self, secret: bytes, rotation_s: float = 86400) -> None:
        if not isinstance(secret, bytes) or len(secret) < MIN_SECRET_BYTES:
            raise SiteSecretMissing("<in memory>", f"secret must be >= {MIN_SECRET_BYTES} bytes")
        if not rotation_s > 0:
            raise ValueError("rotation_s must be > 0")
        self._key = secret
        self.rotation_s = float(rotation_s)
        self._epoch: int | None = None
        self._salt = b""
        self._cache: dict[bytes, str] = {}

    def epoch(self, t: float) -> int:
        return math.floor(t / self.rotation_s)

    def pseudonym(self, addr: bytes, t: float) -> str:
        """16 hex chars for ``addr`` (6 bytes, display order) at unix time ``t``."""
        epoch = self.epoch(t)
        if epoch != self._epoch:
            self._epoch = epoch
            self._salt = epoch.to_bytes(8, "big", signed=True)
            self._cache = {}
        got = self._cache.get(addr)
        if got is None:
            got = hmac.new(self._key, self._salt + bytes(addr), hashlib.sha256).hexdigest()[:16]
            if len(self._cache) < 200_000:
                self._cache[addr] = got
        return got


def opt_out_hash(addr: bytes | str, secret: bytes) -> str:
    """The opt-out list entry of one address: hex SHA-256(site_secret || addr bytes).

    ``addr`` may be bytes or text in any common form ("AA:BB:CC:DD:EE:FF", "aabb.ccdd.eeff",
    "aa-bb-...").
    """
    return hashlib.sha256(secret + parse_address(addr)).hexdigest()


def parse_address(addr: bytes | str) -> bytes:
    if isinstance(addr, bytes):
        raw = addr
    else:
        raw = bytes.fromhex("".join(c for c in addr if c not in ":-. "))
    if len(raw) != 6:
        raise ValueError("an address has 6 bytes")
    return raw


class OptOutList:
    """Devices whose owners opted out; their frames are dropped before aggregation."""

    __slots__ = ("_secret", "_hashes", "_seen")

    def __init__(self, secret: bytes, hashes: Iterable[str] = ()) -> None:
        self._secret = secret
        self._hashes = frozenset(h.strip().lower() for h in hashes if h.strip())
        self._seen: dict[bytes, bool] = {}

    def __len__(self) -> int:
        return len(self._hashes)

    def blocked(self, addr: bytes) -> bool:
        if not self._hashes:
            return False
        hit = self._seen.get(addr)
        if hit is None:
            hit = hashlib.sha256(self._secret + addr).hexdigest() in self._hashes
            if len(self._seen) > 100_000:
                self._seen.clear()
            self._seen[addr] = hit
        return hit

    @classmethod
    def from_file(cls, path: str, secret: bytes) -> OptOutList:
        """One hex hash per line; '#' starts a comment."""
        with open(path, encoding="ascii") as f:
            lines = [ln.split("#", 1)[0] for ln in f]
        return cls(secret, lines)


def member_token(major: int, minor: int) -> str:
    """The consented member token carried by the member app's iBeacon frame: "m" + 8 hex chars
    of major and minor (the app rotates them from its server-issued token)."""
    return f"m{major & 0xFFFF:04x}{minor & 0xFFFF:04x}"
