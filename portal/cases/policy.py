"""Payment plan schedules and the company's policy on them: pure functions, no database."""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

from portal.settings import CaseSettings

# A schedule longer than this is refused outright, whatever the policy (it is a form field).
HARD_MAX_INSTALMENTS = 60


class PlanError(ValueError):
    """A plan request that cannot even be evaluated; ``key`` says why."""

    COUNT_INVALID = "count_invalid"
    MONTHLY_INVALID = "monthly_invalid"
    FIRST_DATE_INVALID = "first_date_invalid"
    FIRST_DATE_PAST = "first_date_past"
    NOTHING_TO_PLAN = "nothing_to_plan"

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass(frozen=True)
class ScheduledInstalment:
    seq: int
    due_date: dt.date
    amount_minor: int


@dataclass(frozen=True)
class Verdict:
    """What the policy says of a schedule: accepted at once when ``violations`` is empty."""

    violations: tuple[str, ...]

    @property
    def within_policy(self) -> bool:
        return not self.violations


# Violation keys (the web layer translates them).
TOO_MANY_INSTALMENTS = "too_many_instalments"
TOO_LONG = "too_long"
INSTALMENT_TOO_SMALL = "instalment_too_small"
TOTAL_TOO_HIGH = "total_too_high"
RISK_NOT_ALLOWED = "risk_not_allowed"
CURRENCY_NOT_ALLOWED = "currency_not_allowed"


def add_months(start: dt.date, months: int) -> dt.date:
    """The same day ``months`` later, or the month's last day when it is shorter."""
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return dt.date(year, month, day)


def split_evenly(total_minor: int, count: int) -> list[int]:
    """``count`` amounts adding up to ``total_minor``, the cents left over on the first ones."""
    base, rest = divmod(total_minor, count)
    return [base + (1 if i < rest else 0) for i in range(count)]


def build_schedule(
    total_minor: int,
    first_date: dt.date,
    today: dt.date,
    *,
    count: int | None = None,
    monthly_minor: int | None = None,
) -> list[ScheduledInstalment]:
    """Monthly instalments from ``first_date``: ``count`` equal ones, or of ``monthly_minor``.

    The amounts always add up to ``total_minor`` exactly.
    """
    if total_minor <= 0:
        raise PlanError(PlanError.NOTHING_TO_PLAN)
    if first_date < today:
        raise PlanError(PlanError.FIRST_DATE_PAST)
    if count is not None:
        if not 1 <= count <= HARD_MAX_INSTALMENTS:
            raise PlanError(PlanError.COUNT_INVALID)
        amounts = split_evenly(total_minor, count)
    elif monthly_minor is not None:
        if monthly_minor <= 0:
            raise PlanError(PlanError.MONTHLY_INVALID)
        full, rest = divmod(total_minor, monthly_minor)
        amounts = [monthly_minor] * full + ([rest] if rest else [])
        if len(amounts) > HARD_MAX_INSTALMENTS:
            raise PlanError(PlanError.MONTHLY_INVALID)
    else:
        raise PlanError(PlanError.COUNT_INVALID)
    return [
        ScheduledInstalment(seq=i + 1, due_date=add_months(first_date, i), amount_minor=amount)
        for i, amount in enumerate(amounts)
    ]


def evaluate(
    schedule: list[ScheduledInstalment],
    *,
    total_minor: int,
    currency: str,
    risk_segment: str,
    today: dt.date,
    policy: CaseSettings,
    company_currency: str,
) -> Verdict:
    """Every way the schedule leaves the company's policy (none: accept it at once)."""
    violations: list[str] = []
    if len(schedule) > policy.plan_max_instalments:
        violations.append(TOO_MANY_INSTALMENTS)
    if schedule and (schedule[-1].due_date - today).days > policy.plan_max_days:
        violations.append(TOO_LONG)
    # The last instalment may be a remainder: only the regular ones must reach the minimum.
    regular = schedule[:-1] if len(schedule) > 1 else schedule
    if any(item.amount_minor < policy.plan_min_instalment_minor for item in regular):
        violations.append(INSTALMENT_TOO_SMALL)
    if currency != company_currency:
        violations.append(CURRENCY_NOT_ALLOWED)
    elif total_minor > policy.plan_max_total_minor:
        violations.append(TOTAL_TOO_HIGH)
    if risk_segment not in policy.plan_risk_segments:
        violations.append(RISK_NOT_ALLOWED)
    return Verdict(tuple(violations))


@dataclass(frozen=True)
class InstalmentState:
    """An instalment and how much of it the payments so far cover."""

    seq: int
    due_date: dt.date
    amount_minor: int
    covered_minor: int

    @property
    def paid(self) -> bool:
        return self.covered_minor >= self.amount_minor

    @property
    def remaining_minor(self) -> int:
        return self.amount_minor - self.covered_minor

    def status(self, today: dt.date) -> str:
        if self.paid:
            return "paid"
        if self.due_date < today:
            return "overdue"
        if self.covered_minor:
            return "partly_paid"
        return "due" if self.due_date == today else "upcoming"


def cover(instalments: list[tuple[int, dt.date, int]], paid_minor: int) -> list[InstalmentState]:
    """Spread what was paid over the instalments in order: the first ones are covered first."""
    states = []
    left = max(paid_minor, 0)
    for seq, due_date, amount in sorted(instalments):
        part = min(left, amount)
        left -= part
        states.append(InstalmentState(seq, due_date, amount, part))
    return states


def first_missed(states: list[InstalmentState], today: dt.date, grace_days: int) -> int | None:
    """The first instalment still unpaid once its grace period is over, if any."""
    for state in states:
        if not state.paid and state.due_date + dt.timedelta(days=grace_days) < today:
            return state.seq
    return None
