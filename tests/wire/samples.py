"""One sample of every record shape, shared by the golden and round-trip tests.

Names ending in a golden file name (tests/wire/golden/{name}.json) are asserted byte for byte.
"""
from __future__ import annotations

from gateway.wire import DeadLetter, Event, PosTransaction, Sighting, SightingsBatch, Status

T0 = 1_763_900_000.0  # 2025-11-23T12:13:20Z

SAMPLES = {
    "sightings_minimal": SightingsBatch("mall-1", "gw-01", 0, T0, 1.0, ()),
    "sightings_full": SightingsBatch(
        site="mall-1",
        gw="gw-01",
        seq=4711,
        t=T0 + 0.25,
        window_s=1.0,
        s=(
            Sighting("3f9a0c1e2b4d5a6f", "ble", -67.3, 12),
            Sighting("b64url_Zm9vYmFy-_", "ble", -81.0, 3, tx=-59, rnd=True),
            Sighting(
                "aa01", "ble", -55.5, 40, tx=-59, rnd=False,
                beacon="f7826da6-4fa2-4e98-8024-bc5b71e0893e:100:7",
            ),
            Sighting("c0ffee00", "wifi", -72.4, 2, rnd=True, fp="e3b0c44298fc1c14"),
            Sighting("deadbeef", "wifi", -120.0, 1, member="m:7f3a9e"),
        ),
    ),
    "status_online": Status(
        site="mall-1",
        gw="gw-01",
        t=T0 + 30.0,
        state="online",
        version="0.1.0",
        uptime_s=86_412.5,
        frames_per_s={"wifi": 41.25, "ble": 812.4},
        parse_errors=3,
        spool_depth=0,
        spool_dropped=0,
        cpu_temp_c=52.1,
    ),
    "status_last_will": Status.last_will("mall-1", "gw-01", T0, "0.1.0"),
    "event_passby": Event("mall-1", "passby", T0 + 1.5, "trk-000017", entrance="ent-north"),
    "event_entry": Event("mall-1", "entry", T0 + 2.0, "trk-000018", entrance="ent-north"),
    "event_exit": Event(
        "mall-1", "exit", T0 + 3600.0, "trk-000018", entrance="ent-south", duration_s=3598.0,
        member="m:7f3a9e",
    ),
    "event_floor_change": Event(
        "mall-1", "floor_change", T0 + 300.0, "trk-000018", floor_from="L0", floor_to="L1",
        via="esc-a",
    ),
    "event_zone_enter": Event("mall-1", "zone_enter", T0 + 310.0, "trk-000018", zone="s-104"),
    "event_zone_exit": Event(
        "mall-1", "zone_exit", T0 + 910.25, "trk-000018", zone="s-104", dwell_s=600.25
    ),
    "event_purchase": Event(
        "mall-1", "purchase", T0 + 900.0, "trk-000018", zone="s-104", amount=49.9,
        currency="EUR", txn_id="POS7-000123", member="m:7f3a9e",
    ),
    "pos": PosTransaction("mall-1", T0 + 899.5, "s-104", 49.9, "EUR", "POS7-000123"),
    "pos_refund_member": PosTransaction(
        "mall-1", T0 + 1000.0, "s-104", -5.0, "EUR", "POS7-000124", member="m:7f3a9e"
    ),
    "deadletter": DeadLetter.capture(
        "mall-1", T0 + 5.0, "mallsense/v1/mall-1/gw/gw-01/sightings", b'{"v":2}',
        "wrong_version", "this decoder reads v1, got 2", "v",
    ),
}
