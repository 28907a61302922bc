"""The aging balance: what was owed on a day, by how late it was, per currency.

An invoice counts from its issue date; what remained on it on day D is its amount less
the allocations of payments received by the end of D (UTC). From today on that is
``amount - paid_minor``, kept by the payments service, so today's aging reads one table.
Cancelled invoices never count (their cancellation date is not kept). Buckets by days
past the due date on D: not yet due (due on D or later), 1-30, 31-60, 61-90, over 90.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from portal import clock
from portal.cockpit.filters import Filters
from portal.cockpit.sql import utc_midnight_after
from portal.invoices.models import Invoice, InvoiceStatus
from portal.payments.models import Payment, PaymentAllocation

BUCKETS = ("not_due", "1_30", "31_60", "61_90", "over_90")
BOUNDS = (0, 30, 60, 90)  # days past due that close each bucket but the last


@dataclasses.dataclass(frozen=True)
class AgingRow:
    currency: str
    amounts: tuple[int, ...]  # minor units per bucket, in BUCKETS order
    counts: tuple[int, ...]  # invoices with something left, per bucket

    @property
    def total_minor(self) -> int:
        return sum(self.amounts)

    @property
    def overdue_minor(self) -> int:
        return sum(self.amounts[1:])

    @property
    def overdue_count(self) -> int:
        return sum(self.counts[1:])


def bucket_of(as_of: dt.date, due_date: dt.date) -> int:
    """The bucket index of an invoice due on ``due_date``, seen on ``as_of`` (pure)."""
    late = (as_of - due_date).days
    for index, bound in enumerate(BOUNDS):
        if late <= bound:
            return index
    return len(BOUNDS)


def _bucket_expression(as_of: dt.date) -> ColumnElement[int]:
    whens = [
        (Invoice.due_date >= as_of - dt.timedelta(days=bound), index)
        for index, bound in enumerate(BOUNDS)
    ]
    return case(*whens, else_=len(BOUNDS)).label("bucket")


def remaining_expression(session: Session, as_of: dt.date) -> tuple[ColumnElement[int], Any]:
    """What remained on each invoice at the end of ``as_of``, and the FROM clause to use."""
    if as_of >= clock.today_in("UTC"):
        remaining: ColumnElement[int] = case(
            (Invoice.status == InvoiceStatus.OPEN, Invoice.amount_minor - Invoice.paid_minor),
            else_=0,
        )
        return remaining, Invoice
    paid = (
        select(
            PaymentAllocation.invoice_id.label("invoice_id"),
            func.sum(PaymentAllocation.amount_minor).label("paid"),
        )
        .join(Payment, Payment.id == PaymentAllocation.payment_id)
        .where(Payment.received_at < utc_midnight_after(as_of))
        .group_by(PaymentAllocation.invoice_id)
        .subquery()
    )
    remaining = Invoice.amount_minor - func.coalesce(paid.c.paid, 0)
    return remaining, Invoice.__table__.outerjoin(paid, paid.c.invoice_id == Invoice.id)


def aging(session: Session, filters: Filters) -> list[AgingRow]:
    """One row per currency with something owed on ``filters.as_of``."""
    as_of = filters.as_of
    remaining, source = remaining_expression(session, as_of)
    owed = (
        select(
            Invoice.currency.label("currency"), _bucket_expression(as_of), remaining.label("left")
        )
        .select_from(source)
        .where(
            Invoice.company_id == filters.company_id,
            Invoice.status != InvoiceStatus.CANCELLED,
            Invoice.issue_date <= as_of,
            filters.customers(Invoice.customer_id),
            filters.currencies(Invoice.currency),
        )
        .subquery()
    )
    rows = session.execute(
        select(
            owed.c.currency,
            owed.c.bucket,
            func.sum(owed.c.left),
            func.count(),
        )
        .where(owed.c.left > 0)
        .group_by(owed.c.currency, owed.c.bucket)
    ).all()
    return rows_from(rows)


def rows_from(rows: Any) -> list[AgingRow]:
    """(currency, bucket, amount, count) tuples into one AgingRow per currency."""
    amounts: dict[str, list[int]] = {}
    counts: dict[str, list[int]] = {}
    for currency, bucket, amount, count in rows:
        amounts.setdefault(currency, [0] * len(BUCKETS))[int(bucket)] += int(amount)
        counts.setdefault(currency, [0] * len(BUCKETS))[int(bucket)] += int(count)
    return [
        AgingRow(currency, tuple(amounts[currency]), tuple(counts[currency]))
        for currency in sorted(amounts)
    ]
