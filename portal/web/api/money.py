"""Payments received elsewhere: recorded once per (customer, reference), allocated."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.api import schemas as s
from portal.changes import FieldErrors
from portal.i18n import gettext_ as _
from portal.invoices import service as invoices
from portal.invoices.models import Invoice
from portal.payments.models import Payment, PaymentAllocation
from portal.payments.offline import record_offline_payment
from portal.timeline.models import Actor
from portal.web.api.customers import by_reference
from portal.web.api.framework import Call, Result, operation

# The accounting system's payments, whether they come in a file or through the API: one
# namespace, so the same payment sent both ways is recorded once.
PROVIDER = "import"


def payment_out(
    db: Session, payment: Payment, outcome: Literal["created", "unchanged"]
) -> s.PaymentOut:
    allocations = db.execute(
        select(Invoice.number, PaymentAllocation.amount_minor)
        .join(Invoice, Invoice.id == PaymentAllocation.invoice_id)
        .where(PaymentAllocation.payment_id == payment.id)
        .order_by(PaymentAllocation.id)
    ).all()
    return s.PaymentOut(
        id=payment.id,
        customer_id=payment.customer_id,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        method=payment.method.value,
        received_at=payment.received_at,
        allocations=[s.AllocationOut(invoice_number=n, amount_minor=a) for n, a in allocations],
        outcome=outcome,
    )


@operation(
    "POST",
    "/payments",
    summary="Record a payment received elsewhere (cheque, transfer, offset), with allocation",
    tag="Payments",
    body=s.PaymentIn,
    ok=(201, s.PaymentOut),
    also=(200,),
    fields={"amount": "amount_minor", "invoice_ids": "invoice_numbers"},
)
def record_payment(call: Call) -> Result:
    body: s.PaymentIn = call.body
    customer = by_reference(call, body.customer_reference)
    wanted = sorted(set(body.invoice_numbers))
    ids: list[int] = []
    if wanted:
        found = invoices.ids_by_number(call.db, wanted, customer_id=customer.id)
        missing = [n for n in wanted if n not in found]
        if missing:
            raise FieldErrors(
                {
                    "invoice_numbers": _(
                        "No invoice of this customer has the number %(numbers)s.",
                        numbers=", ".join(missing),
                    )
                }
            )
        ids = [found[n] for n in wanted]
    payment, outcome = record_offline_payment(
        call.db,
        customer,
        amount_minor=body.amount_minor,
        currency=body.currency,
        method=body.method,
        reference=body.reference,
        received_on=body.received_on,
        invoice_ids=ids,
        actor=Actor.SYSTEM,
        actor_id=call.caller.actor_id,
        provider=PROVIDER,
    )
    out = payment_out(call.db, payment, "created" if outcome.value == "created" else "unchanged")
    return Result(201 if out.outcome == "created" else 200, out)
