"""The one error the wire contract raises, and its stable reason codes.

Reason codes are part of the public contract: dead letters carry them, dashboards count them,
so a code is never renamed within v1. The list with meanings is in docs/wire-v1.md.
"""
from __future__ import annotations

from gateway.errors import GatewayError

REASONS: frozenset[str] = frozenset(
    {
        "oversize",  # payload longer than MAX_PAYLOAD_BYTES (checked before parsing)
        "bad_json",  # not UTF-8, not JSON, NaN/Infinity, too deeply nested, absurd integer
        "not_object",  # top-level JSON value is not an object
        "wrong_version",  # "v" is not 1 (or the topic is not mallsense/v1/...)
        "missing_field",  # a required key is absent
        "wrong_type",  # a value has the wrong JSON type (true is not a number)
        "bad_id",  # an identifier or token does not match its pattern / length
        "bad_value",  # a string value outside its vocabulary or syntax (state, currency, base64)
        "too_long",  # a free-text or binary field exceeds its bound
        "out_of_range",  # a number outside its documented range, or not finite
        "rssi_range",  # RSSI outside -120..0 dBm
        "window_range",  # window_s outside (0, 60] s
        "too_many_sightings",  # more than MAX_SIGHTINGS sightings in one batch
        "unknown_kind",  # radio kind other than "ble" / "wifi"
        "unknown_event",  # journey event type outside EVENT_TYPES
        "unexpected_field",  # an event field that its type does not allow (encoder side)
        "bad_topic",  # topic string is not one of the v1 topics
        "topic_mismatch",  # payload site/gw/type disagrees with the topic it came on
    }
)


class WireError(GatewayError):
    """A payload or topic that breaks the v1 contract.

    ``reason`` is a short stable code from :data:`REASONS`, ``field`` the path of the offending
    value (``"s[3].rssi"``) or None, ``detail`` a human sentence.
    """

    def __init__(self, reason: str, field: str | None = None, detail: str = "") -> None:
        super().__init__(reason, field, detail)
        self.reason = reason
        self.field = field
        self.detail = detail

    def within(self, prefix: str) -> WireError:
        """The same error with ``prefix`` prepended to its field path."""
        field = prefix if not self.field else f"{prefix}.{self.field}"
        return WireError(self.reason, field, self.detail)

    def __str__(self) -> str:
        where = f" at {self.field}" if self.field else ""
        return f"{self.reason}{where}: {self.detail}" if self.detail else f"{self.reason}{where}"
