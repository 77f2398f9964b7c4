"""Keyed rotating pseudonyms, opt-out hashes, member tokens."""
from __future__ import annotations

import hashlib
import hmac

import pytest

from edge.errors import SiteSecretMissing
from edge.privacy import OptOutList, Pseudonymizer, member_token, opt_out_hash, parse_address

SECRET = b"0123456789abcdef-site-secret"
ADDR = bytes.fromhex("aabbccddeeff")


def test_pseudonym_is_the_documented_hmac():
    p = Pseudonymizer(SECRET, rotation_s=86400)
    t = 1_700_000_123.0
    epoch = int(t // 86400)
    expected = hmac.new(SECRET, epoch.to_bytes(8, "big") + ADDR, hashlib.sha256).hexdigest()[:16]
    assert p.pseudonym(ADDR, t) == expected
    assert len(expected) == 16 and all(c in "0123456789abcdef" for c in expected)


def test_rotation_and_stability():
    p = Pseudonymizer(SECRET, rotation_s=3600)
    a = p.pseudonym(ADDR, 7200.0)
    assert p.pseudonym(ADDR, 7200.0 + 3599.9) == a
    assert p.pseudonym(ADDR, 7200.0 + 3600.0) != a
    assert p.pseudonym(ADDR, 7200.0) == a  # going back re-derives, nothing cached wrongly
    assert Pseudonymizer(SECRET + b"x", 3600).pseudonym(ADDR, 7200.0) != a
    assert p.pseudonym(bytes.fromhex("aabbccddeefe"), 7200.0) != a


def test_secret_required():
    with pytest.raises(SiteSecretMissing):
        Pseudonymizer(b"short")
    with pytest.raises(ValueError):
        Pseudonymizer(SECRET, rotation_s=0)


@pytest.mark.parametrize("text", ["aa:bb:cc:dd:ee:ff", "AA:BB:CC:DD:EE:FF", "aabb.ccdd.eeff",
                                  "AA-BB-CC-DD-EE-FF", "aabbccddeeff", ADDR])
def test_opt_out_hash_accepts_common_forms(text):
    assert opt_out_hash(text, SECRET) == hashlib.sha256(SECRET + ADDR).hexdigest()


def test_opt_out_list(tmp_path):
    f = tmp_path / "optout.txt"
    f.write_text(f"# opted out at the desk\n{opt_out_hash('aa:bb:cc:dd:ee:ff', SECRET)}\n\n")
    lst = OptOutList.from_file(str(f), SECRET)
    assert len(lst) == 1
    assert lst.blocked(ADDR) and lst.blocked(ADDR)
    assert not lst.blocked(bytes(6))
    assert ADDR.hex() not in f.read_text()
    with pytest.raises(ValueError):
        parse_address("aa:bb")


def test_member_token():
    assert member_token(1, 0xABCD) == "m0001abcd"
