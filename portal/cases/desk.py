"""A credit manager's desk work outside cases: pausing reminders, internal notes."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from portal.customers.models import Customer
from portal.invoices.models import Invoice
from portal.timeline.models import Actor
from portal.timeline.service import record
from portal.users.models import User

NOTE_MAX = 2000
# A pause longer than this is a decision for the accounting system, not the portal.
PAUSE_MAX_DAYS = 366


class DeskError(ValueError):
    NOTE_REQUIRED = "note_required"
    NOTE_TOO_LONG = "note_too_long"
    PAUSE_DATE_INVALID = "pause_date_invalid"

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _check_until(until: dt.date | None, today: dt.date) -> None:
    if until is not None and not today <= until <= today + dt.timedelta(days=PAUSE_MAX_DAYS):
        raise DeskError(DeskError.PAUSE_DATE_INVALID)


def pause_customer(
    session: Session, customer: Customer, user: User, until: dt.date | None, today: dt.date
) -> None:
    """Hold every reminder of the customer through ``until``; None resumes them."""
    _check_until(until, today)
    customer.reminders_paused_until = until
    record(
        session,
        company_id=customer.company_id,
        customer_id=customer.id,
        actor=Actor.USER,
        actor_id=str(user.id),
        action="reminders.paused" if until else "reminders.resumed",
        subject_type="customer",
        subject_id=customer.id,
        details={"until": until.isoformat() if until else None},
    )


def pause_invoice(
    session: Session, invoice: Invoice, user: User, until: dt.date | None, today: dt.date
) -> None:
    """Hold the reminders of one invoice through ``until``; None resumes them."""
    _check_until(until, today)
    invoice.reminders_paused_until = until
    record(
        session,
        company_id=invoice.company_id,
        customer_id=invoice.customer_id,
        actor=Actor.USER,
        actor_id=str(user.id),
        action="reminders.paused" if until else "reminders.resumed",
        subject_type="invoice",
        subject_id=invoice.id,
        details={"number": invoice.number, "until": until.isoformat() if until else None},
    )


def add_note(session: Session, customer: Customer, user: User, text: str) -> None:
    """An internal note on the customer's timeline (never shown to the debtor)."""
    note = text.strip()
    if not note:
        raise DeskError(DeskError.NOTE_REQUIRED)
    if len(note) > NOTE_MAX:
        raise DeskError(DeskError.NOTE_TOO_LONG)
    record(
        session,
        company_id=customer.company_id,
        customer_id=customer.id,
        actor=Actor.USER,
        actor_id=str(user.id),
        action="note.added",
        subject_type="customer",
        subject_id=customer.id,
        details={"text": note},
    )
