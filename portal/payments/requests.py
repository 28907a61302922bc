"""Payment requests: what a debtor chose to pay and how (bank transfer or card).

No web here: functions take a Session and plain values and raise PaymentRequestError,
whose ``key`` names the failure (the web layer turns it into a translated message).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import clock
from portal.customers.models import Customer
from portal.invoices.models import Invoice, InvoiceStatus
from portal.money import allocate
from portal.payments.models import PaymentMethod, PaymentRequest, PaymentRequestStatus
from portal.payments.service import RecordedPayment, record_payment
from portal.payments.transfer import creditor_reference
from portal.payments.transfer_checks import (
    PaymentRequestError as PaymentRequestError,
)
from portal.payments.transfer_checks import (
    check_confirmable,
    confirmed_details,
    pending_until,
)
from portal.timeline.models import Actor
from portal.timeline.service import record

# How far back a debtor may date a transfer they declare.
MAX_DECLARED_AGE_DAYS = 60


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


@dataclass(frozen=True)
class PartialPolicy:
    """Whether a debtor may pay less than the selection's total, and the least they may pay."""

    allowed: bool
    minimum_minor: int


NO_PARTIAL = PartialPolicy(allowed=False, minimum_minor=1)


def check_amount(amount_minor: int | None, due_minor: int, policy: PartialPolicy) -> int:
    """The amount to ask for: the whole ``due_minor``, or an accepted partial amount."""
    if amount_minor is None or amount_minor == due_minor:
        return due_minor
    if amount_minor <= 0:
        raise PaymentRequestError(PaymentRequestError.AMOUNT_NOT_POSITIVE)
    if amount_minor > due_minor:
        raise PaymentRequestError(PaymentRequestError.AMOUNT_ABOVE_DUE)
    if not policy.allowed:
        raise PaymentRequestError(PaymentRequestError.PARTIAL_NOT_ALLOWED)
    if amount_minor < policy.minimum_minor:
        raise PaymentRequestError(PaymentRequestError.AMOUNT_BELOW_MINIMUM)
    return amount_minor


def selection_currency(
    session: Session, customer: Customer, selected_invoice_ids: Sequence[int]
) -> str | None:
    """The currency of the customer's first chosen invoice (to read a typed amount in)."""
    ids = sorted(set(selected_invoice_ids))
    if not ids:
        return None
    return session.scalar(
        select(Invoice.currency)
        .where(Invoice.id.in_(ids), Invoice.customer_id == customer.id)
        .order_by(Invoice.id)
        .limit(1)
    )


