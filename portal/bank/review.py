"""The review queue, "Bank lines to match": the lines the matcher could not settle alone,
with ranked suggestions, and the credit manager's three answers: match to one or several
invoices, split between invoices, or "not a customer payment"."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import clock
from portal.bank.models import BankLine, LineStatus
from portal.bank.payments import LineRef, LineWrites, confirm_request, record_parts
from portal.customers.models import Customer
from portal.invoices.models import Invoice, InvoiceStatus
from portal.payments.models import PaymentRequest, PaymentRequestStatus
from portal.payments.requests import PaymentRequestError
from portal.timeline.models import Actor


class ReviewError(Exception):
    """The answer cannot be applied; ``key`` says why (the web layer words it)."""

    ALREADY_HANDLED = "already_handled"
    NO_INVOICE = "no_invoice"
    UNKNOWN_INVOICE = "unknown_invoice"
    SEVERAL_CUSTOMERS = "several_customers"
    SPLIT_TOTAL = "split_total"
    AMOUNT_NOT_POSITIVE = "amount_not_positive"
    REQUEST_CLOSED = "request_closed"

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass(frozen=True)
class SuggestedInvoice:
    id: int
    number: str
    remaining_minor: int
    due_date: dt.date


@dataclass
class Suggestion:
    reason: str
    customer_id: int
    customer_name: str
    invoices: list[SuggestedInvoice]
    request_id: int | None = None


@dataclass
class QueueLine:
    line: BankLine
    suggestions: list[Suggestion] = field(default_factory=list)


def pending_count(session: Session, company_id: int) -> int:
    return int(
        session.scalar(
            select(func.count(BankLine.id)).where(
                BankLine.company_id == company_id, BankLine.status == LineStatus.REVIEW
            )
        )
        or 0
    )


def queue(session: Session, company_id: int, limit: int = 100) -> list[QueueLine]:
    """Lines to review, oldest booking first, each with its suggestions (best first)."""
    lines = list(
        session.scalars(
            select(BankLine)
            .where(BankLine.company_id == company_id, BankLine.status == LineStatus.REVIEW)
            .order_by(BankLine.booked_on, BankLine.id)
            .limit(limit)
        )
    )
    stored: list[tuple[BankLine, dict[str, Any]]] = [
        (line, s) for line in lines for s in line.suggestions
    ]
    invoice_ids = {i for _l, s in stored for i in s.get("invoice_ids", [])}
    # Any open invoice with exactly the line's amount, as a last suggestion.
    by_amount: dict[tuple[int, str], list[Invoice]] = {}
    for line in lines:
        key = (line.amount_minor, line.currency)
        if key not in by_amount:
            by_amount[key] = list(
                session.scalars(
                    select(Invoice)
                    .where(
                        Invoice.company_id == company_id,
                        Invoice.status == InvoiceStatus.OPEN,
                        Invoice.currency == line.currency,
                        Invoice.amount_minor - Invoice.paid_minor == line.amount_minor,
                    )
                    .order_by(Invoice.due_date, Invoice.id)
                    .limit(5)
                )
            )
    invoices = (
        {
            i.id: i
            for i in session.scalars(select(Invoice).where(Invoice.id.in_(sorted(invoice_ids))))
        }
        if invoice_ids
        else {}
    )
    for found in by_amount.values():
        invoices.update({i.id: i for i in found})
    customer_ids = {s["customer_id"] for _l, s in stored} | {
        i.customer_id for i in invoices.values()
    }
    names: dict[int, str] = {}
    if customer_ids:
        query = select(Customer.id, Customer.name).where(Customer.id.in_(sorted(customer_ids)))
        names = {int(row[0]): str(row[1]) for row in session.execute(query)}
    out = []
    for line in lines:
        entry = QueueLine(line)
        seen: set[tuple[int, ...]] = set()
        raw = list(line.suggestions) + [
            {"reason": "amount", "customer_id": i.customer_id, "invoice_ids": [i.id]}
            for i in by_amount[(line.amount_minor, line.currency)]
        ]
        for suggestion in raw:
            ids = tuple(i for i in suggestion.get("invoice_ids", []) if i in invoices)
            open_ = [invoices[i] for i in ids if invoices[i].status is InvoiceStatus.OPEN]
            if ids in seen or (not open_ and suggestion.get("request_id") is None):
                continue
            seen.add(ids)
            entry.suggestions.append(
                Suggestion(
                    reason=str(suggestion["reason"]),
                    customer_id=int(suggestion["customer_id"]),
                    customer_name=names.get(suggestion["customer_id"], ""),
                    invoices=[
                        SuggestedInvoice(i.id, i.number, i.remaining_minor, i.due_date)
                        for i in open_
                    ],
                    request_id=suggestion.get("request_id"),
                )
            )
        out.append(entry)
    return out


def get_line(session: Session, company_id: int, line_id: int) -> BankLine | None:
    line = session.get(BankLine, line_id)
    return line if line is not None and line.company_id == company_id else None


def _lock_for_review(session: Session, line: BankLine) -> None:
    session.refresh(line, with_for_update=True)
    if line.status is not LineStatus.REVIEW:
        raise ReviewError(ReviewError.ALREADY_HANDLED)


def _open_invoices(session: Session, line: BankLine, invoice_ids: Sequence[int]) -> list[Invoice]:
    ids = sorted(set(invoice_ids))
    if not ids:
        raise ReviewError(ReviewError.NO_INVOICE)
    found = list(
        session.scalars(
            select(Invoice).where(Invoice.id.in_(ids), Invoice.company_id == line.company_id)
        )
    )
    if len(found) != len(ids) or any(
        i.status is not InvoiceStatus.OPEN or i.currency != line.currency for i in found
    ):
        raise ReviewError(ReviewError.UNKNOWN_INVOICE)
    return found


def match(
    session: Session,
    line: BankLine,
    invoice_ids: Sequence[int],
    *,
    user_id: int,
    request_id: int | None = None,
    today: dt.date | None = None,
) -> list[int]:
    """The whole line pays these invoices (one customer's): oldest first, the rest as credit.

    With ``request_id``: the line is that payment request's transfer, confirmed.
    """
    _lock_for_review(session, line)
    if request_id is not None:
        request = session.get(PaymentRequest, request_id)
        customer = session.get(Customer, request.customer_id) if request else None
        if request is None or customer is None or customer.company_id != line.company_id:
            raise ReviewError(ReviewError.UNKNOWN_INVOICE)
        if request.status not in (PaymentRequestStatus.OPEN, PaymentRequestStatus.DECLARED):
            raise ReviewError(ReviewError.REQUEST_CLOSED)
        writes = LineWrites()
        try:
            payment = confirm_request(
                session,
                writes,
                LineRef.of(line),
                request,
                "manual",
                today=today or clock.now().date(),
                actor=Actor.USER,
                user_id=user_id,
            )
        except PaymentRequestError:
            raise ReviewError(ReviewError.REQUEST_CLOSED) from None
        _write(session, writes, line)
        return [payment]
    invoices = _open_invoices(session, line, invoice_ids)
    customers = {i.customer_id for i in invoices}
    if len(customers) != 1:
        raise ReviewError(ReviewError.SEVERAL_CUSTOMERS)
    writes = LineWrites()
    payments = record_parts(
        session,
        writes,
        LineRef.of(line),
        [(customers.pop(), line.amount_minor, [i.id for i in invoices])],
        "manual",
        actor=Actor.USER,
        user_id=user_id,
    )
    _write(session, writes, line)
    return payments


def split(
    session: Session, line: BankLine, parts: Sequence[tuple[int, int]], *, user_id: int
) -> list[int]:
    """``(invoice id, amount)`` parts adding up to the line: one payment per part."""
    _lock_for_review(session, line)
    if any(amount <= 0 for _i, amount in parts) or not parts:
        raise ReviewError(ReviewError.AMOUNT_NOT_POSITIVE)
    if sum(amount for _i, amount in parts) != line.amount_minor:
        raise ReviewError(ReviewError.SPLIT_TOTAL)
    invoices = {i.id: i for i in _open_invoices(session, line, [i for i, _a in parts])}
    merged: dict[int, int] = {}
    for invoice_id, amount in parts:
        merged[invoice_id] = merged.get(invoice_id, 0) + amount
    writes = LineWrites()
    payments = record_parts(
        session,
        writes,
        LineRef.of(line),
        [(invoices[i].customer_id, amount, [i]) for i, amount in merged.items()],
        "split",
        actor=Actor.USER,
        user_id=user_id,
    )
    _write(session, writes, line)
    return payments


def _write(session: Session, writes: LineWrites, line: BankLine) -> None:
    session.flush()
    writes.write(session)
    session.expire(line)


def dismiss(session: Session, line: BankLine, *, user_id: int) -> None:
    """Not a customer payment (a refund from a supplier, a transfer between accounts…)."""
    _lock_for_review(session, line)
    writes = LineWrites()
    ref = LineRef.of(line)
    writes.done(ref, LineStatus.NOT_CUSTOMER, user_id=user_id)
    writes.event(ref, "bank_line.not_customer", None, Actor.USER, str(user_id))
    _write(session, writes, line)
