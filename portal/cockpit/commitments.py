"""What customers committed to: promises, payment plans, and the disputes still open.

- Promises due this week: active promises whose date falls in the week (Monday to Sunday)
  of the day seen from. The share kept is over the promises whose date fell in the 90
  days before that day and that ended: kept (completed) against broken.
- Plans running: on track when the payments since the plan was accepted cover every
  instalment due before that day, late otherwise (the same rule as the plan's page).
- Open disputes, by reason and by age (days since they were opened).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    String,
    case,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from portal.cases.models import Case, CaseInvoice, CaseKind, CaseStatus, Instalment
from portal.cockpit.filters import Filters
from portal.payments.models import Payment, PaymentAllocation

KEPT_WINDOW_DAYS = 90
DISPUTE_AGES = ((7, "0_7"), (30, "8_30"))  # then "over_30"
AGE_LABELS = ("0_7", "8_30", "over_30")


@dataclasses.dataclass(frozen=True)
class Commitments:
    week_start: dt.date
    promises_due: list[tuple[str, int, int]]  # currency, count, amount due this week
    promises_kept: int
    promises_broken: int
    plans_on_track: int
    plans_late: int
    disputes: list[tuple[str, str, int]]  # reason, age bucket, count

    @property
    def kept_percent(self) -> int | None:
        ended = self.promises_kept + self.promises_broken
        return round(100 * self.promises_kept / ended) if ended else None

    def disputes_by_reason(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for reason, _age, count in self.disputes:
            totals[reason] = totals.get(reason, 0) + count
        return totals

    def disputes_by_age(self) -> dict[str, int]:
        totals = dict.fromkeys(AGE_LABELS, 0)
        for _reason, age, count in self.disputes:
            totals[age] += count
        return totals


def _scoped(filters: Filters, kind: CaseKind) -> list[ColumnElement[bool]]:
    return [
        Case.company_id == filters.company_id,
        Case.kind == kind,
        filters.customers(Case.customer_id),
        filters.currencies(Case.currency),
    ]


def broken_condition() -> ColumnElement[bool]:
    return or_(Case.status == CaseStatus.BROKEN, Case.resolution == CaseStatus.BROKEN.value)


def plan_payments(*where: ColumnElement[bool]) -> Any:
    """A subquery (case_id, paid): what was paid on each running plan's invoices since
    the plan was accepted (it covers the instalments in order)."""
    return (
        select(CaseInvoice.case_id, func.sum(PaymentAllocation.amount_minor).label("paid"))
        .join(Case, Case.id == CaseInvoice.case_id)
        .join(PaymentAllocation, PaymentAllocation.invoice_id == CaseInvoice.invoice_id)
        .join(Payment, Payment.id == PaymentAllocation.payment_id)
        .where(
            Case.kind == CaseKind.PLAN,
            Case.status == CaseStatus.ACTIVE,
            Payment.received_at >= Case.accepted_at,
            *where,
        )
        .group_by(CaseInvoice.case_id)
        .subquery()
    )


def _label(value: str) -> ColumnElement[str]:
    return literal(value, String(16))


def _promise_rows(filters: Filters, week_start: dt.date) -> list[Select[Any]]:
    due = (
        select(
            _label("due"),
            Case.currency,
            _label(""),
            func.count(),
            func.sum(Case.total_minor),
        )
        .where(
            *_scoped(filters, CaseKind.PROMISE),
            Case.status == CaseStatus.ACTIVE,
            Case.promised_date.between(week_start, week_start + dt.timedelta(days=6)),
        )
        .group_by(Case.currency)
    )
    outcome = case((Case.status == CaseStatus.COMPLETED, "kept"), else_="broken")
    ended = (
        select(_label("ended"), outcome, _label(""), func.count(), literal(0, BigInteger))
        .where(
            *_scoped(filters, CaseKind.PROMISE),
            Case.promised_date > filters.as_of - dt.timedelta(days=KEPT_WINDOW_DAYS),
            Case.promised_date <= filters.as_of,
            (Case.status == CaseStatus.COMPLETED) | broken_condition(),
        )
        .group_by(outcome)
    )
    return [due, ended]


def _plan_rows(filters: Filters) -> Select[Any]:
    due = (
        select(Instalment.case_id, func.sum(Instalment.amount_minor).label("due"))
        .where(Instalment.due_date < filters.as_of)
        .group_by(Instalment.case_id)
        .subquery()
    )
    paid = plan_payments(Case.company_id == filters.company_id)
    state = case(
        (func.coalesce(due.c.due, 0) > func.coalesce(paid.c.paid, 0), "late"), else_="on_track"
    )
    return (
        select(_label("plan"), state, _label(""), func.count(), literal(0, BigInteger))
        .select_from(Case)
        .outerjoin(due, due.c.case_id == Case.id)
        .outerjoin(paid, paid.c.case_id == Case.id)
        .where(*_scoped(filters, CaseKind.PLAN), Case.status == CaseStatus.ACTIVE)
        .group_by(state)
    )


def _dispute_rows(filters: Filters, now: dt.datetime) -> Select[Any]:
    age = case(
        *[(Case.created_at > now - dt.timedelta(days=days), label) for days, label in DISPUTE_AGES],
        else_="over_30",
    )
    reason = func.coalesce(Case.reason, "other")
    return (
        select(_label("dispute"), reason, age, func.count(), literal(0, BigInteger))
        .where(*_scoped(filters, CaseKind.DISPUTE), Case.status == CaseStatus.OPEN)
        .group_by(reason, age)
    )


def commitments(session: Session, filters: Filters) -> Commitments:
    """Every figure of the panel in one statement (a UNION ALL of small grouped queries)."""
    week_start = filters.as_of - dt.timedelta(days=filters.as_of.weekday())
    end_of_day = dt.datetime.combine(filters.as_of, dt.time(23, 59, 59), tzinfo=dt.UTC)
    parts = [
        *_promise_rows(filters, week_start),
        _plan_rows(filters),
        _dispute_rows(filters, end_of_day),
    ]
    due: list[tuple[str, int, int]] = []
    counts: dict[str, int] = {}
    disputes: list[tuple[str, str, int]] = []
    for figure, key, key2, n, amount in session.execute(union_all(*parts)).all():
        if figure == "due":
            due.append((str(key), int(n), int(amount or 0)))
        elif figure == "dispute":
            disputes.append((str(key), str(key2), int(n)))
        else:
            counts[str(key)] = int(n)
    return Commitments(
        week_start,
        sorted(due),
        counts.get("kept", 0),
        counts.get("broken", 0),
        counts.get("on_track", 0),
        counts.get("late", 0),
        sorted(disputes),
    )
