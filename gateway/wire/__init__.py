"""MQTT wire contract v1: topics and payload records (docs/wire-v1.md).

Every MallSense component builds and reads MQTT topics and payloads through this package only.
"""
from __future__ import annotations

from gateway.wire.codec import MAX_PAYLOAD_BYTES, VERSION
from gateway.wire.dispatch import Record, decode_any
from gateway.wire.errors import REASONS, WireError
from gateway.wire.events import EVENT_FIELDS, Event
from gateway.wire.records import (
    DEADLETTER_PAYLOAD_MAX,
    STATES,
    DeadLetter,
    PosTransaction,
    Status,
)
from gateway.wire.sightings import KINDS, MAX_SIGHTINGS, Sighting, SightingArrays, SightingsBatch
from gateway.wire.topics import EVENT_TYPES, Topic

__all__ = [
    "DEADLETTER_PAYLOAD_MAX",
    "EVENT_FIELDS",
    "EVENT_TYPES",
    "KINDS",
    "MAX_PAYLOAD_BYTES",
    "MAX_SIGHTINGS",
    "REASONS",
    "STATES",
    "VERSION",
    "DeadLetter",
    "Event",
    "PosTransaction",
    "Record",
    "Sighting",
    "SightingArrays",
    "SightingsBatch",
    "Status",
    "Topic",
    "WireError",
    "decode_any",
]
