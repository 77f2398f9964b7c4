"""The firmware_sim exception root."""
from __future__ import annotations


class SimError(Exception):
    """Root of every error firmware_sim raises on purpose. ``field`` names the bad setting."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message if field is None else f"{field}: {message}")
        self.message = message
        self.field = field
