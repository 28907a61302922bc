"""Cash expected week by week over the next 12 weeks, per currency, from three sources:

- **invoices**: what remains on each open invoice, expected on its due date shifted by the
  customer's own average delay (``customer_behaviour.avg_days_late``, 0 when unknown);
- **plans**: the instalments of running plans not yet covered by payments, on their dates;
- **promises**: what remains on the invoices of running promises, on the promised date.

An invoice in a running plan or promise counts only there, never also by its due date.
What is expected before the first week (already late) counts in the first week; what
falls after the twelfth week is reported apart as "later".
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, case, func, literal, select
from sqlalchemy.orm import Session

from portal.cases.models import Case, CaseInvoice, CaseKind, CaseStatus, Instalment
from portal.cockpit.commitments import plan_payments
from portal.cockpit.filters import Filters
from portal.cockpit.models import CustomerBehaviour
from portal.cockpit.sql import day_number, day_of
from portal.invoices.models import Invoice, InvoiceStatus

WEEKS = 12
SOURCES = ("invoices", "plans", "promises")


@dataclasses.dataclass(frozen=True)
class ForecastWeek:
    start: dt.date
    amounts: tuple[int, int, int]  # invoices, plans, promises

    @property
    def total_minor(self) -> int:
        return sum(self.amounts)


@dataclasses.dataclass(frozen=True)
class Forecast:
    currency: str
    weeks: list[ForecastWeek]
    later: tuple[int, int, int]

    @property
    def total_minor(self) -> int:
        return sum(week.total_minor for week in self.weeks)


def first_week(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def _week_index(expected_day: ColumnElement[int], start: int) -> ColumnElement[int]:
    offset = expected_day - start
    return case((offset < 0, 0), (offset >= WEEKS * 7, WEEKS), else_=offset // 7)


def _committed_invoices() -> Any:
    """The invoices of running plans and promises: counted there, not by due date."""
    return (
        select(CaseInvoice.invoice_id)
        .join(Case, Case.id == CaseInvoice.case_id)
        .where(Case.kind.in_((CaseKind.PLAN, CaseKind.PROMISE)), Case.status == CaseStatus.ACTIVE)
    )


def _from_invoices(session: Session, filters: Filters, start: int) -> Sequence[Any]:
    delay = func.coalesce(CustomerBehaviour.avg_days_late, 0)
    week = _week_index(day_number(session, Invoice.due_date) + delay, start)
    return session.execute(
        select(Invoice.currency, week, func.sum(Invoice.amount_minor - Invoice.paid_minor))
        .select_from(Invoice)
        .outerjoin(CustomerBehaviour, CustomerBehaviour.customer_id == Invoice.customer_id)
        .where(
            Invoice.company_id == filters.company_id,
            Invoice.status == InvoiceStatus.OPEN,
            Invoice.amount_minor > Invoice.paid_minor,
            Invoice.id.not_in(_committed_invoices()),
            filters.customers(Invoice.customer_id),
            filters.currencies(Invoice.currency),
        )
        .group_by(Invoice.currency, week)
    ).all()


def _from_plans(session: Session, filters: Filters, start: int) -> Sequence[Any]:
    running = [
        Case.company_id == filters.company_id,
        Case.kind == CaseKind.PLAN,
        Case.status == CaseStatus.ACTIVE,
        filters.customers(Case.customer_id),
        filters.currencies(Case.currency),
    ]
    paid = plan_payments(*running)
    # Payments cover the instalments in order: instalment i keeps what the running total
    # up to it exceeds the payments by, at most its own amount.
    running_total = func.sum(Instalment.amount_minor).over(
        partition_by=Instalment.case_id, order_by=Instalment.seq
    )
    schedule = (
        select(
            Case.currency.label("currency"),
            Instalment.due_date.label("due_date"),
            Instalment.amount_minor.label("amount"),
            (running_total - func.coalesce(paid.c.paid, 0)).label("uncovered"),
        )
        .select_from(Instalment)
        .join(Case, Case.id == Instalment.case_id)
        .outerjoin(paid, paid.c.case_id == Case.id)
        .where(*running)
        .subquery()
    )
    left = case(
        (schedule.c.uncovered <= 0, literal(0)),
        (schedule.c.uncovered >= schedule.c.amount, schedule.c.amount),
        else_=schedule.c.uncovered,
    )
    week = _week_index(day_number(session, schedule.c.due_date), start)
    return session.execute(
        select(schedule.c.currency, week, func.sum(left))
        .where(schedule.c.uncovered > 0)
        .group_by(schedule.c.currency, week)
    ).all()


def _from_promises(session: Session, filters: Filters, start: int) -> Sequence[Any]:
    promise_day = day_number(session, Case.promised_date)
    week = _week_index(promise_day, start)
    return session.execute(
        select(Case.currency, week, func.sum(Invoice.amount_minor - Invoice.paid_minor))
        .select_from(Case)
        .join(CaseInvoice, CaseInvoice.case_id == Case.id)
        .join(Invoice, Invoice.id == CaseInvoice.invoice_id)
        .where(
            Case.company_id == filters.company_id,
            Case.kind == CaseKind.PROMISE,
            Case.status == CaseStatus.ACTIVE,
            Invoice.status == InvoiceStatus.OPEN,
            filters.customers(Case.customer_id),
            filters.currencies(Case.currency),
        )
        .group_by(Case.currency, week)
    ).all()


def forecast(session: Session, filters: Filters) -> list[Forecast]:
    start_date = first_week(filters.as_of)
    start = day_of(start_date)
    cells: dict[str, list[list[int]]] = {}
    for source, rows in enumerate(
        (
            _from_invoices(session, filters, start),
            _from_plans(session, filters, start),
            _from_promises(session, filters, start),
        )
    ):
        for currency, week, amount in rows:
            grid = cells.setdefault(currency, [[0, 0, 0] for _ in range(WEEKS + 1)])
            grid[int(week)][source] += int(amount or 0)
    return [
        Forecast(
            currency,
            [
                ForecastWeek(start_date + dt.timedelta(weeks=n), (g[0], g[1], g[2]))
                for n, g in enumerate(grid[:WEEKS])
            ],
            (grid[WEEKS][0], grid[WEEKS][1], grid[WEEKS][2]),
        )
        for currency, grid in sorted(cells.items())
    ]
