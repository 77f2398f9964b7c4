"""Topic value objects: construction, parsing, filters."""
from __future__ import annotations

import pytest

from gateway.wire import EVENT_TYPES, Topic, WireError

CASES = [
    (Topic.sightings("mall-1", "gw-01"), "mallsense/v1/mall-1/gw/gw-01/sightings"),
    (Topic.status("mall-1", "gw_02"), "mallsense/v1/mall-1/gw/gw_02/status"),
    (Topic.event("M1", "zone_exit"), "mallsense/v1/M1/events/zone_exit"),
    (Topic.pos("m"), "mallsense/v1/m/pos"),
    (Topic.deadletter("m"), "mallsense/v1/m/deadletter"),
]


@pytest.mark.parametrize("topic,text", CASES)
def test_str_and_parse_round_trip(topic, text):
    assert str(topic) == text
    assert Topic.parse(text) == topic
    assert Topic.parse(text.encode()) == topic


def test_parse_fields():
    t = Topic.parse("mallsense/v1/mall-1/gw/gw-01/sightings")
    assert (t.site, t.kind, t.gw, t.event_type) == ("mall-1", "sightings", "gw-01", None)
    e = Topic.parse("mallsense/v1/mall-1/events/purchase")
    assert (e.site, e.kind, e.gw, e.event_type) == ("mall-1", "event", None, "purchase")


def test_every_event_type_has_a_topic():
    assert [Topic.event("m", t).event_type for t in EVENT_TYPES] == list(EVENT_TYPES)


@pytest.mark.parametrize(
    "text,reason",
    [
        ("", "bad_topic"),
        ("mallsense/v1/m", "bad_topic"),
        ("other/v1/m/pos", "bad_topic"),
        ("mallsense/v2/m/pos", "wrong_version"),
        ("mallsense/v1/m/gw/g/sightings/extra", "bad_topic"),
        ("mallsense/v1/m/gw/g/unknown", "bad_topic"),
        ("mallsense/v1/m/gw/+/sightings", "bad_topic"),
        ("mallsense/v1/#/pos", "bad_topic"),
        ("mallsense/v1//pos", "bad_topic"),
        ("mallsense/v1/m/gw//status", "bad_topic"),
        ("mallsense/v1/m/pos/", "bad_topic"),
        ("/mallsense/v1/m/pos", "bad_topic"),
        ("mallsense/v1/m/events/teleport", "unknown_event"),
        ("mallsense/v1/" + "a" * 65 + "/pos", "bad_topic"),
        ("mallsense/v1/m\u00e4ll/pos", "bad_topic"),
        ("mallsense/v1/m/pos" + "/x" * 200, "bad_topic"),
        (b"mallsense/v1/\xff/pos", "bad_topic"),
        (None, "bad_topic"),
    ],
)
def test_parse_rejects(text, reason):
    with pytest.raises(WireError) as info:
        Topic.parse(text)
    assert info.value.reason == reason


@pytest.mark.parametrize(
    "make",
    [
        lambda: Topic.sightings("m/x", "g"),
        lambda: Topic.sightings("m", "+"),
        lambda: Topic.status("m", None),
        lambda: Topic.pos(""),
        lambda: Topic("m", "pos", gw="g"),
        lambda: Topic("m", "deadletter", event_type="entry"),
        lambda: Topic("m", "weather"),
        lambda: Topic.event("m", "x"),
    ],
)
def test_construction_validates(make):
    with pytest.raises(WireError) as info:
        make()
    assert info.value.reason in ("bad_topic", "unknown_event")


def test_filters():
    assert Topic.sightings_filter("mall-1") == "mallsense/v1/mall-1/gw/+/sightings"
    assert Topic.sightings_filter() == "mallsense/v1/+/gw/+/sightings"
    assert Topic.status_filter("m") == "mallsense/v1/m/gw/+/status"
    assert Topic.events_filter("m") == "mallsense/v1/m/events/+"
    assert Topic.events_filter("m", "entry") == "mallsense/v1/m/events/entry"
    assert Topic.site_filter("m") == "mallsense/v1/m/#"
    assert Topic.gateway_filter("m", "g1") == "mallsense/v1/m/gw/g1/#"
    assert Topic.shared("ingest", Topic.sightings_filter("m")) == (
        "$share/ingest/mallsense/v1/m/gw/+/sightings"
    )
    assert Topic.shared("dl", Topic.deadletter("m")) == "$share/dl/mallsense/v1/m/deadletter"


@pytest.mark.parametrize(
    "make",
    [
        lambda: Topic.sightings_filter("#"),
        lambda: Topic.status_filter("a/b"),
        lambda: Topic.events_filter("m", "nope"),
        lambda: Topic.gateway_filter("m", "+"),
        lambda: Topic.shared("a/b", "x"),
    ],
)
def test_filters_reject_wildcards_in_ids(make):
    with pytest.raises(WireError):
        make()


def test_topics_are_hashable_values():
    assert len({Topic.pos("m"), Topic.parse("mallsense/v1/m/pos")}) == 1
    with pytest.raises(AttributeError):
        Topic.pos("m").site = "x"  # type: ignore[misc]
