"""Credit notes (avoirs): issued, cancelled, with their PDF. See ``models.CreditNote``.

A credit note is applied as a payment of method ``credit_note`` through
``payments.service.record_payment``: to the invoices it names first, then (like any
payment) to the customer's other open invoices, oldest first; what is left is the
customer's credit. Cancelling it reverses that payment (``payment.cancelled``), which
reopens what it settled.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import clock
from portal.changes import FieldErrors, Outcome, Problems
from portal.customers.models import Customer
from portal.i18n import gettext_ as _
from portal.invoices.editing import check_amount, check_currency, check_number
from portal.invoices.models import CreditNote, CreditNoteStatus, Invoice, InvoiceStatus
from portal.payments.models import Payment, PaymentMethod, ReversalKind
from portal.payments.service import record_payment, reverse_payment
from portal.timeline.models import Actor
from portal.timeline.service import record

PROVIDER = "credit_note"
REASON_MAX = 500

__all__ = [
    "CreditNoteFields",
    "cancel_credit_note",
    "find_credit_note",
    "issue_credit_note",
    "upsert_credit_note",
]


@dataclass(frozen=True)
class CreditNoteFields:
    number: str
    issue_date: dt.date | None
    currency: str
    amount_minor: int
    reason: str = ""


def find_credit_note(session: Session, company_id: int, number: str) -> CreditNote | None:
    return session.scalars(
        select(CreditNote).where(
            CreditNote.company_id == company_id, CreditNote.number == number.strip()
        )
    ).one_or_none()


def _named_invoices(
    session: Session, customer: Customer, numbers: Sequence[str], currency: str, problems: Problems
) -> list[Invoice]:
    wanted = sorted({n.strip() for n in numbers if n.strip()})
    if not wanted:
        return []
    found = {
        i.number: i
        for i in session.scalars(
            select(Invoice).where(
                Invoice.company_id == customer.company_id,
                Invoice.customer_id == customer.id,
                Invoice.number.in_(wanted),
            )
        )
    }
    missing = [n for n in wanted if n not in found]
    if missing:
        problems.add(
            "applies_to",
            _(
                "No invoice of this customer has the number %(numbers)s.",
                numbers=", ".join(missing),
            ),
        )
    elif any(i.currency != currency or i.status is InvoiceStatus.CANCELLED for i in found.values()):
        problems.add(
            "applies_to",
            _("Name invoices of this customer in the credit note's currency, not cancelled."),
        )
    return [found[n] for n in wanted if n in found]


def issue_credit_note(
    session: Session,
    customer: Customer,
    fields: CreditNoteFields,
    applies_to_invoice_numbers: Sequence[str],
    actor: Actor,
    actor_id: str | None = None,
) -> CreditNote:
    """Record the credit note and apply it (timeline ``credit_note.issued`` and
    ``payment.recorded``). Raises ``FieldErrors`` (fields ``number``, ``issue_date``,
    ``currency``, ``amount``, ``reason``, ``applies_to``)."""
    problems = Problems()
    number = check_number(problems, fields.number)
    if (
        number
        and "number" not in problems
        and find_credit_note(session, customer.company_id, number)
    ):
        problems.add("number", _("Another credit note already has this number."))
    currency = check_currency(problems, fields.currency)
    check_amount(problems, fields.amount_minor)
    if fields.issue_date is None:
        problems.add("issue_date", _("Enter the issue date."))
    reason = " ".join(fields.reason.split())
    if len(reason) > REASON_MAX:
        problems.add("reason", _("Keep it to %(max)d characters at most.", max=REASON_MAX))
    invoices = _named_invoices(session, customer, applies_to_invoice_numbers, currency, problems)
    problems.check()
    assert fields.issue_date is not None
    note = CreditNote(
        company_id=customer.company_id,
        customer_id=customer.id,
        number=number,
        issue_date=fields.issue_date,
        currency=currency,
        amount_minor=fields.amount_minor,
        status=CreditNoteStatus.ISSUED,
        applies_to=[i.number for i in invoices],
        reason=reason,
        created_at=clock.now(),
    )
    session.add(note)
    session.flush()
    applied = record_payment(
        session,
        customer,
        amount_minor=note.amount_minor,
        currency=currency,
        method=PaymentMethod.CREDIT_NOTE,
        provider=PROVIDER,
        provider_reference=str(note.id),
        received_at=clock.midday_in(note.issue_date, customer.timezone),
        invoice_ids=[i.id for i in invoices],
        actor=actor,
        actor_id=actor_id,
    )
    note.payment_id = applied.id
    record(
        session,
        company_id=customer.company_id,
        customer_id=customer.id,
        actor=actor,
        actor_id=actor_id,
        action="credit_note.issued",
        subject_type="credit_note",
        subject_id=note.id,
        details={
            "number": note.number,
            "amount_minor": note.amount_minor,
            "currency": currency,
            "applies_to": note.applies_to,
            "payment_id": applied.id,
            "credit_minor": applied.credit_minor,
            "reason": reason,
        },
    )
    return note


def upsert_credit_note(
    session: Session,
    customer: Customer,
    fields: CreditNoteFields,
    applies_to_invoice_numbers: Sequence[str],
    actor: Actor,
    actor_id: str | None = None,
) -> tuple[CreditNote, Outcome]:
    """Issue the credit note unless one with this number exists. An existing one is left
    as it is when it says the same; another customer, amount or currency is refused (cancel
    it and issue a new one)."""
    existing = find_credit_note(session, customer.company_id, fields.number)
    if existing is None:
        note = issue_credit_note(
            session, customer, fields, applies_to_invoice_numbers, actor, actor_id
        )
        return note, Outcome.CREATED
    if (
        existing.customer_id != customer.id
        or existing.amount_minor != fields.amount_minor
        or existing.currency != fields.currency.strip().upper()
    ):
        raise FieldErrors(
            {"number": _("A different credit note with this number is already recorded.")}
        )
    return existing, Outcome.UNCHANGED


def cancel_credit_note(
    session: Session,
    note: CreditNote,
    actor: Actor,
    actor_id: str | None = None,
    *,
    reason: str = "",
) -> bool:
    """Undo the credit note: what it settled is owed again. False if already cancelled."""
    if note.status is CreditNoteStatus.CANCELLED:
        return False
    if note.payment_id is not None:
        payment = session.get(Payment, note.payment_id)
        assert payment is not None
        reverse_payment(
            session,
            payment,
            kind=ReversalKind.CANCELLATION,
            provider_reference=f"{PROVIDER}:{note.id}",
            amount_minor=payment.amount_minor,
            actor=actor,
            actor_id=actor_id,
        )
    note.status = CreditNoteStatus.CANCELLED
    note.updated_at = clock.now()
    record(
        session,
        company_id=note.company_id,
        customer_id=note.customer_id,
        actor=actor,
        actor_id=actor_id,
        action="credit_note.cancelled",
        subject_type="credit_note",
        subject_id=note.id,
        details={
            "number": note.number,
            "amount_minor": note.amount_minor,
            "currency": note.currency,
            "changes": {"status": ["issued", "cancelled"]},
            "reason": " ".join(reason.split())[:REASON_MAX],
        },
    )
    return True


def customer_credit_notes(session: Session, customer_id: int) -> list[CreditNote]:
    return list(
        session.scalars(
            select(CreditNote)
            .where(CreditNote.customer_id == customer_id)
            .order_by(CreditNote.issue_date.desc(), CreditNote.id.desc())
        )
    )
