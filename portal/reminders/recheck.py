"""Claim time, for a whole batch at once: read the messages' customers, contacts and
invoices in a few queries, drop what was settled or paused, and render what is left.

The queries do not grow with the batch: one for the customers (and one for their
contacts), one for the invoices each message planned, one per local date for the invoices
still due (customers in one timezone share a date, so usually one or two).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, not_, select
from sqlalchemy.orm import Session, selectinload

from portal.customers.models import Contact, Customer
from portal.holds.service import reminders_paused
from portal.invoices.models import Invoice, InvoiceStatus
from portal.reminders.models import (
    Channel,
    MessageStatus,
    ReminderMessage,
    ReminderMessageInvoice,
    ReminderTask,
)
from portal.reminders.sendcheck import cap_counts, promises_broken
from portal.timeline.models import Actor

# Timeline rows gathered during a batch, written at its end (``timeline.record_many``).
Events = list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class StillDue:
    """An invoice of a message that may still be mentioned at send time."""

    id: int
    number: str
    due_date: dt.date
    currency: str
    remaining_minor: int

    def as_row(self) -> tuple[int, str, dt.date, str, int]:
        return self.id, self.number, self.due_date, self.currency, self.remaining_minor


@dataclass
class Batch:
    """What the claimed messages need, read once for all of them."""

    messages: list[ReminderMessage]
    customers: dict[int, Customer]
    planned: dict[int, set[int]]  # message id -> invoice ids it was planned with
    still_due: dict[int, list[StillDue]]  # message id -> invoices still due, by due date
    events: Events
    # Customer id -> messages counting towards the cap (sendcheck.cap_counts), plus those
    # this batch takes as it goes (``take``).
    counted: dict[int, int] = field(default_factory=dict)
    # Customer id -> the date of a promise broken since its last message.
    promises_broken: dict[int, dt.date] = field(default_factory=dict)

    def over_cap(self, message: ReminderMessage, cap: int) -> bool:
        """Would this message take its customer past the cap? (Calls never count.)"""
        if message.channel is Channel.TASK:
            return False
        return self.counted.get(message.customer_id, 0) >= cap

    def take(self, message: ReminderMessage) -> None:
        """This message leaves: it counts for the next ones of its customer."""
        if message.channel is not Channel.TASK:
            self.counted[message.customer_id] = self.counted.get(message.customer_id, 0) + 1


def local_today(now: dt.datetime, timezone: str) -> dt.date:
    return now.astimezone(ZoneInfo(timezone)).date()


def load_batch(session: Session, ids: list[int], now: dt.datetime) -> Batch:
    messages = list(
        session.scalars(
            select(ReminderMessage).where(ReminderMessage.id.in_(ids)).order_by(ReminderMessage.id)
        )
    )
    customer_ids = sorted({m.customer_id for m in messages})
    query = (
        select(Customer)
        .where(Customer.id.in_(customer_ids))
        .options(selectinload(Customer.contacts))
        .order_by(Customer.id)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Locked (in id order: two workers never wait for each other in a circle) before
        # their messages are counted, so that two workers claiming two messages of one
        # customer check the cap one after the other.
        query = query.with_for_update(of=Customer)
    customers = {c.id: c for c in session.scalars(query)}
    planned: dict[int, set[int]] = defaultdict(set)
    for message_id, invoice_id in session.execute(
        select(ReminderMessageInvoice.message_id, ReminderMessageInvoice.invoice_id).where(
            ReminderMessageInvoice.message_id.in_(ids)
        )
    ):
        planned[int(message_id)].add(int(invoice_id))
    by_date: dict[dt.date, list[int]] = defaultdict(list)
    for message in messages:
        by_date[local_today(now, customers[message.customer_id].timezone)].append(message.id)
    still_due: dict[int, list[StillDue]] = defaultdict(list)
    for today, message_ids in by_date.items():
        for row in _still_due(session, message_ids, today):
            still_due[int(row[0])].append(StillDue(*row[1:]))
    return Batch(
        messages,
        customers,
        planned,
        still_due,
        [],
        counted=cap_counts(session, customer_ids, ids, now),
        promises_broken=promises_broken(session, customer_ids),
    )


def _still_due(session: Session, message_ids: list[int], today: dt.date) -> Iterable[Any]:
    """Open, unpaid and not paused today: the rule planning applies, read again."""
    return session.execute(
        select(
            ReminderMessageInvoice.message_id,
            Invoice.id,
            Invoice.number,
            Invoice.due_date,
            Invoice.currency,
            Invoice.amount_minor - Invoice.paid_minor,
        )
        .join(Invoice, ReminderMessageInvoice.invoice_id == Invoice.id)
        .where(
            ReminderMessageInvoice.message_id.in_(message_ids),
            Invoice.status == InvoiceStatus.OPEN,
            Invoice.amount_minor > Invoice.paid_minor,
            not_(reminders_paused(today)),
        )
        .order_by(ReminderMessageInvoice.message_id, Invoice.due_date, Invoice.id)
    ).all()


def event(events: Events, message: ReminderMessage, action: str, **details: object) -> None:
    events.append(
        {
            "company_id": message.company_id,
            "customer_id": message.customer_id,
            "actor": Actor.SYSTEM,
            "actor_id": "reminders",
            "action": action,
            "subject_type": "reminder_message",
            "subject_id": message.id,
            "details": {"step": message.step, "channel": str(message.channel), **details},
        }
    )


def cancel(
    session: Session, events: Events, message: ReminderMessage, reason: str, **details: object
) -> None:
    message.status = MessageStatus.CANCELLED
    message.claimed_until = None
    # The invoices may be reminded again at this step once their pause ends.
    session.execute(
        delete(ReminderMessageInvoice).where(ReminderMessageInvoice.message_id == message.id)
    )
    event(events, message, "reminder.cancelled", reason=reason, **details)


def drop_invoices(session: Session, message: ReminderMessage, dropped: list[int]) -> None:
    session.execute(
        delete(ReminderMessageInvoice).where(
            ReminderMessageInvoice.message_id == message.id,
            ReminderMessageInvoice.invoice_id.in_(dropped),
        )
    )


def channel_and_recipient(
    customer: Customer, planned: Channel
) -> tuple[Channel, Contact | None, str]:
    """The planned channel if someone accepts it, else the next one: texts fall back to
    email and email to texts (an opted-out number, a bounced address). Letters (legal
    notices) go to the customer's postal address whatever the contacts' preferences."""
    if planned is Channel.LETTER:
        return planned, reminder_contact(customer, planned), customer.name
    order = (planned, Channel.EMAIL if planned is Channel.SMS else Channel.SMS)
    for channel in order:
        contact = reminder_contact(customer, channel)
        if contact is not None:
            address = contact.phone if channel is Channel.SMS else contact.email
            return channel, contact, address or ""
    return planned, None, ""


def reminder_contact(customer: Customer, channel: Channel) -> Contact | None:
    """Who gets this reminder: among the contacts who receive reminders and accept the
    channel (and have an address for it), the primary one, else the first."""
    contacts = [c for c in customer.contacts if c.receives_reminders and _accepts(c, channel)]
    primary = [c for c in contacts if c.is_primary]
    chosen = primary or contacts
    return chosen[0] if chosen else None


def _accepts(contact: Contact, channel: Channel) -> bool:
    if channel is Channel.EMAIL:
        return contact.accepts_email and bool(contact.email) and contact.email_bounced_at is None
    if channel is Channel.SMS:
        return contact.accepts_sms and bool(contact.phone)
    if channel is Channel.LETTER:
        return contact.accepts_letters
    return contact.accepts_calls


def open_task(
    session: Session,
    events: Events,
    message: ReminderMessage,
    customer: Customer,
    invoices: list[StillDue],
    now: dt.datetime,
) -> None:
    task = ReminderTask(
        company_id=message.company_id,
        customer_id=customer.id,
        message_id=message.id,
        step=message.step,
        title=f"{customer.name}: " + ", ".join(invoice.number for invoice in invoices),
        created_at=now,
    )
    session.add(task)
    session.flush()
    message.status = MessageStatus.SENT
    message.sent_at = now
    message.claimed_until = None
    event(
        events,
        message,
        "reminder.task_opened",
        task_id=task.id,
        invoices=[invoice.number for invoice in invoices],
    )
