"""Factories for test data: explicit values, sensible defaults, no shared state."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from sqlalchemy.orm import Session

from portal import clock
from portal.company.models import Company
from portal.customers.models import Contact, Customer
from portal.invoices.models import Invoice, InvoiceStatus

_sequence = itertools.count(1)


def make_customer(
    db: Session, company: Company, *, email: str | None = None, **values: Any
) -> Customer:
    n = next(_sequence)
    customer = Customer(
        company_id=company.id,
        reference=values.pop("reference", f"T-{n:05d}"),
        name=values.pop("name", f"Customer {n}"),
        language=values.pop("language", "fr"),
        timezone=values.pop("timezone", "Europe/Paris"),
        link_version=values.pop("link_version", 1),
        created_at=clock.now(),
        **values,
    )
    customer.contacts.append(
        Contact(name=f"Contact {n}", email=email or f"contact{n}@example.com", is_primary=True)
    )
    db.add(customer)
    db.flush()
    return customer


def make_invoice(
    db: Session,
    customer: Customer,
    *,
    amount_minor: int = 10_000,
    due_in_days: int = 10,
    **values: Any,
) -> Invoice:
    n = next(_sequence)
    due = values.pop("due_date", clock.now().date() + dt.timedelta(days=due_in_days))
    invoice = Invoice(
        company_id=customer.company_id,
        customer_id=customer.id,
        number=values.pop("number", f"INV-{n:06d}"),
        issue_date=values.pop("issue_date", due - dt.timedelta(days=30)),
        due_date=due,
        currency=values.pop("currency", "EUR"),
        amount_minor=amount_minor,
        paid_minor=values.pop("paid_minor", 0),
        status=values.pop("status", InvoiceStatus.OPEN),
        created_at=clock.now(),
        **values,
    )
    db.add(invoice)
    db.flush()
    return invoice


def make_payment(
    db: Session, invoice: Invoice, amount_minor: int, received_at: dt.datetime | None = None
) -> None:
    """A bank transfer allocated to ``invoice``, through the payments service."""
    from portal.payments.models import PaymentMethod
    from portal.payments.service import record_payment

    customer = db.get(Customer, invoice.customer_id)
    assert customer is not None
    record_payment(
        db,
        customer,
        amount_minor=amount_minor,
        currency=invoice.currency,
        method=PaymentMethod.TRANSFER,
        provider="bank",
        provider_reference=f"factory-{next(_sequence)}",
        received_at=received_at,
        invoice_ids=[invoice.id],
    )
    db.flush()


def make_sent_reminder(
    db: Session,
    customer: Customer,
    sent_at: dt.datetime,
    invoices: list[Invoice],
    *,
    step: str = "first",
    channel: str = "email",
) -> None:
    """A reminder message of the standard scenario, sent at ``sent_at`` about ``invoices``."""
    from portal.reminders.models import (
        Channel,
        MessageStatus,
        ReminderMessage,
        ReminderMessageInvoice,
    )

    row = ReminderMessage(
        company_id=customer.company_id,
        customer_id=customer.id,
        scenario="standard",
        step=step,
        cycle=sent_at.date().isoformat(),
        channel=Channel(channel),
        template="reminder_1",
        status=MessageStatus.SENT,
        next_attempt_at=sent_at,
        created_at=sent_at,
        sent_at=sent_at,
    )
    db.add(row)
    db.flush()
    for invoice in invoices:
        db.add(
            ReminderMessageInvoice(
                message_id=row.id, invoice_id=invoice.id, step=step, offset_days=0
            )
        )
    db.flush()
