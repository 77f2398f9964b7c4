"""The SQLite spool: durability, order, acks, bound with drop-oldest, persistent seq."""
from __future__ import annotations

import threading

import pytest

from edge.spool import Spool

TOPIC = "mallsense/v1/mall1/gw/gw-01/sightings"


def test_put_pending_ack_in_order(tmp_path):
    sp = Spool(tmp_path / "s.db")
    for _ in range(5):
        seq = sp.next_seq()
        sp.put(seq, TOPIC, f"batch {seq}".encode())
    assert sp.depth == 5
    assert [x.seq for x in sp.pending()] == [0, 1, 2, 3, 4]
    assert [x.seq for x in sp.pending(after_seq=2, limit=1)] == [3]
    sp.ack(1)
    sp.ack(1)  # a duplicate PUBACK is harmless
    sp.ack(99)
    assert [x.payload for x in sp.pending()] == [b"batch 0", b"batch 2", b"batch 3", b"batch 4"]
    assert sp.depth == 4 and sp.size_bytes == sum(len(x.payload) for x in sp.pending())
    sp.close()


def test_seq_and_batches_survive_reopen(tmp_path):
    sp = Spool(tmp_path / "s.db")
    for _ in range(3):
        s = sp.next_seq()
        sp.put(s, TOPIC, b"x")
    for s in (0, 1, 2):
        sp.ack(s)
    unused = sp.next_seq()  # handed out, never stored: may be reused, nothing carried it
    sp.close()
    sp2 = Spool(tmp_path / "s.db")
    assert sp2.depth == 0
    assert sp2.next_seq() == unused == 3
    sp2.put(3, TOPIC, b"y")
    sp2.close()
    sp3 = Spool(tmp_path / "s.db")
    assert sp3.next_seq() == 4 and [x.seq for x in sp3.pending()] == [3]
    sp3.close()


def test_bounded_drop_oldest_counted_and_persisted(tmp_path):
    sp = Spool(tmp_path / "s.db", max_bytes=4096)
    for _ in range(10):
        s = sp.next_seq()
        sp.put(s, TOPIC, bytes(1000))
    assert sp.size_bytes <= 4096
    assert [x.seq for x in sp.pending()] == [6, 7, 8, 9]
    assert sp.dropped == 6
    sp.close()
    assert Spool(tmp_path / "s.db", max_bytes=4096).dropped == 6
    with pytest.raises(ValueError):
        Spool(tmp_path / "t.db", max_bytes=10)


def test_put_many_one_transaction_with_bound(tmp_path):
    sp = Spool(tmp_path / "s.db", max_bytes=2048)
    assert sp.put_many([]) == 0
    items = [(sp.next_seq(), TOPIC, bytes(500)) for _ in range(6)]
    assert sp.put_many(items) == 2
    assert [x.seq for x in sp.pending()] == [2, 3, 4, 5] and sp.dropped == 2
    with pytest.raises(Exception):
        sp.put_many([(9, TOPIC, b"a"), (9, TOPIC, b"b")])  # duplicate seq: all or nothing
    assert sp.depth == 4 and 9 not in [x.seq for x in sp.pending()]
    sp.close()
    assert Spool(tmp_path / "s.db").next_seq() == 6


def test_concurrent_put_and_ack(tmp_path):
    sp = Spool(tmp_path / "s.db")
    done = threading.Event()
    acked = []

    def acker():
        while not done.is_set() or sp.depth:
            for x in sp.pending(limit=10):
                sp.ack(x.seq)
                acked.append(x.seq)

    th = threading.Thread(target=acker)
    th.start()
    for _ in range(300):
        s = sp.next_seq()
        sp.put(s, TOPIC, b"p")
    done.set()
    th.join(10)
    assert sorted(set(acked)) == list(range(300)) and sp.depth == 0


def test_newest_seq_tells_a_reader_when_nothing_is_new(tmp_path):
    s = Spool(tmp_path / "s.db")
    assert s.newest_seq == -1
    s.put_many([(s.next_seq(), "t", b"a"), (s.next_seq(), "t", b"b")])
    assert s.newest_seq == 1
    s.ack(0)
    assert s.newest_seq == 1                      # acks do not make anything new
    s2 = Spool(tmp_path / "s.db")                 # reopened: what is still stored
    assert s2.newest_seq == 1 and [p.seq for p in s2.pending()] == [1]
    s2.ack(1)
    s3 = Spool(tmp_path / "s.db")
    assert s3.newest_seq == -1 and s3.next_seq() == 2   # all sent: nothing to query for
