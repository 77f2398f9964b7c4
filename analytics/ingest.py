"""The ingest service: MQTT in -> Pipeline -> InfluxDB, events and dead letters back to MQTT.

A thin shell around the pure ``Pipeline``: it reads the clock, drives the MQTT loop, writes
points through the durable sink and publishes what the pipeline produced. Every ``flush_s``
the sink is flushed (server accepted or spooled) and only then are the MQTT messages behind
it acknowledged, so a crash costs a redelivery, never data.

A sightings batch only has an effect once the window it fed is closed (the watermark waits
``lateness_s`` for the other gateways): until then it exists only in memory. So a batch's
message is acknowledged only after its window was closed and the points it produced flushed;
status and POS messages right after the next flush. Acks go out in arrival order, so one
message waiting holds back those after it. The message counters written to the ``ingest``
measurement (messages, batches, duplicates, late_batches, sightings, deadletters) count the
acknowledged messages: after a crash, what the last durable counters show was acknowledged, the
rest is redelivered to the next process and counted there.

When no batch arrives for ``idle_close_s`` while connected (the gateways went quiet), every open
window is closed, so the last batches are acknowledged and counted without more data behind
them.
"""
from __future__ import annotations

import logging
import threading
import time
import zlib
from typing import Callable

from gateway.wire import Topic

from analytics.mqtt_source import MqttSource
from analytics.pipeline import Output, Pipeline
from analytics.sink import InfluxSink, Point

log = logging.getLogger(__name__)


def event_point(ev) -> Point:
    """A journey event as a point. Several events of one type can share a millisecond, so the
    timestamp carries a sub-millisecond offset from the visitor id (stable, so a replay
    overwrites rather than duplicates)."""
    tags = {"site": ev.site, "type": ev.type}
    for k in ("entrance", "floor_from", "floor_to", "via", "zone"):
        v = getattr(ev, k)
        if v is not None:
            tags[k] = v
    fields = {"visitor": ev.visitor, "member": 1 if ev.member else 0}
    for k in ("dwell_s", "duration_s", "amount"):
        v = getattr(ev, k)
        if v is not None:
            fields[k] = float(v)
    if ev.currency:
        fields["currency"] = ev.currency
    if ev.txn_id:
        fields["txn_id"] = ev.txn_id
    offset = (zlib.crc32(ev.visitor.encode()) % 1000) * 1e-6
    return Point("journey_event", tags, fields, round(ev.t, 3) + offset)


def subscription_filters(site_id: str, share_group: str | None) -> list[str]:
    filters = [Topic.sightings_filter(site_id), Topic.status_filter(site_id), str(Topic.pos(site_id))]
    if share_group:
        filters = [Topic.shared(share_group, f) for f in filters]
    return filters


_PIPELINE_COMMITTED = ("batches", "duplicates", "late_batches", "sightings", "deadletters")
_COMMITTED = _PIPELINE_COMMITTED + ("messages",)


