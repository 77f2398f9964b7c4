"""Exception root of the gateway package (site model, wire contract, field tools)."""
from __future__ import annotations


class GatewayError(Exception):
    """Root of every error raised by ``gateway``; catch this to catch them all."""
