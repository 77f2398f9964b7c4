"""WindowAssembler: order-independent assembly, per-gateway clock skew, a robust watermark and
the holds ingest acknowledges by."""
from __future__ import annotations

from dataclasses import dataclass

from analytics.windows import Held, WindowAssembler

T0 = 1_700_000_000.0


@dataclass
class Part:
    gw: str
    seq: int
    t: float
    window_s: float = 1.0

    def __len__(self) -> int:
        return 1


def feed(wa, n_s: int, gws, skew: dict | None = None, t0: float = T0, seq0: int = 0):
    """Every gateway's batch of every second, in time order; returns the windows closed."""
    skew = skew or {}
    out = []
    for i in range(n_s):
        for g in gws:
            wa.add(Part(g, seq0 + i, t0 + i + skew.get(g, 0.0)))
            out += wa.close_ready()
    return out


GWS = [f"gw-{i:02d}" for i in range(10)]


def test_window_parts_sorted_whatever_the_arrival_order():
    a, b = WindowAssembler(), WindowAssembler()
    parts = [Part(g, 1, T0) for g in GWS]
    for p in parts:
        a.add(p)
    for p in reversed(parts):
        b.add(p)
    (wa,), (wb,) = a.close_all(), b.close_all()
    assert [p.gw for p in wa.parts] == [p.gw for p in wb.parts] == sorted(GWS)
    assert wa.closed and wb.closed


def test_gateway_ahead_is_corrected_and_makes_nobody_late():
    wa = WindowAssembler()
    closed = feed(wa, 40, GWS, {"gw-03": 30.0})
    assert wa.late_batches <= 40          # at most the skewed gateway's own batches
    # Accurate to one window: peers that already sent this second count as "now", those still
    # to send as the second before.
    assert 30.0 <= wa.offset_estimate("gw-03") <= 31.0
    assert wa.correction("gw-03") == round(wa.offset_estimate("gw-03"))
    assert all(abs(wa.offset_estimate(g)) <= 1.0 for g in GWS if g != "gw-03")
    # Windows closed in order, none in the future, the watermark never raced ahead.
    ts = [w.t for w in closed if not w.late]
    assert ts == sorted(ts) and max(w.t for w in closed) <= T0 + 40


def test_gateway_behind_is_corrected():
    wa = WindowAssembler()
    closed = feed(wa, 40, GWS, {"gw-07": -30.0}) + wa.close_all()
    assert -30.0 <= wa.correction("gw-07") <= -29.0
    assert wa.late_batches <= 12          # only its first batches, held until judged
    # After the correction its batches land in the live windows of their true time.
    last = [w for w in closed if not w.late][-5:]
    assert all("gw-07" in {p.gw for p in w.parts} for w in last)


def test_held_batches_resolve_to_their_window():
    wa = WindowAssembler()
    feed(wa, 5, GWS[1:])
    wa.add(Part(GWS[0], 0, T0 + 5 + 30.0))
    h = wa.last_window
    assert isinstance(h, Held) and not h.closed
    for w in wa.close_all():
        assert w.closed
    assert h.closed


def test_spool_replay_is_not_mistaken_for_skew():
    wa = WindowAssembler()
    feed(wa, 200, GWS[1:])
    # gw-00 replays 60 old windows as fast as it can: no live time passes meanwhile.
    for i in range(60):
        wa.add(Part("gw-00", i, T0 + i))
        wa.close_ready()
    assert wa.correction("gw-00") == 0.0
    assert wa.late_batches == 60


def test_steady_small_offsets_are_left_alone():
    wa = WindowAssembler()
    feed(wa, 30, GWS, {"gw-02": 1.0})
    assert wa.correction("gw-02") == 0.0 and wa.late_batches == 0


def test_held_gateway_that_falls_silent_is_released():
    wa = WindowAssembler()
    feed(wa, 5, GWS[1:])
    wa.add(Part(GWS[0], 0, T0 + 5 + 30.0))
    h = wa.last_window
    feed(wa, 10, GWS[1:], t0=T0 + 5, seq0=5)
    assert h.window is not None