class IngestService:
    def __init__(self, pipeline: Pipeline, sink: InfluxSink, mqtt_url: str, *,
                 client_id: str = "mallsense-ingest", share_group: str | None = None,
                 session_expiry_s: int = 3600, flush_s: float = 1.0,
                 publish_events: bool = True, clock: Callable[[], float] = time.time,
                 idle_close_s: float = 10.0) -> None:
        self.pipeline = pipeline
        self.sink = sink
        self.site_id = pipeline.site.id
        self.flush_s = flush_s
        self.publish_events = publish_events
        self._clock = clock
        self.source = MqttSource(mqtt_url, client_id, subscription_filters(self.site_id, share_group),
                                 self._message, session_expiry_s=session_expiry_s)
        self.counters = {"messages": 0, "events": 0, "deadletters": 0, "points": 0,
                         "flush_ms_max": 0}
        # Counters of acknowledged messages (what the ingest measurement reports).
        self.committed = {k: 0 for k in _COMMITTED}
        self.idle_close_s = idle_close_s
        self._last_batch = time.monotonic()
        self._next_flush = 0.0

    def _message(self, topic: str, payload: bytes):
        """One MQTT message; returns its hold: (what it waits for, its counter increments)."""
        before = [self.pipeline.stats.get(k, 0) for k in _PIPELINE_COMMITTED]
        self.counters["messages"] += 1
        out = self.pipeline.process_payload(topic, payload, self._clock())
        self.handle(out)
        delta = {k: self.pipeline.stats.get(k, 0) - b for k, b in zip(_PIPELINE_COMMITTED, before)}
        delta["messages"] = 1
        if out.hold is not None:
            self._last_batch = time.monotonic()
        return out.hold, delta

    @staticmethod
    def _ready(hold) -> bool:
        h = hold[0] if isinstance(hold, tuple) else hold
        return h is None or bool(getattr(h, "closed", True))

    def handle(self, out: Output) -> None:
        if out.points:
            self.sink.write(out.points)
            self.counters["points"] += len(out.points)
        if out.events:
            self.sink.write(event_point(e) for e in out.events)
            self.counters["events"] += len(out.events)
            if self.publish_events:
                for e in out.events:
                    self.source.publish(str(Topic.event(self.site_id, e.type)), e.encode())
        for dl in out.deadletters:
            self.counters["deadletters"] += 1
            log.info("dead letter from %s: %s (%s)", dl.topic, dl.reason, dl.detail)
            self.source.publish(str(Topic.deadletter(self.site_id)), dl.encode())

    def _close_idle(self) -> None:
        src = self.source
        if (self.idle_close_s is not None and src.state == "connected" and src.pending
                and self.pipeline.windows.has_open):
            quiet = time.monotonic() - max(self._last_batch, src.connected_at)
            if quiet >= self.idle_close_s:
                log.info("no batch for %.1f s: closing the open windows", quiet)
                self.handle(self.pipeline.close_windows())

    def flush(self) -> None:
        """Sink flushed (accepted or spooled), then the messages behind it acknowledged: those
        whose windows are closed (their points are in this flush), in arrival order."""
        t0 = time.monotonic()
        self._flush()
        # The sink writes synchronously: a slow database shows here before it shows as lag.
        ms = int((time.monotonic() - t0) * 1000)
        self.counters["flush_ms_max"] = max(self.counters["flush_ms_max"], ms)

    def _flush(self) -> None:
        self._close_idle()
        now = self._clock()
        taken = self.source.take_ready(self._ready)
        for _mid, _qos, hold, _conn in taken:
            if isinstance(hold, tuple):
                for k, v in hold[1].items():
                    self.committed[k] += v
        stats = dict(self.pipeline.stats)
        stats.update(self.counters)
        stats.update(self.committed)
        stats["spool_lines"] = self.sink.spool.depth()[1]
        self.pipeline.metrics.ingest_stats(now, {k: int(v) for k, v in stats.items()})
        self.sink.write(self.pipeline.metrics.take_points())
        self.sink.flush()
        self.source.ack(taken)

    def run(self, stop: threading.Event | None = None, max_s: float | None = None) -> None:
        stop = stop or threading.Event()
        t_end = None if max_s is None else time.monotonic() + max_s
        log.info("ingest for site %s from %s", self.site_id, self.source.url.host)
        try:
            while not stop.is_set() and (t_end is None or time.monotonic() < t_end):
                self.source.poll(0.05)
                if time.monotonic() >= self._next_flush:
                    self.flush()
                    self._next_flush = time.monotonic() + self.flush_s
        finally:
            self.close()

    def close(self) -> None:
        """Finish: every open window and visitor closed, everything written, then disconnect."""
        self.handle(self.pipeline.flush())
        self.flush()
        self.source.close(self._ready)
        res = self.sink.close()
        log.info("ingest stopped: %s; sink %s", self.counters, res)
