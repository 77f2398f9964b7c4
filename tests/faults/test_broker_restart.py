"""A broker restart mid-stream: gateways spool, ingest resumes its persistent session, and
InfluxDB ends up holding exactly what a fault-free run writes."""
from __future__ import annotations

import time

import pytest

from tests.faults.harness import (
    IngestThread,
    SpoolFeeder,
    clean_reference,
    diff_snapshots,
    fresh_db,
    influx_snapshot,
    n_sightings,
    sim_batches,
    sink_spool_depth,
    summary,
    wait_for,
)

pytestmark = pytest.mark.servers


def test_broker_restart_loses_nothing_counts_nothing_twice(tmp_path, fresh_mosquitto, influxdb):
    broker = fresh_mosquitto
    batches = sim_batches()
    clean_stats, want = clean_reference()
    db = fresh_db(influxdb, "fault_broker_restart")
    ing = IngestThread(broker.port, influxdb.url, db, tmp_path / "sink.sqlite3").start()
    feeder = SpoolFeeder(broker.port, tmp_path, batches, rate=len(batches) / 10.0).start()
    try:
        assert wait_for(lambda: ing.stats["batches"] >= len(batches) // 3, 60)
        broker.stop()
        down = time.monotonic()
        while time.monotonic() - down < 3.0:   # the outage is the test: gateways keep producing
            time.sleep(0.1)
        held = feeder.spool.depth
        broker.start()
        assert wait_for(feeder.done, 90), f"spool still holds {feeder.spool.depth} batches"
        assert wait_for(lambda: ing.stats["batches"] - ing.stats["duplicates"] >= len(batches),
                        90), ing.stats
    finally:
        feeder.close()
        ing.close()
    assert not ing.error, ing.error
    assert held > 0, "the gateways' spool never held anything during the outage"
    assert ing.svc.source.session_present or feeder.publisher.connects >= 2
    st = ing.stats
    assert st["batches"] - st["duplicates"] == len(batches)        # every batch once
    assert ing.pipeline.dedupe.duplicates == st["duplicates"]
    assert st["sightings"] == n_sightings(batches) == clean_stats["sightings"]
    assert st["deadletters"] == 0
    assert st["windows"] == clean_stats["windows"]
    got = influx_snapshot(influxdb.url, db)
    assert not diff_snapshots(got, want), (summary(got), summary(want),
                                           diff_snapshots(got, want)[:10])
    assert sink_spool_depth(tmp_path / "sink.sqlite3") == (0, 0)
