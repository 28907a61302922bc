"""Receipt emails for recorded payments: claimed once, sent after the commit."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
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


def claim_receipts(session: Session, limit: int = 50) -> list[Receipt]:
    """Take up to ``limit`` owed receipts: cleared and stamped now, returned to be sent
    once the caller commits.

    Rows are claimed with FOR UPDATE SKIP LOCKED on PostgreSQL, so several workers share
    the work without sending one twice. Claiming before sending means a crash between the
    commit and the SMTP hand-off loses that receipt rather than ever sending it twice.
    """
    ids = list(
        session.scalars(
            select(Payment.id)
            .where(Payment.receipt_pending.is_(True))
            .order_by(Payment.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if not ids:
        return []
    session.execute(
        update(Payment)
        .where(Payment.id.in_(ids))
        .values(receipt_pending=False, receipt_sent_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    receipts = [_receipt(session, payment_id) for payment_id in ids]
    return [r for r in receipts if r is not None]


def _receipt(session: Session, payment_id: int) -> Receipt | None:
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
        sender_name=settings.company.name,
        company=settings.company,
        receipt=receipt,
        settings=settings,
    )
    try:
        mailer.send(message)
    except OSError:
        log.exception("could not send the receipt for payment %s", receipt.reference)


def deliver_pending(
    factory: Callable[[], Session],
    env: Environment,
    mailer: Mailer,
    settings: Settings,
    batch: int = 50,
) -> int:
    """Send every owed receipt, a batch per transaction; returns how many were sent."""
    sent = 0
    while True:
        with factory() as session, session.begin():
            receipts = claim_receipts(session, batch)
        for receipt in receipts:
            send_receipt(env, mailer, settings, receipt)
        sent += len(receipts)
        if len(receipts) < batch:
            return sent
