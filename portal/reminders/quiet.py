"""Quiet periods: yearly date ranges without reminders ("08-01..08-31", "12-24..12-31")."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


class QuietPeriodError(ValueError):
    """A quiet period is not "MM-DD..MM-DD"; the message says which."""


@dataclass(frozen=True)
class QuietPeriod:
    start: tuple[int, int]  # (month, day)
    end: tuple[int, int]  # inclusive; before start: the period crosses the new year

    def contains(self, day: dt.date) -> bool:
        key = (day.month, day.day)
        if self.start <= self.end:
            return self.start <= key <= self.end
        return key >= self.start or key <= self.end

    def __str__(self) -> str:
        return f"{self.start[0]:02d}-{self.start[1]:02d}..{self.end[0]:02d}-{self.end[1]:02d}"


def _month_day(text: str, whole: str) -> tuple[int, int]:
    try:
        month, day = (int(part) for part in text.strip().split("-"))
        dt.date(2024, month, day)  # a leap year: 02-29 is a valid bound
    except ValueError:
        raise QuietPeriodError(f"{whole!r} is not MM-DD..MM-DD") from None
    return month, day


def parse_quiet_periods(text: str) -> tuple[QuietPeriod, ...]:
    periods = []
    for part in text.replace("\n", ",").split(","):
        if not part.strip():
            continue
        start, separator, end = part.partition("..")
        if not separator:
            raise QuietPeriodError(f"{part.strip()!r} is not MM-DD..MM-DD")
        periods.append(QuietPeriod(_month_day(start, part.strip()), _month_day(end, part.strip())))
    return tuple(periods)


def is_quiet(periods: tuple[QuietPeriod, ...], day: dt.date) -> bool:
    return any(period.contains(day) for period in periods)


def first_day_after(periods: tuple[QuietPeriod, ...], day: dt.date) -> dt.date:
    """The first day from ``day`` on that no quiet period covers (periods may chain)."""
    for _ in range(367):
        if not is_quiet(periods, day):
            return day
        day += dt.timedelta(days=1)
    return day  # every day of the year is quiet: the caller's freeze, in effect
