"""Recording payments and allocating them to invoices."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, bindparam, func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from portal import clock
from portal.customers.models import Customer
from portal.invoices.models import Invoice, InvoiceStatus
from portal.money import allocate
from portal.payments.models import (
    Payment,
    PaymentAllocation,
    PaymentMethod,
    PaymentReversal,
    PaymentStatus,
    ReversalKind,
)
from portal.payments.writes import InvoicePaid, write_payment
from portal.timeline.models import Actor
from portal.timeline.service import event_row, record


class PaymentError(Exception):
    pass


REVERSAL_ACTIONS = {
    ReversalKind.REFUND: "payment.refunded",
    ReversalKind.CHARGEBACK: "payment.charged_back",
    ReversalKind.CANCELLATION: "payment.cancelled",
}


@dataclass(frozen=True)
class Payer:
    """Who pays, when the caller has no Customer loaded (a webhook read the two ids)."""

    id: int
    company_id: int


@dataclass(frozen=True)
class RecordedPayment:
    """What recording a payment did (load ``Payment`` by ``id`` for more)."""

    id: int
    amount_minor: int
    currency: str
    credit_minor: int


class OpenInvoice(NamedTuple):
    """An open invoice as allocation reads it."""

    id: int
    number: str
    amount_minor: int
    paid_minor: int


_invoices = cast(Table, Invoice.__table__)
# The customer's open invoices in one currency, locked: allocation reads them, and two
# payments racing for one invoice wait on each other.
_OPEN_INVOICES = (
    select(_invoices.c.id, _invoices.c.number, _invoices.c.amount_minor, _invoices.c.paid_minor)
    .where(
        _invoices.c.customer_id == bindparam("customer"),
        _invoices.c.currency == bindparam("currency"),
        _invoices.c.status == InvoiceStatus.OPEN,
    )
    .order_by(_invoices.c.due_date, _invoices.c.id)
    .with_for_update()
)


def record_payment(
    session: Session,
    customer: Customer | Payer,
    *,
    amount_minor: int,
    currency: str,
    method: PaymentMethod,
    provider: str,
    provider_reference: str,
    received_at: dt.datetime | None = None,
    invoice_ids: Sequence[int] = (),
    actor: Actor = Actor.SYSTEM,
    actor_id: str | None = None,
    payment_request_id: int | None = None,
    receipt: bool = False,
    locked: Sequence[OpenInvoice] | None = None,
) -> RecordedPayment:
    """Record a payment and allocate it: to ``invoice_ids`` first, then oldest first.

    The invoices are locked (FOR UPDATE on PostgreSQL) so two payments racing
    for one invoice never over-allocate; what exceeds the open amounts stays
    on the payment as the customer's credit. ``locked``: the customer's open invoices in
    ``currency``, oldest due first, already locked by the caller in this transaction.
    """
    if amount_minor <= 0:
        raise PaymentError("amount must be positive")
    if locked is None:
        # Plain rows rather than ORM objects: this runs once per webhook event. Anything
        # pending is written first, as the ORM's autoflush would.
        session.flush()
        found = session.execute(_OPEN_INVOICES, {"customer": customer.id, "currency": currency})
        locked = [OpenInvoice(*row) for row in found]
    shares, credit = plan_allocation(amount_minor, locked, invoice_ids)
    now = clock.now()
    # Plain statements rather than ORM objects (one on PostgreSQL): this runs once per
    # webhook event, and the unit-of-work bookkeeping would cost more than the writes.
    # (The invoices were read through the ORM above, which flushed anything pending.)
    payment_id = write_payment(
        session,
        payment_row(
            customer.id,
            amount_minor=amount_minor,
            currency=currency,
            method=method,
            provider=provider,
            provider_reference=provider_reference,
            received_at=received_at or now,
            created_at=now,
            payment_request_id=payment_request_id,
            receipt=receipt,
        ),
        shares,
        recorded_event(
            customer.company_id,
            customer.id,
            actor=actor,
            actor_id=actor_id,
            amount_minor=amount_minor,
            currency=currency,
            method=method,
            shares=shares,
            credit_minor=credit,
            reference=provider_reference,
        ),
    )
    sync_held_invoices(session, shares)
    return RecordedPayment(payment_id, amount_minor, currency, credit)


def plan_allocation(
    amount_minor: int, locked: Sequence[OpenInvoice], invoice_ids: Sequence[int]
) -> tuple[list[InvoicePaid], int]:
    """How a payment of ``amount_minor`` is allocated over the customer's open invoices
    (oldest due first): to ``invoice_ids`` first, then oldest first; returns each
    invoice's share and what is left over (the customer's credit)."""
    chosen = set(invoice_ids)
    ordered = [i for i in locked if i.id in chosen] + [i for i in locked if i.id not in chosen]
    allocations, credit = allocate(
        amount_minor, [(i.id, max(i.amount_minor - i.paid_minor, 0)) for i in ordered]
    )
    by_id = {i.id: i for i in ordered}
    shares = []
    for part in allocations:
        invoice = by_id[part.key]
        paid = invoice.paid_minor + part.amount_minor
        settled = paid >= invoice.amount_minor
        shares.append(
            InvoicePaid(
                invoice_id=invoice.id,
                amount_minor=part.amount_minor,
                paid_minor=paid,
                status=InvoiceStatus.PAID if settled else InvoiceStatus.OPEN,
                settled=settled,
                number=invoice.number,
            )
        )
    return shares, credit


def payment_row(
    customer_id: int,
    *,
    amount_minor: int,
    currency: str,
    method: PaymentMethod,
    provider: str,
    provider_reference: str,
    received_at: dt.datetime,
    created_at: dt.datetime,
    payment_request_id: int | None,
    receipt: bool,
) -> dict[str, Any]:
    """The payments row of a payment just received."""
    return {
        "customer_id": customer_id,
        "amount_minor": amount_minor,
        "currency": currency,
        "method": method,
        "status": PaymentStatus.SUCCEEDED,
        "provider": provider,
        "provider_reference": provider_reference,
        "received_at": received_at,
        "created_at": created_at,
        "payment_request_id": payment_request_id,
        "reversed_minor": 0,
        "receipt_pending": receipt,
    }


def recorded_event(
    company_id: int,
    customer_id: int,
    *,
    actor: Actor,
    actor_id: str | None,
    amount_minor: int,
    currency: str,
    method: PaymentMethod,
    shares: Sequence[InvoicePaid],
    credit_minor: int,
    reference: str,
) -> dict[str, Any]:
    """The payment.recorded timeline row (its subject_id: the payment's id, once known)."""
    return event_row(
        company_id=company_id,
        customer_id=customer_id,
        actor=actor,
        actor_id=actor_id,
        action="payment.recorded",
        subject_type="payment",
        details={
            "amount_minor": amount_minor,
            "currency": currency,
            "method": method.value,
            "allocations": {s.number: s.amount_minor for s in shares},
            "credit_minor": credit_minor,
            "reference": reference,
        },
    )


def sync_held_invoices(session: Session, shares: Sequence[InvoicePaid]) -> None:
    """Invoices the session holds say what the rows now say, as unchanged."""
    for share in shares:
        held = session.identity_map.get(identity_key(Invoice, share.invoice_id))
        if held is None:
            continue
        set_committed_value(held, "paid_minor", share.paid_minor)
        set_committed_value(held, "status", share.status)
        if share.settled:
            set_committed_value(held, "transfer_pending_until", None)


def find_payment(session: Session, provider: str, provider_reference: str) -> Payment | None:
    return session.scalars(
        select(Payment).where(
            Payment.provider == provider, Payment.provider_reference == provider_reference
        )
    ).one_or_none()


def reverse_payment(
    session: Session,
    payment: Payment,
    *,
    kind: ReversalKind,
    provider_reference: str,
    amount_minor: int,
    actor: Actor = Actor.PROVIDER,
    actor_id: str | None = None,
) -> PaymentReversal | None:
    """Give back (refund) or lose (chargeback) part of a payment, reopening what it paid.

    The customer's unallocated credit from this payment goes first; then allocations are
    undone from the invoice due last, so the oldest debts stay settled longest. Applied
    once per ``(kind, provider_reference)``: a replayed notice returns None.
    """
    if amount_minor <= 0:
        raise PaymentError("amount must be positive")
    already = session.scalars(
        select(PaymentReversal).where(
            PaymentReversal.kind == kind,
            PaymentReversal.provider_reference == provider_reference,
        )
    ).one_or_none()
    if already is not None:
        return None
    # Lock the payment so concurrent reversals of one payment apply one after the other.
    session.execute(select(Payment.id).where(Payment.id == payment.id).with_for_update())
    session.refresh(payment)
    amount = min(amount_minor, payment.amount_minor - payment.reversed_minor)
    if amount <= 0:
        return None
    to_reopen = max(amount - payment.credit_minor, 0)
    allocations = list(
        session.scalars(
            select(PaymentAllocation)
            .join(Invoice, Invoice.id == PaymentAllocation.invoice_id)
            .where(PaymentAllocation.payment_id == payment.id)
            .order_by(Invoice.due_date.desc(), Invoice.id.desc())
            .with_for_update()
        )
    )
    reopened: dict[str, int] = {}
    for allocation in allocations:
        if to_reopen == 0:
            break
        take = min(allocation.amount_minor, to_reopen)
        invoice = session.get(Invoice, allocation.invoice_id, with_for_update=True)
        assert invoice is not None
        invoice.paid_minor -= take
        if invoice.status is InvoiceStatus.PAID and invoice.remaining_minor > 0:
            invoice.status = InvoiceStatus.OPEN
        reopened[invoice.number] = take
        to_reopen -= take
        if take == allocation.amount_minor:
            session.delete(allocation)
        else:
            allocation.amount_minor -= take
    payment.reversed_minor += amount
    payment.status = (
        PaymentStatus.REFUNDED
        if payment.reversed_minor >= payment.amount_minor
        else PaymentStatus.PARTIALLY_REFUNDED
    )
    reversal = PaymentReversal(
        payment_id=payment.id,
        kind=kind,
        provider_reference=provider_reference,
        amount_minor=amount,
        created_at=clock.now(),
    )
    session.add(reversal)
    session.flush()
    customer = session.get(Customer, payment.customer_id)
    assert customer is not None
    record(
        session,
        company_id=customer.company_id,
        customer_id=customer.id,
        actor=actor,
        actor_id=actor_id,
        action=REVERSAL_ACTIONS[kind],
        subject_type="payment",
        subject_id=payment.id,
        details={
            "amount_minor": amount,
            "currency": payment.currency,
            "reference": provider_reference,
            "reopened": reopened,
        },
    )
    session.expire(payment, ["allocations"])
    return reversal


def release_allocations(session: Session, invoice: Invoice, amount_minor: int) -> dict[int, int]:
    """Take back up to ``amount_minor`` of what payments allocated to ``invoice``, latest
    payment first: that money becomes those payments' credit again (nothing is lost).

    For an invoice cancelled, or lowered below what was paid on it. Returns
    ``{payment_id: amount released}``; the caller records the timeline event.
    """
    allocations = list(
        session.scalars(
            select(PaymentAllocation)
            .join(Payment, Payment.id == PaymentAllocation.payment_id)
            .where(PaymentAllocation.invoice_id == invoice.id)
            .order_by(Payment.received_at.desc(), Payment.id.desc())
            .with_for_update()
        )
    )
    released: dict[int, int] = {}
    left = amount_minor
    for allocation in allocations:
        if left <= 0:
            break
        take = min(allocation.amount_minor, left)
        released[allocation.payment_id] = take
        left -= take
        if take == allocation.amount_minor:
            session.delete(allocation)
        else:
            allocation.amount_minor -= take
    invoice.paid_minor -= sum(released.values())
    session.flush()
    for payment_id in released:
        payment = session.get(Payment, payment_id)
        if payment is not None:
            session.expire(payment, ["allocations"])
    return released


def customer_credit_minor(session: Session, customer_id: int, currency: str) -> int:
    """The customer's unused credit in ``currency``: payments not allocated nor reversed."""
    paid = session.scalar(
        select(func.coalesce(func.sum(Payment.amount_minor - Payment.reversed_minor), 0)).where(
            Payment.customer_id == customer_id, Payment.currency == currency
        )
    )
    allocated = session.scalar(
        select(func.coalesce(func.sum(PaymentAllocation.amount_minor), 0))
        .join(Payment, Payment.id == PaymentAllocation.payment_id)
        .where(Payment.customer_id == customer_id, Payment.currency == currency)
    )
    return int(paid or 0) - int(allocated or 0)
