"""The current time, in one place so tests and the demo can set it."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

_frozen: dt.datetime | None = None
_shift = dt.timedelta(0)


def now() -> dt.datetime:
    """The current instant, timezone-aware UTC."""
    return _frozen if _frozen is not None else dt.datetime.now(dt.UTC) + _shift


def today_in(timezone: str) -> dt.date:
    """Today's date for someone living in ``timezone``."""
    return now().astimezone(ZoneInfo(timezone)).date()


def shift(delta: dt.timedelta) -> None:
    """Run the clock ahead (or behind) by ``delta``: the command line in development, to
    see what the engine does days later (``PORTAL_CLOCK_SHIFT_DAYS``)."""
    global _shift
    _shift = delta


def freeze(instant: dt.datetime | None) -> None:
    """Pin the clock (tests, benchmarks); ``None`` lets it run again."""
    global _frozen
    if instant is not None and instant.tzinfo is None:
        raise ValueError("freeze() needs an aware datetime")
    _frozen = instant.astimezone(dt.UTC) if instant is not None else None


def midday_in(day: dt.date, timezone: str) -> dt.datetime:
    """Noon of ``day`` where ``timezone`` is, in UTC: the instant recorded for something
    known only by its date (a cheque received on the 3rd), safely inside that date."""
    return dt.datetime.combine(day, dt.time(12), ZoneInfo(timezone)).astimezone(dt.UTC)
