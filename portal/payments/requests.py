"""Payment requests: what a debtor chose to pay and how (bank transfer now, card later).

No web here: functions take a Session and plain values and raise PaymentRequestError,
whose ``key`` names the failure (the web layer turns it into a translated message).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import clock
from portal.customers.models import Customer
from portal.invoices.models import Invoice, InvoiceStatus
from portal.payments.models import PaymentMethod, PaymentRequest, PaymentRequestStatus
from portal.payments.transfer import creditor_reference
from portal.timeline.models import Actor
from portal.timeline.service import record

# How far back a debtor may date a transfer they declare.
MAX_DECLARED_AGE_DAYS = 60


class PaymentRequestError(Exception):
    """A payment request cannot be made or changed as asked; ``key`` says why."""

    EMPTY_SELECTION = "empty_selection"
    UNKNOWN_INVOICE = "unknown_invoice"  # not open, not the customer's, or outside the link
    MIXED_CURRENCIES = "mixed_currencies"
    NOTHING_TO_PAY = "nothing_to_pay"
    NOT_DECLARABLE = "not_declarable"
    PAID_ON_IN_FUTURE = "paid_on_in_future"
    PAID_ON_TOO_OLD = "paid_on_too_old"
    AMOUNT_NOT_POSITIVE = "amount_not_positive"

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def reference_of(request: PaymentRequest) -> str:
    """The ISO 11649 creditor reference (compact) a transfer for this request carries."""
    return creditor_reference(request.customer_id, request.id)


def _selected_invoices(
    session: Session,
    customer: Customer,
    scope_invoice_ids: frozenset[int] | None,
    selected_invoice_ids: Sequence[int],
) -> list[Invoice]:
    chosen = sorted(set(selected_invoice_ids))
    if not chosen:
        raise PaymentRequestError(PaymentRequestError.EMPTY_SELECTION)
    if scope_invoice_ids is not None and not set(chosen) <= scope_invoice_ids:
        raise PaymentRequestError(PaymentRequestError.UNKNOWN_INVOICE)
    query = (
        select(Invoice)
        .where(
            Invoice.id.in_(chosen),
            Invoice.customer_id == customer.id,
            Invoice.status == InvoiceStatus.OPEN,
        )
        .order_by(Invoice.due_date, Invoice.number)
    )
    invoices = list(session.scalars(query))
    if len(invoices) != len(chosen):
        raise PaymentRequestError(PaymentRequestError.UNKNOWN_INVOICE)
    if len({i.currency for i in invoices}) != 1:
        raise PaymentRequestError(PaymentRequestError.MIXED_CURRENCIES)
    return invoices


def prepare_transfer(
    session: Session,
    customer: Customer,
    scope_invoice_ids: frozenset[int] | None,
    selected_invoice_ids: Sequence[int],
) -> PaymentRequest:
    """The open transfer request for these invoices: an existing one, or a new one.

    The selection must be non-empty, open invoices of this customer (within the link's
    scope), in one currency. Submitting the same selection again (refresh, double click)
    returns the same request as long as the amount due has not changed.
    """
    invoices = _selected_invoices(session, customer, scope_invoice_ids, selected_invoice_ids)
    ids = [i.id for i in sorted(invoices, key=lambda i: i.id)]
    currency = invoices[0].currency
    amount = sum(i.remaining_minor for i in invoices)
    if amount <= 0:
        raise PaymentRequestError(PaymentRequestError.NOTHING_TO_PAY)
    existing = session.scalars(
        select(PaymentRequest)
        .where(
            PaymentRequest.customer_id == customer.id,
            PaymentRequest.method == PaymentMethod.TRANSFER,
            PaymentRequest.status == PaymentRequestStatus.OPEN,
            PaymentRequest.currency == currency,
            PaymentRequest.amount_minor == amount,
        )
        .order_by(PaymentRequest.id)
    )
    for candidate in existing:
        if sorted(candidate.invoice_ids) == ids:
            return candidate
    request = PaymentRequest(
        customer_id=customer.id,
        currency=currency,
        amount_minor=amount,
        method=PaymentMethod.TRANSFER,
        status=PaymentRequestStatus.OPEN,
        invoice_ids=ids,
        created_at=clock.now(),
    )
    session.add(request)
    session.flush()
    record(
        session,
        company_id=customer.company_id,
        customer_id=customer.id,
        actor=Actor.DEBTOR,
        action="payment_request.created",
        subject_type="payment_request",
        subject_id=request.id,
        details={
            "method": PaymentMethod.TRANSFER.value,
            "amount_minor": amount,
            "currency": currency,
            "invoices": [i.number for i in invoices],
            "reference": reference_of(request),
        },
    )
    return request


def get_request(
    session: Session,
    customer_id: int,
    request_id: int,
    scope_invoice_ids: frozenset[int] | None = None,
) -> PaymentRequest | None:
    """The customer's request (within the link's scope); None otherwise (shown as 404)."""
    request = session.get(PaymentRequest, request_id)
    if request is None or request.customer_id != customer_id:
        return None
    if scope_invoice_ids is not None and not set(request.invoice_ids) <= scope_invoice_ids:
        return None
    return request


def request_invoices(session: Session, request: PaymentRequest) -> list[Invoice]:
    """The invoices a request settles, oldest due first."""
    return list(
        session.scalars(
            select(Invoice)
            .where(
                Invoice.id.in_(sorted(request.invoice_ids)),
                Invoice.customer_id == request.customer_id,
            )
            .order_by(Invoice.due_date, Invoice.number)
        )
    )


def declare_transfer(
    session: Session,
    request: PaymentRequest,
    paid_on: dt.date,
    amount_minor: int,
    today: dt.date,
    grace_days: int,
) -> PaymentRequest:
    """The debtor says they paid: the invoices are "payment pending" until the grace date."""
    if request.method is not PaymentMethod.TRANSFER or request.status not in (
        PaymentRequestStatus.OPEN,
        PaymentRequestStatus.DECLARED,
    ):
        raise PaymentRequestError(PaymentRequestError.NOT_DECLARABLE)
    if paid_on > today:
        raise PaymentRequestError(PaymentRequestError.PAID_ON_IN_FUTURE)
    if paid_on < today - dt.timedelta(days=MAX_DECLARED_AGE_DAYS):
        raise PaymentRequestError(PaymentRequestError.PAID_ON_TOO_OLD)
    if amount_minor <= 0:
        raise PaymentRequestError(PaymentRequestError.AMOUNT_NOT_POSITIVE)
    customer = session.get(Customer, request.customer_id)
    assert customer is not None
    request.status = PaymentRequestStatus.DECLARED
    request.declared_at = clock.now()
    request.declared_paid_on = paid_on
    request.declared_amount_minor = amount_minor
    request.grace_until = paid_on + dt.timedelta(days=grace_days)
    for invoice in request_invoices(session, request):
        if (
            invoice.transfer_pending_until is None
            or invoice.transfer_pending_until < request.grace_until
        ):
            invoice.transfer_pending_until = request.grace_until
    record(
        session,
        company_id=customer.company_id,
        customer_id=customer.id,
        actor=Actor.DEBTOR,
        action="transfer.declared",
        subject_type="payment_request",
        subject_id=request.id,
        details={
            "amount_minor": amount_minor,
            "currency": request.currency,
            "paid_on": paid_on.isoformat(),
            "invoices": [i.number for i in request_invoices(session, request)],
            "reference": reference_of(request),
            "grace_until": request.grace_until.isoformat(),
        },
    )
    session.flush()
    return request


def pending_invoice_ids(session: Session, customer_id: int, today: dt.date) -> set[int]:
    """Invoices with a declared transfer still within its grace period ("payment pending").

    The reminder engine skips these.
    """
    return set(
        session.scalars(
            select(Invoice.id).where(
                Invoice.customer_id == customer_id,
                Invoice.status == InvoiceStatus.OPEN,
                Invoice.transfer_pending_until >= today,
            )
        )
    )


def declared_transfers_to_confirm(session: Session, company_id: int) -> list[PaymentRequest]:
    """Declared transfers awaiting the money, oldest declaration first (back office)."""
    return list(
        session.scalars(
            select(PaymentRequest)
            .join(Customer, Customer.id == PaymentRequest.customer_id)
            .where(
                Customer.company_id == company_id,
                PaymentRequest.method == PaymentMethod.TRANSFER,
                PaymentRequest.status == PaymentRequestStatus.DECLARED,
            )
            .order_by(PaymentRequest.declared_at, PaymentRequest.id)
        )
    )
