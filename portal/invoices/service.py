"""What a debtor sees of their account: always scoped to one customer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from portal.invoices.models import Invoice, InvoiceStatus


@dataclass(frozen=True)
class Scope:
    """One customer's invoices, optionally narrowed to a link's invoices."""

    customer_id: int
    invoice_ids: frozenset[int] | None = None

    def apply(self, query: Select[Invoice]) -> Select[Invoice]:
        query = query.where(Invoice.customer_id == self.customer_id)
        if self.invoice_ids is not None:
            query = query.where(Invoice.id.in_(sorted(self.invoice_ids)))
        return query


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    """An invoice as lists and statements show it: plain values, read without the ORM's
    bookkeeping (the portal's pages render many of these on every view)."""

    id: int
    number: str
    issue_date: dt.date
    due_date: dt.date
    currency: str
    amount_minor: int
    paid_minor: int
    status: InvoiceStatus
    transfer_pending_until: dt.date | None = None
    # The live case the invoice is in (a dispute, a plan, a promise), when the query that
    # read the line asked (access.service's home-page query): its kind and promised date.
    hold_loaded: bool = field(default=False, compare=False)
    hold_kind: Any = field(default=None, compare=False)
    hold_promised_date: dt.date | None = field(default=None, compare=False)

    def payment_pending(self, today: dt.date) -> bool:
        return self.transfer_pending_until is not None and self.transfer_pending_until >= today

    @property
    def remaining_minor(self) -> int:
        if self.status is InvoiceStatus.CANCELLED:
            return 0
        return max(self.amount_minor - self.paid_minor, 0)

    def days_overdue(self, today: dt.date) -> int:
        if self.remaining_minor == 0:
            return 0
        return max((today - self.due_date).days, 0)


LINE_COLUMNS = (
    Invoice.id,
    Invoice.number,
    Invoice.issue_date,
    Invoice.due_date,
    Invoice.currency,
    Invoice.amount_minor,
    Invoice.paid_minor,
    Invoice.status,
    Invoice.transfer_pending_until,
)
# The same, as the table's plain columns: a statement made only of these skips the ORM's
# compilation and row processing, where a page needs nothing but values.
LINE_TABLE_COLUMNS = tuple(Invoice.__table__.c[column.key] for column in LINE_COLUMNS)


def _lines(
    session: Session, scope: Scope, *conditions: Any, order: Any, limit: int | None = None
) -> list[InvoiceLine]:
    query = select(*LINE_COLUMNS).where(Invoice.customer_id == scope.customer_id, *conditions)
    if scope.invoice_ids is not None:
        query = query.where(Invoice.id.in_(sorted(scope.invoice_ids)))
    query = query.order_by(*order)
    if limit is not None:
        query = query.limit(limit)
    return [InvoiceLine(*row) for row in session.execute(query)]


def open_invoices(session: Session, scope: Scope) -> list[InvoiceLine]:
    return _lines(
        session,
        scope,
        Invoice.status == InvoiceStatus.OPEN,
        order=(Invoice.due_date, Invoice.number),
    )


def paid_invoices(session: Session, scope: Scope, limit: int = 200) -> list[InvoiceLine]:
    return _lines(
        session,
        scope,
        Invoice.status == InvoiceStatus.PAID,
        order=(Invoice.due_date.desc(), Invoice.number),
        limit=limit,
    )


def all_invoices(session: Session, scope: Scope) -> list[InvoiceLine]:
    return _lines(
        session,
        scope,
        Invoice.status != InvoiceStatus.CANCELLED,
        order=(Invoice.issue_date, Invoice.number),
    )


def ids_by_number(
    session: Session,
    numbers: Iterable[str],
    *,
    customer_id: int | None = None,
    company_id: int | None = None,
) -> dict[str, int]:
    """The ids of the invoices carrying ``numbers``, among one customer's (``customer_id``)
    or one company's (``company_id``); numbers without an invoice are simply absent."""
    wanted = list(dict.fromkeys(numbers))
    if not wanted:
        return {}
    owner = Invoice.customer_id == customer_id if customer_id is not None else None
    if owner is None:
        assert company_id is not None, "name the customer or the company"
        owner = Invoice.company_id == company_id
    query = select(Invoice.number, Invoice.id).where(owner, Invoice.number.in_(wanted))
    return {number: invoice_id for number, invoice_id in session.execute(query)}  # noqa: C416 - each Row unpacked to a typed pair


def get_invoice(session: Session, scope: Scope, invoice_id: int) -> Invoice | None:
    """The invoice if this scope may see it; None otherwise (shown as 404)."""
    return session.scalar(scope.apply(select(Invoice)).where(Invoice.id == invoice_id))


@dataclass(frozen=True)
class CurrencyTotals:
    currency: str
    due_minor: int
    overdue_minor: int
    open_count: int
    overdue_count: int
    next_due_date: dt.date | None
    # Of the total due, what waits on the debtor's own requests (disputes, plans,
    # promises, transfers declared): not to be paid again now.
    on_hold_minor: int = 0
    on_hold_count: int = 0


def summarise(
    invoices: Iterable[InvoiceLine | Invoice],
    today: dt.date,
    on_hold_ids: Collection[int] = (),
) -> list[CurrencyTotals]:
    """Totals per currency of open invoices (amounts are never added across currencies)."""
    by_currency: dict[str, list[InvoiceLine | Invoice]] = {}
    for invoice in invoices:
        if invoice.remaining_minor > 0:
            by_currency.setdefault(invoice.currency, []).append(invoice)
    totals = []
    for currency in sorted(by_currency):
        items = by_currency[currency]
        overdue = [i for i in items if i.due_date < today]
        upcoming = [i.due_date for i in items if i.due_date >= today]
        held = [i for i in items if i.id in on_hold_ids]
        totals.append(
            CurrencyTotals(
                currency=currency,
                due_minor=sum(i.remaining_minor for i in items),
                overdue_minor=sum(i.remaining_minor for i in overdue),
                open_count=len(items),
                overdue_count=len(overdue),
                next_due_date=min(upcoming) if upcoming else None,
                on_hold_minor=sum(i.remaining_minor for i in held),
                on_hold_count=len(held),
            )
        )
    return totals
