"""Contacts' channel preferences learned from the providers: an SMS "STOP" opts the number
out of texts; a delivery status notification (RFC 3464) that an address does not exist
flags it, and the outbox uses the next channel (portal.reminders.outbox). Letters, the
legal notices, go out whatever the contacts' preferences."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from email.message import Message

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import clock
from portal.customers.models import Contact, Customer
from portal.reminders.models import MessageStatus, ReminderMessage
from portal.timeline.models import Actor
from portal.timeline.service import record

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "ARRET", "ARRÊT", "END", "QUIT"})
REMINDER_MESSAGE_ID = re.compile(r"<reminder-(\d+)\.[^@>]*@[^>]*>")


def is_stop(body: str) -> bool:
    words = body.strip().upper().split()
    return bool(words) and words[0].strip(".!") in STOP_WORDS


def opt_out_of_texts(session: Session, company_id: int, phone: str, body: str) -> int:
    """A text from ``phone``: if it says STOP, no contact with that number gets texts any
    more. Returns how many contacts changed (0 for any other text)."""
    if not is_stop(body) or not phone:
        return 0
    contacts = list(
        session.scalars(
            select(Contact)
            .join(Customer, Customer.id == Contact.customer_id)
            .where(
                Customer.company_id == company_id,
                Contact.phone == phone.strip(),
                Contact.accepts_sms.is_(True),
            )
        )
    )
    for contact in contacts:
        contact.accepts_sms = False
        _event(session, company_id, contact, "contact.sms_opted_out", phone=phone)
    return len(contacts)


@dataclass(frozen=True)
class Bounce:
    recipient: str
    status: str
    message_id: int | None  # our outbox row, from the original Message-ID


def parse_dsn(raw: bytes) -> list[Bounce]:
    """The permanently failed recipients of a delivery status notification (RFC 3464:
    multipart/report; report-type=delivery-status). Anything else gives nothing."""
    report = email.message_from_bytes(raw, policy=email.policy.compat32)
    if report.get_content_type() != "multipart/report":
        return []
    original = None
    statuses: list[Message] = []
    for part in report.walk():
        kind = part.get_content_type()
        if kind == "message/delivery-status":
            payload = part.get_payload()
            statuses += (
                [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []
            )
        elif kind in ("text/rfc822-headers", "message/rfc822") and original is None:
            text = part.as_string()  # the original's headers, with its Message-ID
            found = REMINDER_MESSAGE_ID.search(text)
            original = int(found.group(1)) if found else None
    bounces = []
    for fields in statuses:
        recipient = str(fields.get("Final-Recipient") or fields.get("Original-Recipient") or "")
        action = str(fields.get("Action") or "").strip().lower()
        status = str(fields.get("Status") or "").strip()
        if not recipient or action != "failed" or not status.startswith("5"):
            continue
        address = recipient.split(";", 1)[-1].strip().strip("<>")
        bounces.append(Bounce(address.lower(), status, original))
    return bounces


def record_bounces(session: Session, company_id: int, raw: bytes) -> list[Bounce]:
    """Flag the addresses a DSN reports as failed for good; mark the reminder bounced."""
    bounces = parse_dsn(raw)
    now = clock.now()
    for bounce in bounces:
        contacts = session.scalars(
            select(Contact)
            .join(Customer, Customer.id == Contact.customer_id)
            .where(
                Customer.company_id == company_id,
                func.lower(Contact.email) == bounce.recipient,
                Contact.email_bounced_at.is_(None),
            )
        )
        for contact in contacts:
            contact.email_bounced_at = now
            _event(
                session,
                company_id,
                contact,
                "contact.email_bounced",
                to=bounce.recipient,
                status=bounce.status,
            )
        message = session.get(ReminderMessage, bounce.message_id) if bounce.message_id else None
        if (
            message is not None
            and message.company_id == company_id
            and message.status is MessageStatus.SENT
        ):
            message.status = MessageStatus.BOUNCED
            message.last_error = f"DSN {bounce.status}"
            record(
                session,
                company_id=company_id,
                customer_id=message.customer_id,
                actor=Actor.PROVIDER,
                actor_id="dsn",
                action="reminder.bounced",
                subject_type="reminder_message",
                subject_id=message.id,
                details={"to": bounce.recipient, "error": f"DSN {bounce.status}"},
            )
    return bounces


def _event(
    session: Session, company_id: int, contact: Contact, action: str, **details: object
) -> None:
    record(
        session,
        company_id=company_id,
        customer_id=contact.customer_id,
        actor=Actor.PROVIDER,
        actor_id="dsn" if action == "contact.email_bounced" else "sms",
        action=action,
        subject_type="contact",
        subject_id=contact.id,
        details=dict(details),
    )
