"""Creating, changing and cancelling invoices: one path for the back office, imports and
the API. Every change lands on the timeline with its before -> after values.

What was paid is never lost: an invoice cancelled, or lowered below what was paid on it,
gives the surplus back to the payments as the customer's credit
(``payments.service.release_allocations``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from functools import cache
from typing import Any

from babel.numbers import list_currencies
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import clock
from portal.changes import Change, FieldErrors, Outcome, Problems, apply_changes, timeline_changes
from portal.customers.models import Customer
from portal.i18n import gettext_ as _
from portal.invoices.models import Invoice, InvoiceStatus

# Re-exported: callers (imports, forms) find every invoice edit here.
from portal.invoices.pdf_files import (
    PDF_MAX_BYTES,
    attach_pdf,
    check_pdf,
)
from portal.payments.models import Payment, PaymentMethod
from portal.payments.service import find_payment, record_payment, release_allocations
from portal.timeline.models import Actor
from portal.timeline.service import record

NUMBER_MAX = 64

__all__ = [
    "PDF_MAX_BYTES",
    "FieldErrors",
    "InvoiceFields",
    "Outcome",
    "attach_pdf",
    "cancel_invoice",
    "check_pdf",
    "create_invoice",
    "find_invoice",
    "invoice_fields",
    "mark_settled_elsewhere",
    "update_invoice",
    "upsert_invoice",
    "validate_invoice",
]


@dataclass(frozen=True)
class InvoiceFields:
    """Every field of an invoice a person or an import may set, as plain values."""

    number: str
    customer_id: int
    issue_date: dt.date | None
    due_date: dt.date | None
    currency: str
    amount_minor: int  # what the invoice asks for, in minor units of ``currency``


@cache
def currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def check_currency(problems: Problems, currency: str, field: str = "currency") -> str:
    code = currency.strip().upper()
    if code not in currencies():
        problems.add(field, _("Enter a currency code such as EUR."))
    return code


def check_amount(problems: Problems, amount_minor: int | None, field: str = "amount") -> None:
    if amount_minor is None or amount_minor <= 0:
        problems.add(field, _("Enter an amount greater than zero."))


def check_number(problems: Problems, number: str) -> str:
    number = number.strip()
    if not number:
        problems.add("number", _("Enter the number."))
    elif len(number) > NUMBER_MAX:
        problems.add("number", _("Keep it to %(max)d characters at most.", max=NUMBER_MAX))
    return number


def validate_invoice(
    session: Session, company_id: int, fields: InvoiceFields, invoice: Invoice | None = None
) -> InvoiceFields:
    """Checked and normalised; raises ``FieldErrors`` (field names: those of InvoiceFields,
    with ``amount`` for ``amount_minor``)."""
    problems = Problems()
    number = check_number(problems, fields.number)
    if number and "number" not in problems:
        other = find_invoice(session, company_id, number)
        if other is not None and other is not invoice:
            problems.add("number", _("Another invoice already has this number."))
    customer = session.get(Customer, fields.customer_id)
    if customer is None or customer.company_id != company_id:
        problems.add("customer_id", _("Choose a customer."))
    if fields.issue_date is None:
        problems.add("issue_date", _("Enter the issue date."))
    if fields.due_date is None:
        problems.add("due_date", _("Enter the due date."))
    elif fields.issue_date is not None and fields.due_date < fields.issue_date:
        problems.add("due_date", _("The due date cannot be before the issue date."))
    currency = check_currency(problems, fields.currency)
    check_amount(problems, fields.amount_minor)
    if invoice is not None and invoice.paid_minor > 0:
        if currency != invoice.currency:
            problems.add(
                "currency", _("Payments are recorded on this invoice: its currency stays.")
            )
        if fields.customer_id != invoice.customer_id:
            problems.add(
                "customer_id", _("Payments are recorded on this invoice: its customer stays.")
            )
    if invoice is not None and invoice.status is InvoiceStatus.CANCELLED:
        problems.add("form", _("This invoice is cancelled: it can no longer be changed."))
    problems.check()
    return dataclasses.replace(fields, number=number, currency=currency)


def find_invoice(session: Session, company_id: int, number: str) -> Invoice | None:
    return session.scalars(
        select(Invoice).where(Invoice.company_id == company_id, Invoice.number == number.strip())
    ).one_or_none()


def invoice_fields(invoice: Invoice) -> InvoiceFields:
    return InvoiceFields(**{name: getattr(invoice, name) for name in _FIELD_NAMES})


_FIELD_NAMES = [f.name for f in dataclasses.fields(InvoiceFields)]


def _event(
    session: Session,
    invoice: Invoice,
    action: str,
    actor: Actor,
    actor_id: str | None,
    **details: Any,
) -> None:
    record(
        session,
        company_id=invoice.company_id,
        customer_id=invoice.customer_id,
        actor=actor,
        actor_id=actor_id,
        action=action,
        subject_type="invoice",
        subject_id=invoice.id,
        details={"number": invoice.number, **details},
    )


def create_invoice(
    session: Session,
    company_id: int,
    fields: InvoiceFields,
    actor: Actor,
    actor_id: str | None = None,
) -> Invoice:
    """A new open invoice (timeline ``invoice.created``). Raises ``FieldErrors``."""
    fields = validate_invoice(session, company_id, fields)
    assert fields.issue_date is not None
    assert fields.due_date is not None
    invoice = Invoice(
        company_id=company_id,
        customer_id=fields.customer_id,
        number=fields.number,
        issue_date=fields.issue_date,
        due_date=fields.due_date,
        currency=fields.currency,
        amount_minor=fields.amount_minor,
        paid_minor=0,
        status=InvoiceStatus.OPEN,
        created_at=clock.now(),
    )
    session.add(invoice)
    session.flush()
    _event(
        session,
        invoice,
        "invoice.created",
        actor,
        actor_id,
        amount_minor=invoice.amount_minor,
        currency=invoice.currency,
        issue_date=invoice.issue_date.isoformat(),
        due_date=invoice.due_date.isoformat(),
    )
    return invoice


def _settle_status(invoice: Invoice) -> None:
    if invoice.status is InvoiceStatus.CANCELLED:
        return
    if invoice.paid_minor >= invoice.amount_minor:
        invoice.status = InvoiceStatus.PAID
        invoice.transfer_pending_until = None
    else:
        invoice.status = InvoiceStatus.OPEN


def update_invoice(
    session: Session,
    invoice: Invoice,
    fields: InvoiceFields,
    actor: Actor,
    actor_id: str | None = None,
) -> dict[str, Change]:
    """Apply ``fields``; return ``{field: (before, after)}``, empty if nothing changed.

    Lowered below what was paid, the invoice is paid and the surplus goes back to its
    payments as the customer's credit (``released_minor`` on the timeline); raised above
    it, a paid invoice opens again. A cancelled invoice cannot change.
    """
    fields = validate_invoice(session, invoice.company_id, fields, invoice)
    before_status = invoice.status
    changes = apply_changes(invoice, dataclasses.asdict(fields))
    if not changes:
        return changes
    released = 0
    if invoice.paid_minor > invoice.amount_minor:
        released = sum(
            release_allocations(
                session, invoice, invoice.paid_minor - invoice.amount_minor
            ).values()
        )
    _settle_status(invoice)
    if invoice.status is not before_status:
        changes["status"] = (before_status, invoice.status)
    invoice.updated_at = clock.now()
    details: dict[str, Any] = {"changes": timeline_changes(changes), "currency": invoice.currency}
    if released:
        details["released_minor"] = released
    _event(session, invoice, "invoice.updated", actor, actor_id, **details)
    return changes


def upsert_invoice(
    session: Session,
    company_id: int,
    fields: InvoiceFields,
    actor: Actor,
    actor_id: str | None = None,
) -> tuple[Invoice, Outcome]:
    """Create the invoice with this number, or bring it in line with ``fields``."""
    existing = find_invoice(session, company_id, fields.number)
    if existing is None:
        return create_invoice(session, company_id, fields, actor, actor_id), Outcome.CREATED
    changes = update_invoice(session, existing, fields, actor, actor_id)
    return existing, Outcome.CHANGED if changes else Outcome.UNCHANGED


def cancel_invoice(
    session: Session,
    invoice: Invoice,
    actor: Actor,
    actor_id: str | None = None,
    *,
    reason: str = "",
) -> bool:
    """Cancel the invoice: nothing is owed on it any more, no reminder names it.

    What was paid on it becomes the customer's credit. False if it was cancelled already.
    """
    if invoice.status is InvoiceStatus.CANCELLED:
        return False
    released = sum(release_allocations(session, invoice, invoice.paid_minor).values())
    before = invoice.status
    invoice.status = InvoiceStatus.CANCELLED
    invoice.transfer_pending_until = None
    invoice.updated_at = clock.now()
    _event(
        session,
        invoice,
        "invoice.cancelled",
        actor,
        actor_id,
        changes={"status": [before.value, InvoiceStatus.CANCELLED.value]},
        amount_minor=invoice.amount_minor,
        currency=invoice.currency,
        released_minor=released,
        reason=reason[:500],
    )
    return True


def mark_settled_elsewhere(
    session: Session,
    invoice: Invoice,
    actor: Actor,
    actor_id: str | None = None,
    *,
    provider: str = "import",
    on: dt.date | None = None,
) -> Payment | None:
    """The accounting system no longer lists this open invoice as open: it was settled
    outside Relance. Its remaining amount is recorded as a payment of method ``other``
    allocated to it alone, so totals, reminders and the timeline agree. None when there
    was nothing left to settle (calling it again does nothing).
    """
    if invoice.status is not InvoiceStatus.OPEN or invoice.remaining_minor == 0:
        return None
    customer = session.get(Customer, invoice.customer_id)
    assert customer is not None
    reference = f"settled:{invoice.id}:{invoice.paid_minor}"
    recorded = find_payment(session, provider, reference)
    if recorded is not None:
        return recorded
    remaining = invoice.remaining_minor
    result = record_payment(
        session,
        customer,
        amount_minor=remaining,
        currency=invoice.currency,
        method=PaymentMethod.OTHER,
        provider=provider,
        provider_reference=reference,
        received_at=clock.midday_in(on, customer.timezone) if on else None,
        invoice_ids=[invoice.id],
        actor=actor,
        actor_id=actor_id,
    )
    _event(
        session,
        invoice,
        "invoice.settled_elsewhere",
        actor,
        actor_id,
        amount_minor=remaining,
        currency=invoice.currency,
        payment_id=result.id,
    )
    return session.get(Payment, result.id)
