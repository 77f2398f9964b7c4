"""MallSense analytics: ingest service, shopper journeys, metrics, CRM linkage, InfluxDB sink.

Where things are:
- ``analytics.pipeline.Pipeline``: the pure core (batches in, events/points out; time is an input).
- ``analytics.dedupe`` (gateway, seq) dedupe; ``analytics.windows`` event-time windows, watermark,
  late data; ``analytics.locating`` / ``analytics.gridpost`` per-window fixes; ``analytics.devices``
  floors (HMM), Kalman tracks, zone hysteresis, inside/outside; ``analytics.visitors`` merging
  rotating pseudonyms, staff/fixed exclusion; ``analytics.journey`` the journey events and POS
  matching; ``analytics.metrics`` InfluxDB measurements (docs/metrics.md); ``analytics.crm``.
- ``analytics.sink``: line protocol, v1/v2 transports, durable batching sink with SQLite spool.
- ``analytics.mqtt_source`` / ``analytics.ingest`` / ``analytics.cli``: the ``mallsense ingest``
  service (dead letters in ``deadletter`` via gateway.wire.DeadLetter).
"""
