"""Date arithmetic both backends understand, so every figure stays one set-based query.

Dates become day numbers (days since 1970-01-01): bucketing a due date shifted by a
customer's delay, or comparing a payment's day with a reminder's, is then integer
arithmetic, the same on PostgreSQL and SQLite.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ColumnElement, Date, Integer, cast, func, literal, select
from sqlalchemy.orm import Session

EPOCH = dt.date(1970, 1, 1)
_JULIAN_EPOCH = 2440587.5  # julianday('1970-01-01')


def is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def day_number(session: Session, column: Any) -> ColumnElement[int]:
    """Days since 1970-01-01 of a DATE column."""
    if is_sqlite(session):
        return cast(func.julianday(column) - _JULIAN_EPOCH, Integer)
    return column - literal(EPOCH, Date)  # type: ignore[no-any-return]


def utc_day_number(session: Session, column: Any) -> ColumnElement[int]:
    """Days since 1970-01-01 of the UTC day of a timestamp column."""
    if is_sqlite(session):
        return cast(func.julianday(func.date(column)) - _JULIAN_EPOCH, Integer)
    difference: ColumnElement[int] = cast(func.timezone("UTC", column), Date) - literal(EPOCH, Date)  # type: ignore[assignment]
    return difference


def day_of(value: dt.date) -> int:
    return (value - EPOCH).days


def date_of(day: int) -> dt.date:
    return EPOCH + dt.timedelta(days=day)


def utc_midnight_after(day: dt.date) -> dt.datetime:
    """The first instant after ``day`` (UTC): payments received before it count on ``day``."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


def last_payment_days(session: Session, *where: Any) -> Any:
    """A subquery (invoice_id, day): the UTC day of the last payment allocated to each
    paid invoice matching ``where`` (conditions on Invoice): the day it was settled."""
    from portal.invoices.models import Invoice, InvoiceStatus
    from portal.payments.models import Payment, PaymentAllocation

    return (
        select(
            PaymentAllocation.invoice_id.label("invoice_id"),
            func.max(utc_day_number(session, Payment.received_at)).label("day"),
        )
        .join(Payment, Payment.id == PaymentAllocation.payment_id)
        .join(Invoice, Invoice.id == PaymentAllocation.invoice_id)
        .where(Invoice.status == InvoiceStatus.PAID, *where)
        .group_by(PaymentAllocation.invoice_id)
        .subquery()
    )
