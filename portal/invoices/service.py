"""What a debtor sees of their account: always scoped to one customer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

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


def open_invoices(session: Session, scope: Scope) -> list[Invoice]:
    query = scope.apply(select(Invoice)).where(Invoice.status == InvoiceStatus.OPEN)
    return list(session.scalars(query.order_by(Invoice.due_date, Invoice.number)))


def paid_invoices(session: Session, scope: Scope, limit: int = 200) -> list[Invoice]:
    query = scope.apply(select(Invoice)).where(Invoice.status == InvoiceStatus.PAID)
    return list(session.scalars(query.order_by(Invoice.due_date.desc()).limit(limit)))


def all_invoices(session: Session, scope: Scope) -> list[Invoice]:
    query = scope.apply(select(Invoice)).where(Invoice.status != InvoiceStatus.CANCELLED)
    return list(session.scalars(query.order_by(Invoice.issue_date, Invoice.number)))


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


def summarise(invoices: Iterable[Invoice], today: dt.date) -> list[CurrencyTotals]:
    """Totals per currency of open invoices (amounts are never added across currencies)."""
    by_currency: dict[str, list[Invoice]] = {}
    for invoice in invoices:
        if invoice.remaining_minor > 0:
            by_currency.setdefault(invoice.currency, []).append(invoice)
    totals = []
    for currency in sorted(by_currency):
        items = by_currency[currency]
        overdue = [i for i in items if i.due_date < today]
        upcoming = [i.due_date for i in items if i.due_date >= today]
        totals.append(
            CurrencyTotals(
                currency=currency,
                due_minor=sum(i.remaining_minor for i in items),
                overdue_minor=sum(i.remaining_minor for i in overdue),
                open_count=len(items),
                overdue_count=len(overdue),
                next_due_date=min(upcoming) if upcoming else None,
            )
        )
    return totals
