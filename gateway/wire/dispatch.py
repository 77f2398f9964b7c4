"""Decode a payload by the topic it arrived on, cross-checking topic and payload."""
from __future__ import annotations

from typing import Union

from gateway.wire.errors import WireError
from gateway.wire.events import Event
from gateway.wire.records import DeadLetter, PosTransaction, Status
from gateway.wire.sightings import SightingsBatch
from gateway.wire.topics import Topic

Record = Union[SightingsBatch, Status, Event, PosTransaction, DeadLetter]

_DECODERS = {
    "sightings": SightingsBatch.decode,
    "status": Status.decode,
    "event": Event.decode,
    "pos": PosTransaction.decode,
    "deadletter": DeadLetter.decode,
}


def decode_any(topic: Topic | str | bytes, data: bytes) -> Record:
    """The record ``data`` holds, given the topic it came on.

    Raises WireError("bad_topic") for a foreign topic, the decoder's WireError for a bad
    payload, and WireError("topic_mismatch") when the payload's site, gateway or event type is
    not the topic's (a gateway publishing under another gateway's name).
    """
    if not isinstance(topic, Topic):
        topic = Topic.parse(topic)
    record = _DECODERS[topic.kind](data)
    if record.site != topic.site:
        raise WireError("topic_mismatch", "site", f"{record.site!r} on a {topic.site!r} topic")
    if isinstance(record, (SightingsBatch, Status)) and record.gw != topic.gw:
        raise WireError("topic_mismatch", "gw", f"{record.gw!r} on a {topic.gw!r} topic")
    if isinstance(record, Event) and record.type != topic.event_type:
        raise WireError("topic_mismatch", "type", f"{record.type!r} on {topic.event_type!r}")
    return record
