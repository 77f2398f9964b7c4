from __future__ import annotations

import sqlite3

import pytest

from gateway.site import load_site, sample_site_path
from analytics.crm import Crm, Member, load_members
from analytics.errors import ConfigError
from analytics.pipeline import Output, Pipeline
from tests.analytics.synth import Walker, batches, line, stay


def test_members_from_csv(tmp_path):
    p = tmp_path / "m.csv"
    p.write_text("member_id,tier,consent\nM1,Gold,yes\nM2,basic,0\nM3,,true\n")
    crm = load_members(p)
    assert crm.members["M1"] == Member("M1", "gold", True)
    assert not crm.has_consent("M2") and crm.has_consent("M3")
    assert crm.tier("M3") == "basic" and crm.tier("M2") is None


def test_members_from_sqlite(tmp_path):
    p = tmp_path / "m.db"
    db = sqlite3.connect(p)
    db.execute("CREATE TABLE members (member_id TEXT, tier TEXT, consent INTEGER)")
    db.executemany("INSERT INTO members VALUES (?,?,?)", [("A", "silver", 1), ("B", "gold", 0)])
    db.commit()
    db.close()
    crm = load_members(p)
    assert crm.has_consent("A") and not crm.has_consent("B")
    assert crm.tier("A") == "silver"


def test_bad_files_name_the_problem(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("member_id,tier,consent\nM1,gold,maybe\n")
    with pytest.raises(ConfigError) as err:
        load_members(p)
    assert "bad.csv:2" in err.value.key
    p.write_text("id,tier\n")
    with pytest.raises(ConfigError):
        load_members(p)
    with pytest.raises(ConfigError):
        load_members(tmp_path / "missing.csv")


def test_tokens_resolve_and_revoke_calls_listeners():
    crm = Crm({"M1": Member("M1", "gold", True)})
    crm.add_tokens({"m00010002": "M1"})
    assert crm.resolve("m00010002").id == "M1"
    got = []
    crm.on_revoke(lambda mid, toks: got.append((mid, sorted(toks))))
    crm.revoke("M1")
    assert got == [("M1", ["M1", "m00010002"])]
    assert not crm.has_consent("m00010002")


@pytest.fixture(scope="module")
def site():
    return load_site(sample_site_path())


def _walk(member):
    path = line("L1", (60, -7), (60, 30), 1.2) + stay("L1", (60, 30), 60) + line("L1", (60, 30), (60, -7), 1.2)
    return Walker([(0, "ble-m")], "ble", path, member=member)


def _run(site, crm, feed, revoke_at=None):
    pl = Pipeline(site, crm=crm)
    out = Output()
    for i, (t, b) in enumerate(feed):
        if revoke_at is not None and i == revoke_at:
            crm.revoke("M1")
        out.extend(pl.process(b, t))
    out.extend(pl.flush())
    return pl, out


def test_consenting_member_linked(site):
    crm = Crm({"M1": Member("M1", "gold", True)})
    crm.add_tokens({"m00aa00bb": "M1"})
    _, out = _run(site, crm, batches(site, [_walk("m00aa00bb")], 130))
    assert out.visits[0].member == "M1"
    assert all(e.member == "M1" for e in out.events)
    assert any(p.measurement == "member_visitors" and p.tags["tier"] == "gold" for p in out.points)


def test_member_without_consent_never_linked(site):
    crm = Crm({"M1": Member("M1", "gold", False)})
    crm.add_tokens({"m00aa00bb": "M1"})
    _, out = _run(site, crm, batches(site, [_walk("m00aa00bb")], 130))
    assert out.visits[0].member is None
    assert all(e.member is None for e in out.events)


def test_revoked_consent_deletes_earlier_links(site):
    crm = Crm({"M1": Member("M1", "gold", True)})
    crm.add_tokens({"m00aa00bb": "M1"})
    feed = batches(site, [_walk("m00aa00bb")], 130)
    pl, out = _run(site, crm, feed, revoke_at=len(feed) // 2)
    assert out.visits[0].member is None
    assert "M1" not in pl.visitors.by_member and "M1" not in pl.seen_before
    late = [e for e in out.events if e.t > feed[len(feed) // 2][0]]
    assert late and all(e.member is None for e in late)
