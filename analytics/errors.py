"""The one exception root of the analytics package; errors carry fields, not just text."""
from __future__ import annotations


class AnalyticsError(Exception):
    """Root of every error raised by analytics."""


class ConfigError(AnalyticsError):
    """A bad option or input file; ``key`` names what is wrong."""

    def __init__(self, key: str, why: str) -> None:
        super().__init__(f"{key}: {why}")
        self.key = key
        self.why = why


class SinkError(AnalyticsError):
    """A write to the time-series database failed.

    ``transient`` says whether retrying can help (outage, 5xx, 429, timeout) or
    not (4xx: the server refused the data itself).
    """

    def __init__(self, why: str, *, status: int | None = None, transient: bool = True) -> None:
        super().__init__(f"{why} (status={status})" if status is not None else why)
        self.why = why
        self.status = status
        self.transient = transient


class LineProtocolError(AnalyticsError, ValueError):
    """A point cannot be written as line protocol (no fields, bad name, bad value)."""

    def __init__(self, measurement: str, why: str) -> None:
        super().__init__(f"{measurement!r}: {why}")
        self.measurement = measurement
        self.why = why
