"""Receipt emails for recorded payments: claimed once, sent after the commit."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from jinja2 import Environment
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from portal import clock
from portal.customers.models import Customer
from portal.invoices.models import Invoice, InvoiceStatus
from portal.mail.sender import Mailer, compose
from portal.payments.models import Payment, PaymentAllocation
from portal.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReceiptLine:
    number: str
    applied_minor: int
    remaining_minor: int


@dataclass(frozen=True)
class Receipt:
    to: str
    language: str
    customer_name: str
    amount_minor: int
    currency: str
    received_at: dt.datetime
    reference: str
    lines: tuple[ReceiptLine, ...]
    credit_minor: int
    balance_minor: int


def claim_receipt(session: Session, payment_id: int) -> Receipt | None:
    """Mark the payment's receipt as sent and return what to send; None if it was already
    claimed (a replay, another worker) or the customer has no email address.

    Claiming before sending means a crash between the commit and the SMTP hand-off loses
    that receipt rather than ever sending it twice.
    """
    claimed = session.execute(
        update(Payment)
        .where(Payment.id == payment_id, Payment.receipt_sent_at.is_(None))
        .values(receipt_sent_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        return None
    payment = session.get(Payment, payment_id)
    assert payment is not None
    customer = session.get(Customer, payment.customer_id)
    assert customer is not None
    contact = customer.primary_contact
    if contact is None or not contact.email:
        return None
    rows = session.execute(
        select(Invoice, PaymentAllocation.amount_minor)
        .join(PaymentAllocation, PaymentAllocation.invoice_id == Invoice.id)
        .where(PaymentAllocation.payment_id == payment.id)
        .order_by(Invoice.due_date, Invoice.id)
    ).all()
    balance = session.scalar(
        select(func.coalesce(func.sum(Invoice.amount_minor - Invoice.paid_minor), 0)).where(
            Invoice.customer_id == customer.id,
            Invoice.status == InvoiceStatus.OPEN,
            Invoice.currency == payment.currency,
        )
    )
    return Receipt(
        to=contact.email,
        language=customer.language,
        customer_name=contact.name or customer.name,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        received_at=payment.received_at,
        reference=payment.provider_reference,
        lines=tuple(
            ReceiptLine(invoice.number, int(applied), invoice.remaining_minor)
            for invoice, applied in rows
        ),
        credit_minor=payment.credit_minor,
        balance_minor=int(balance or 0),
    )


def send_receipt(env: Environment, mailer: Mailer, settings: Settings, receipt: Receipt) -> None:
    """Hand the receipt to SMTP; a failure is logged (the claim is kept: never twice)."""
    message = compose(
        env,
        "receipt",
        receipt.to,
        receipt.language,
        settings.base_url.split("//")[-1].split(":")[0].split("/")[0],
        company=settings.company,
        receipt=receipt,
        settings=settings,
    )
    try:
        mailer.send(message)
    except OSError:
        log.exception("could not send the receipt for payment %s", receipt.reference)
