"""MQTT v1 topics as validated value objects (after aiomqtt's ``topic.py``).

Nothing else in MallSense formats a topic string: publishers call ``Topic.sightings(site, gw)``
and ``str()`` it, subscribers use the ``*_filter`` helpers, consumers ``Topic.parse`` what the
broker hands them.

Topic tree (root ``mallsense/v1/{site}/``)::

    gw/{gateway}/sightings   gateway -> ingest, QoS 1
    gw/{gateway}/status      gateway heartbeat, QoS 1, retained, last will = offline
    events/{type}            journey events out, for real-time consumers
    pos                      point-of-sale transactions in
    deadletter               every rejected input with its reason
"""
from __future__ import annotations

from dataclasses import dataclass

from gateway.wire.codec import ID_RE, short
from gateway.wire.errors import WireError

PREFIX = "mallsense"
MAJOR = "v1"
EVENT_TYPES: tuple[str, ...] = (
    "passby",
    "entry",
    "exit",
    "floor_change",
    "zone_enter",
    "zone_exit",
    "purchase",
)
KINDS: tuple[str, ...] = ("sightings", "status", "event", "pos", "deadletter")
# MQTT 3.1.1 section 4.7.3 / 5.0 section 4.7.3: topic names are at most 65535 bytes; ours are
# far shorter, so anything longer than this is not ours and is not worth splitting.
MAX_TOPIC_LEN = 256


def _check_segment(value: object, field: str) -> str:
    if not isinstance(value, str) or ID_RE.fullmatch(value) is None:
        raise WireError("bad_topic", field, f"{short(value, 70)} is not [A-Za-z0-9_-]{{1,64}}")
    return value


def _filter_segment(value: str | None, field: str) -> str:
    return "+" if value is None else _check_segment(value, field)


@dataclass(frozen=True, slots=True)
class Topic:
    """One concrete v1 topic. ``gw`` is set for sightings/status, ``event_type`` for events."""

    site: str
    kind: str
    gw: str | None = None
    event_type: str | None = None

    def __post_init__(self) -> None:
        _check_segment(self.site, "site")
        if self.kind not in KINDS:
            raise WireError("bad_topic", "kind", f"{short(self.kind)} not one of {', '.join(KINDS)}")
        if self.kind in ("sightings", "status"):
            _check_segment(self.gw, "gw")
        elif self.gw is not None:
            raise WireError("bad_topic", "gw", f"a {self.kind} topic has no gateway")
        if self.kind == "event":
            if self.event_type not in EVENT_TYPES:
                raise WireError(
                    "unknown_event", "event_type", f"{short(self.event_type)} not in {EVENT_TYPES}"
                )
        elif self.event_type is not None:
            raise WireError("bad_topic", "event_type", f"a {self.kind} topic has no event type")

    # -- constructors ------------------------------------------------------------------------
    @classmethod
    def sightings(cls, site: str, gw: str) -> Topic:
        return cls(site, "sightings", gw=gw)

    @classmethod
    def status(cls, site: str, gw: str) -> Topic:
        return cls(site, "status", gw=gw)

    @classmethod
    def event(cls, site: str, type: str) -> Topic:  # noqa: A002 - the wire calls it "type"
        return cls(site, "event", event_type=type)

    @classmethod
    def pos(cls, site: str) -> Topic:
        return cls(site, "pos")

    @classmethod
    def deadletter(cls, site: str) -> Topic:
        return cls(site, "deadletter")

    @classmethod
    def parse(cls, topic: str | bytes) -> Topic:
        """The Topic of a received topic name; WireError("bad_topic") if it is not a v1 topic."""
        if isinstance(topic, (bytes, bytearray)):
            try:
                topic = bytes(topic).decode("utf-8")
            except UnicodeDecodeError:
                raise WireError("bad_topic", "topic", "topic is not UTF-8") from None
        if not isinstance(topic, str):
            raise WireError("bad_topic", "topic", f"expected a string, got {type(topic).__name__}")
        if len(topic) > MAX_TOPIC_LEN:
            raise WireError("bad_topic", "topic", f"{len(topic)} characters > {MAX_TOPIC_LEN}")
        parts = topic.split("/")
        if len(parts) < 4 or parts[0] != PREFIX:
            raise WireError("bad_topic", "topic", f"{topic[:80]!r} is not under {PREFIX}/{MAJOR}/")
        if parts[1] != MAJOR:
            raise WireError("wrong_version", "topic", f"{parts[1][:20]!r} topics are not {MAJOR}")
        site, rest = parts[2], parts[3:]
        if len(rest) == 3 and rest[0] == "gw" and rest[2] in ("sightings", "status"):
            return cls(_check_segment(site, "site"), rest[2], gw=_check_segment(rest[1], "gw"))
        if len(rest) == 2 and rest[0] == "events":
            return cls(_check_segment(site, "site"), "event", event_type=rest[1])
        if len(rest) == 1 and rest[0] in ("pos", "deadletter"):
            return cls(_check_segment(site, "site"), rest[0])
        raise WireError("bad_topic", "topic", f"{topic[:80]!r} is not a v1 topic")

    def __str__(self) -> str:
        root = f"{PREFIX}/{MAJOR}/{self.site}"
        if self.kind in ("sightings", "status"):
            return f"{root}/gw/{self.gw}/{self.kind}"
        if self.kind == "event":
            return f"{root}/events/{self.event_type}"
        return f"{root}/{self.kind}"

    # -- subscription filters (strings: they may hold wildcards, so they are not Topics) -----
    @staticmethod
    def sightings_filter(site: str | None = None) -> str:
        """``mallsense/v1/{site}/gw/+/sightings``; site None means every site (``+``)."""
        return f"{PREFIX}/{MAJOR}/{_filter_segment(site, 'site')}/gw/+/sightings"

    @staticmethod
    def status_filter(site: str | None = None) -> str:
        return f"{PREFIX}/{MAJOR}/{_filter_segment(site, 'site')}/gw/+/status"

    @staticmethod
    def gateway_filter(site: str, gw: str) -> str:
        """Everything one gateway may publish: the ACL pattern ``.../gw/{gw}/#``."""
        return f"{PREFIX}/{MAJOR}/{_check_segment(site, 'site')}/gw/{_check_segment(gw, 'gw')}/#"

    @staticmethod
    def events_filter(site: str | None = None, type: str | None = None) -> str:  # noqa: A002
        if type is not None and type not in EVENT_TYPES:
            raise WireError("unknown_event", "event_type", f"{short(type)} not in {EVENT_TYPES}")
        return f"{PREFIX}/{MAJOR}/{_filter_segment(site, 'site')}/events/{type or '+'}"

    @staticmethod
    def site_filter(site: str | None = None) -> str:
        return f"{PREFIX}/{MAJOR}/{_filter_segment(site, 'site')}/#"

    @staticmethod
    def shared(group: str, topic_filter: str | Topic) -> str:
        """MQTT 5 shared subscription ``$share/{group}/{filter}`` (load-balanced consumers)."""
        return f"$share/{_check_segment(group, 'group')}/{topic_filter}"
