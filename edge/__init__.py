"""MallSense edge agent: scanners, pure parsers, privacy, window aggregation, spool, publisher."""

__version__ = "0.1.0"
