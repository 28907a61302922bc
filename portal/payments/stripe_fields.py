"""Reading a verified Stripe event's fields, strictly.

A valid signature says the body came from Stripe, not that it has the shape Relance
expects (an API version change, a hand-made test event, a bug on either side). Every field
a handler uses is read through these helpers: a missing key, a wrong type, a string longer
than its column or a number beyond what Stripe carries raises ``MalformedEvent``, which
the endpoint answers with 400 before anything is stored.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

# Stripe amounts have at most 8 digits (12 for a few currencies): anything larger is not
# an amount, and would not fit the database's BIGINT long before it mattered.
MAX_AMOUNT_MINOR = 10**12
# Unix times Stripe can send: after 2000 and before 2100.
_TIMESTAMPS = (946_684_800, 4_102_444_800)
# Stripe ids are short (pi_..., ch_..., re_..., dp_..., evt_...); columns hold 128.
MAX_ID_LENGTH = 128


class MalformedEvent(ValueError):
    """A validly signed body that is not an event Relance can read."""


def event_object(event: dict[str, Any]) -> dict[str, Any]:
    """``event.data.object``, which every handled event type carries."""
    data = event.get("data")
    if not isinstance(data, dict):
        raise MalformedEvent("data is not an object")
    obj = data.get("object")
    if not isinstance(obj, dict):
        raise MalformedEvent("data.object is not an object")
    return obj


def event_head(event: dict[str, Any]) -> tuple[str, str]:
    """The event's id and type."""
    event_id = ident(event, "id")
    event_type = event.get("type", "")
    if not isinstance(event_type, str):
        raise MalformedEvent("type is not a string")
    return event_id, event_type[:64]


def ident(obj: dict[str, Any], key: str) -> str:
    """A required Stripe id."""
    value = obj.get(key)
    if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH:
        raise MalformedEvent(f"{key} is not an id")
    return value


def optional_ident(obj: dict[str, Any], key: str) -> str | None:
    if obj.get(key) is None:
        return None
    return ident(obj, key)


def text(obj: dict[str, Any], key: str, limit: int = 64) -> str:
    """An optional short string (a status, a code), cut to ``limit``; "" when absent."""
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MalformedEvent(f"{key} is not a string")
    return value[:limit]


def amount(obj: dict[str, Any], key: str, *, required: bool = True) -> int | None:
    """A non-negative amount in minor units (None when absent and not required)."""
    value = obj.get(key)
    if value is None and not required:
        return None
    # bool is an int in Python; JSON's true is not an amount.
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedEvent(f"{key} is not an amount")
    if not 0 <= value <= MAX_AMOUNT_MINOR:
        raise MalformedEvent(f"{key} is out of range")
    return value


def timestamp(obj: dict[str, Any], key: str) -> dt.datetime | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedEvent(f"{key} is not a timestamp")
    if not _TIMESTAMPS[0] <= value <= _TIMESTAMPS[1]:
        raise MalformedEvent(f"{key} is out of range")
    return dt.datetime.fromtimestamp(value, dt.UTC)


def mapping(obj: dict[str, Any], key: str) -> dict[str, Any]:
    """An optional nested object; {} when absent."""
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedEvent(f"{key} is not an object")
    return value


def listing(obj: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """An optional list of objects; [] when absent."""
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise MalformedEvent(f"{key} is not a list of objects")
    return value
