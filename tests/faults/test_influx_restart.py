"""An InfluxDB restart mid-stream: the sink spools while the database is down, drains after,
and the database ends up holding exactly what a fault-free run writes (nothing lost, nothing
twice: replayed batches overwrite the same series and timestamps)."""
from __future__ import annotations

import time

import pytest

from analytics.sink import DOWN
from tests.faults.harness import (
    IngestThread,
    SpoolFeeder,
    clean_reference,
    diff_snapshots,
    influx_snapshot,
    n_sightings,
    sim_batches,
    sink_spool_depth,
    summary,
    wait_for,
)

pytestmark = pytest.mark.servers


def test_influxdb_restart_sink_spools_then_drains(tmp_path, mosquitto, fresh_influxdb):
    db_server = fresh_influxdb
    db = "fault_influx_restart"
    db_server.create_database(db)
    batches = sim_batches()
    clean_stats, want = clean_reference()
    ing = IngestThread(mosquitto.port, db_server.url, db, tmp_path / "sink.sqlite3",
                       client_id="fault-ingest-influx").start()
    feeder = SpoolFeeder(mosquitto.port, tmp_path, batches, rate=len(batches) / 10.0,
                         client_id="fault-feeder-influx").start()
    max_depth, saw_down = 0, False
    try:
        assert wait_for(lambda: ing.stats["batches"] >= len(batches) // 4, 60)
        db_server.stop()
        down = time.monotonic()
        while time.monotonic() - down < 4.0:   # the outage is the test
            max_depth = max(max_depth, ing.sink.spool.depth()[1])
            saw_down |= ing.sink.state == DOWN
            time.sleep(0.1)
        db_server.start()
        assert wait_for(feeder.done, 90)
        assert wait_for(lambda: ing.stats["batches"] - ing.stats["duplicates"] >= len(batches),
                        90), ing.stats
    finally:
        feeder.close()
        ing.close()
    assert not ing.error, ing.error
    assert saw_down and max_depth > 0, "the sink never spooled during the outage"
    assert sink_spool_depth(tmp_path / "sink.sqlite3") == (0, 0), "the spool did not drain"
    assert ing.sink.rejected_batches == 0
    st = ing.stats
    assert st["batches"] - st["duplicates"] == len(batches)
    assert st["sightings"] == n_sightings(batches) == clean_stats["sightings"]
    got = influx_snapshot(db_server.url, db)
    assert not diff_snapshots(got, want), (summary(got), summary(want),
                                           diff_snapshots(got, want)[:10])
