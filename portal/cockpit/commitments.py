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

from sqlalchemy import ColumnElement, case, func, or_, select
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


def _promises(
    session: Session, filters: Filters, week_start: dt.date
) -> tuple[list[tuple[str, int, int]], int, int]:
    week_end = week_start + dt.timedelta(days=6)
    due = session.execute(
        select(Case.currency, func.count(), func.sum(Case.total_minor))
        .where(
            *_scoped(filters, CaseKind.PROMISE),
            Case.status == CaseStatus.ACTIVE,
            Case.promised_date.between(week_start, week_end),
        )
        .group_by(Case.currency)
        .order_by(Case.currency)
    ).all()
    kept, broken = session.execute(
        select(
            func.count().filter(Case.status == CaseStatus.COMPLETED),
            func.count().filter(broken_condition()),
        ).where(
            *_scoped(filters, CaseKind.PROMISE),
            Case.promised_date > filters.as_of - dt.timedelta(days=KEPT_WINDOW_DAYS),
            Case.promised_date <= filters.as_of,
        )
    ).one()
    return [(c, int(n), int(a)) for c, n, a in due], int(kept), int(broken)


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


def _plans(session: Session, filters: Filters) -> tuple[int, int]:
    due = (
        select(Instalment.case_id, func.sum(Instalment.amount_minor).label("due"))
        .where(Instalment.due_date < filters.as_of)
        .group_by(Instalment.case_id)
        .subquery()
    )
    paid = plan_payments(Case.company_id == filters.company_id)
    late = func.coalesce(due.c.due, 0) > func.coalesce(paid.c.paid, 0)
    on_track, behind = session.execute(
        select(
            func.count().filter(~late),
            func.count().filter(late),
        )
        .select_from(Case)
        .outerjoin(due, due.c.case_id == Case.id)
        .outerjoin(paid, paid.c.case_id == Case.id)
        .where(*_scoped(filters, CaseKind.PLAN), Case.status == CaseStatus.ACTIVE)
    ).one()
    return int(on_track), int(behind)


def _disputes(session: Session, filters: Filters, now: dt.datetime) -> list[tuple[str, str, int]]:
    age = case(
        *[(Case.created_at > now - dt.timedelta(days=days), label) for days, label in DISPUTE_AGES],
        else_="over_30",
    )
    rows = session.execute(
        select(Case.reason, age, func.count())
        .where(*_scoped(filters, CaseKind.DISPUTE), Case.status == CaseStatus.OPEN)
        .group_by(Case.reason, age)
    ).all()
    return sorted((str(reason or "other"), str(bucket), int(n)) for reason, bucket, n in rows)


def commitments(session: Session, filters: Filters) -> Commitments:
    week_start = filters.as_of - dt.timedelta(days=filters.as_of.weekday())
    due, kept, broken = _promises(session, filters, week_start)
    on_track, late = _plans(session, filters)
    end_of_day = dt.datetime.combine(filters.as_of, dt.time(23, 59, 59), tzinfo=dt.UTC)
    return Commitments(
        week_start, due, kept, broken, on_track, late, _disputes(session, filters, end_of_day)
    )
