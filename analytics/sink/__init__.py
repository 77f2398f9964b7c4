"""InfluxDB storage: exact line protocol, v1/v2 transports, a durable batching sink."""
from analytics.sink.lineprotocol import Point, encode_point, encode_points
from analytics.sink.sink import DOWN, UP, FlushResult, InfluxSink
from analytics.sink.spool import Spool
from analytics.sink.transports import Transport, V1HttpTransport, V2ClientTransport

__all__ = ["Point", "encode_point", "encode_points", "InfluxSink", "FlushResult", "UP", "DOWN",
           "Spool", "Transport", "V1HttpTransport", "V2ClientTransport", "make_sink"]


def make_sink(*, url: str, db: str | None = None, rp: str | None = None, org: str | None = None,
              bucket: str | None = None, token: str | None = None, v2: bool = False,
              spool_path: str = ":memory:", **kwargs) -> InfluxSink:
    """The sink for the CLI's flags: v2 (org, bucket, token) or v1 (database, retention policy)."""
    from analytics.errors import ConfigError

    if v2:
        if not bucket:
            raise ConfigError("--bucket", "required with --influx-v2")
        transport: Transport = V2ClientTransport(url, org or "", bucket, token or "")
    else:
        if not db:
            raise ConfigError("--db", "required for the v1 transport")
        transport = V1HttpTransport(url, db, rp)
    return InfluxSink(transport, spool_path, **kwargs)