def prepare_request(
    session: Session,
    customer: Customer,
    scope_invoice_ids: frozenset[int] | None,
    selected_invoice_ids: Sequence[int],
    method: PaymentMethod,
    *,
    amount_minor: int | None = None,
    policy: PartialPolicy = NO_PARTIAL,
) -> PaymentRequest:
    """The open request paying these invoices by ``method``: an existing one, or a new one.

    The selection must be non-empty, open invoices of this customer (within the link's
    scope), in one currency. ``amount_minor`` (None: everything remaining) may be less when
    the policy allows it. Submitting the same choice again (refresh, double click, back
    button) returns the same request, so a card payment keeps its idempotency key and a
    transfer its RF reference.
    """
    invoices = _selected_invoices(session, customer, scope_invoice_ids, selected_invoice_ids)
    ids = [i.id for i in sorted(invoices, key=lambda i: i.id)]
    currency = invoices[0].currency
    due = sum(i.remaining_minor for i in invoices)
    if due <= 0:
        raise PaymentRequestError(PaymentRequestError.NOTHING_TO_PAY)
    amount = check_amount(amount_minor, due, policy)
    existing = session.scalars(
        select(PaymentRequest)
        .where(
            PaymentRequest.customer_id == customer.id,
            PaymentRequest.method == method,
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
        method=method,
        status=PaymentRequestStatus.OPEN,
        invoice_ids=ids,
        created_at=clock.now(),
        attempt=1,
    )
    session.add(request)
    session.flush()
    details: dict[str, object] = {
        "method": method.value,
        "amount_minor": amount,
        "currency": currency,
        "invoices": [i.number for i in invoices],
    }
    if method is PaymentMethod.TRANSFER:
        details["reference"] = reference_of(request)
    record(
        session,
        company_id=customer.company_id,
        customer_id=customer.id,
        actor=Actor.DEBTOR,
        action="payment_request.created",
        subject_type="payment_request",
        subject_id=request.id,
        details=details,
    )
    return request


def prepare_transfer(
    session: Session,
    customer: Customer,
    scope_invoice_ids: frozenset[int] | None,
    selected_invoice_ids: Sequence[int],
    *,
    amount_minor: int | None = None,
    policy: PartialPolicy = NO_PARTIAL,
) -> PaymentRequest:
    """The open bank-transfer request for these invoices (see ``prepare_request``)."""
    return prepare_request(
        session,
        customer,
        scope_invoice_ids,
        selected_invoice_ids,
        PaymentMethod.TRANSFER,
        amount_minor=amount_minor,
        policy=policy,
    )


@dataclass(frozen=True)
class SettlementLine:
    """What a payment request will do to one invoice, shown before the debtor pays."""

    invoice: Invoice
    applied_minor: int

    @property
    def remaining_after_minor(self) -> int:
        return self.invoice.remaining_minor - self.applied_minor

    @property
    def settles(self) -> bool:
        return self.remaining_after_minor == 0


def settlement_preview(invoices: Sequence[Invoice], amount_minor: int) -> list[SettlementLine]:
    """How ``amount_minor`` will be allocated across ``invoices`` (oldest due first),
    exactly as the payment will be when it arrives."""
    ordered = sorted(invoices, key=lambda i: (i.due_date, i.id))
    allocations, _credit = allocate(amount_minor, [(i.id, i.remaining_minor) for i in ordered])
    applied = {a.key: a.amount_minor for a in allocations}
    return [SettlementLine(i, applied.get(i.id, 0)) for i in ordered]


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
            .order_by(Invoice.due_date, Invoice.id)
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


def confirm_transfer(
    session: Session,
    request: PaymentRequest,
    *,
    amount_minor: int,
    received_on: dt.date,
    today: dt.date,
    actor: Actor = Actor.USER,
    actor_id: str | None = None,
) -> RecordedPayment:
    """The money of a transfer request arrived: record and allocate it like any payment.

    The payment's reference is the request's RF reference, so a later bank statement
    import matching the same reference cannot record it a second time. The declared
    invoices stop being "payment pending" (unless another declaration still covers them).
    """
    session.refresh(request, with_for_update=True)
    check_confirmable(request.method, request.status, amount_minor, received_on, today)
    customer = session.get(Customer, request.customer_id)
    assert customer is not None
    payment = record_payment(
        session,
        customer,
        amount_minor=amount_minor,
        currency=request.currency,
        method=PaymentMethod.TRANSFER,
        provider="bank",
        provider_reference=reference_of(request),
        received_at=dt.datetime.combine(received_on, dt.time(12), dt.UTC),
        invoice_ids=sorted(request.invoice_ids),
        actor=actor,
        actor_id=actor_id,
        payment_request_id=request.id,
        receipt=True,
    )
    request.status = PaymentRequestStatus.CONFIRMED
    request.confirmed_at = clock.now()
    _recompute_pending(session, customer.id, request.invoice_ids)
    record(
        session,
        company_id=customer.company_id,
        customer_id=customer.id,
        actor=actor,
        actor_id=actor_id,
        action="transfer.confirmed",
        subject_type="payment_request",
        subject_id=request.id,
        details=confirmed_details(
            amount_minor, request.currency, received_on, reference_of(request), payment.id
        ),
    )
    session.flush()
    return payment


def _recompute_pending(session: Session, customer_id: int, invoice_ids: Sequence[int]) -> None:
    """Each invoice stays "payment pending" only as long as a declaration still open covers it."""
    still_declared = list(
        session.scalars(
            select(PaymentRequest).where(
                PaymentRequest.customer_id == customer_id,
                PaymentRequest.method == PaymentMethod.TRANSFER,
                PaymentRequest.status == PaymentRequestStatus.DECLARED,
            )
        )
    )
    declarations = [(r.invoice_ids, r.grace_until) for r in still_declared]
    for invoice in session.scalars(select(Invoice).where(Invoice.id.in_(sorted(invoice_ids)))):
        invoice.transfer_pending_until = pending_until(invoice.id, declarations)
