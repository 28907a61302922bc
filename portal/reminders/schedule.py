"""When a message may leave: business days and hours in the customer's timezone."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import holidays

MAX_DAYS_AHEAD = 30


@lru_cache(maxsize=64)
def _country_holidays(country: str, year: int) -> Any:
    return holidays.country_holidays(country, years=year)


@dataclass(frozen=True)
class BusinessCalendar:
    country: str
    from_hour: int = 9
    until_hour: int = 18

    def is_business_day(self, day: dt.date) -> bool:
        return day.weekday() < 5 and day not in _country_holidays(self.country, day.year)

    def next_send_time(self, after: dt.datetime, timezone: str) -> dt.datetime:
        """The first instant at or after ``after`` inside business hours of a business day,
        in ``timezone``; returned in UTC. Wall-clock hours hold across daylight-saving
        changes (9:00 stays 9:00 local)."""
        zone = ZoneInfo(timezone)
        local = after.astimezone(zone)
        day = local.date()
        for _ in range(MAX_DAYS_AHEAD):
            if self.is_business_day(day):
                opens = _local_instant(day, self.from_hour, zone)
                closes = _local_instant(day, self.until_hour, zone)
                if after < closes:
                    return max(after, opens).astimezone(dt.UTC)
            day += dt.timedelta(days=1)
        raise ValueError(f"no business day within {MAX_DAYS_AHEAD} days of {day}")


def _local_instant(day: dt.date, hour: int, zone: ZoneInfo) -> dt.datetime:
    if hour >= 24:
        return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
    # A wall time skipped by a daylight-saving jump maps to the instant just after it.
    naive = dt.datetime.combine(day, dt.time(hour), tzinfo=zone)
    return naive.astimezone(dt.UTC).astimezone(zone)
