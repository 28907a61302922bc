"""Recording payments and allocating them to invoices."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import clock
from portal.customers.models import Customer
from portal.invoices.models import Invoice, InvoiceStatus
from portal.money import allocate
from portal.payments.models import Payment, PaymentAllocation, PaymentMethod
from portal.timeline.models import Actor
from portal.timeline.service import record


class PaymentError(Exception):
    pass


def record_payment(
    session: Session,
    customer: Customer,
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
) -> Payment:
    """Record a payment and allocate it: to ``invoice_ids`` first, then oldest first.

    The invoices are locked (FOR UPDATE on PostgreSQL) so two payments racing
    for one invoice never over-allocate; what exceeds the open amounts stays
    on the payment as the customer's credit.
    """
    if amount_minor <= 0:
        raise PaymentError("amount must be positive")
    open_query = (
        select(Invoice)
        .where(
            Invoice.customer_id == customer.id,
            Invoice.currency == currency,
            Invoice.status == InvoiceStatus.OPEN,
        )
        .order_by(Invoice.due_date, Invoice.id)
        .with_for_update()
    )
    candidates = list(session.scalars(open_query))
    chosen = set(invoice_ids)
    ordered = [i for i in candidates if i.id in chosen] + [
        i for i in candidates if i.id not in chosen
    ]
    allocations, credit = allocate(amount_minor, [(i.id, i.remaining_minor) for i in ordered])
    now = clock.now()
    payment = Payment(
        customer_id=customer.id,
        amount_minor=amount_minor,
        currency=currency,
        method=method,
        provider=provider,
        provider_reference=provider_reference,
        received_at=received_at or now,
        created_at=now,
    )
    session.add(payment)
    session.flush()
    by_id = {i.id: i for i in ordered}
    for part in allocations:
        invoice = by_id[part.key]
        session.add(
            PaymentAllocation(
                payment_id=payment.id, invoice_id=invoice.id, amount_minor=part.amount_minor
            )
        )
        invoice.paid_minor += part.amount_minor
        if invoice.remaining_minor == 0:
            invoice.status = InvoiceStatus.PAID
    record(
        session,
        company_id=customer.company_id,
        customer_id=customer.id,
        actor=actor,
        actor_id=actor_id,
        action="payment.recorded",
        subject_type="payment",
        subject_id=payment.id,
        details={
            "amount_minor": amount_minor,
            "currency": currency,
            "method": method.value,
            "allocations": {by_id[a.key].number: a.amount_minor for a in allocations},
            "credit_minor": credit,
        },
    )
    return payment
