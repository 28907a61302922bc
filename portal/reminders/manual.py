"""A reminder sent by hand from the customer's page: preview, edit, queue.

It goes through the same outbox as the scenario's messages: at send time its invoices are
read again (paid or paused ones dropped, nothing sent if none is left), the company's
freeze, quiet periods and cap apply, a fresh link replaces ``{link}``, and the timeline
records it. The form's token is the message's cycle: posting the same form twice queues
one message. A manual message does not move the invoices along their scenario.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from jinja2 import Environment
from sqlalchemy import not_, select
from sqlalchemy.orm import Session

from portal import clock
from portal.customers.models import Customer
from portal.holds.service import reminders_paused
from portal.invoices.models import Invoice, InvoiceStatus
from portal.reminders.gsm import SMS_LIMIT, gsm7_length, to_gsm7
from portal.reminders.models import (
    Channel,
    MessageStatus,
    ReminderMessage,
    ReminderMessageInvoice,
)
from portal.reminders.planning import MANUAL_STEP_PREFIX
from portal.reminders.policy import Policy, counted_messages
from portal.reminders.render import (
    LINK_MARK,
    ReminderContent,
    RenderError,
    due_invoices,
    render_email,
    render_sms,
)
from portal.settings import CompanyIdentity
from portal.timeline.models import Actor
from portal.timeline.service import record

TEMPLATES = ("reminder_overdue", "reminder_courtesy")
CHANNELS = (Channel.EMAIL, Channel.SMS, Channel.LETTER)
TOKEN = re.compile(r"^[0-9a-f]{16}$")
TEXT_MAX = 10_000
# A portal link is the base URL, "/l/" and about 45 characters of token.
LINK_ALLOWANCE = 50


class ManualError(Exception):
    """The reminder cannot be sent as asked; ``key`` names why (translated by the web)."""

    def __init__(self, key: str, field: str = "channel") -> None:
        super().__init__(key)
        self.key = key
        self.field = field


@dataclass(frozen=True)
class Draft:
    channel: Channel
    template: str
    subject: str
    text: str
    invoice_numbers: list[str]


def _due_now(session: Session, customer: Customer, today: dt.date) -> list[Invoice]:
    return list(
        session.scalars(
            select(Invoice)
            .where(
                Invoice.customer_id == customer.id,
                Invoice.status == InvoiceStatus.OPEN,
                Invoice.amount_minor > Invoice.paid_minor,
                not_(reminders_paused(today)),
            )
            .order_by(Invoice.due_date, Invoice.id)
        )
    )


def _chosen(channel: str, template: str) -> Channel:
    try:
        chosen = Channel(channel)
    except ValueError:
        raise ManualError("channel_invalid") from None
    if chosen not in CHANNELS:
        raise ManualError("channel_invalid")
    if template not in TEMPLATES:
        raise ManualError("template_invalid", "template")
    return chosen


def _today(customer: Customer) -> dt.date:
    return clock.now().astimezone(ZoneInfo(customer.timezone)).date()


def draft(
    session: Session,
    env: Environment,
    company: CompanyIdentity,
    customer: Customer,
    *,
    channel: str,
    template: str,
) -> Draft:
    """The message as it would leave now, ``{link}`` standing for the fresh link."""
    chosen = _chosen(channel, template)
    if chosen is Channel.LETTER:
        template = "formal_notice"
    today = _today(customer)
    invoices = _due_now(session, customer, today)
    if not invoices:
        raise ManualError("nothing_due")
    rows, totals = due_invoices(
        [(i.id, i.number, i.due_date, i.currency, i.remaining_minor) for i in invoices],
        today,
        penalties=False,
        ecb_rate="0",
    )
    contact = next((c for c in customer.contacts if c.is_primary), None)
    content = ReminderContent(
        customer_name=customer.name,
        contact_name=contact.name if contact else "",
        language=customer.language,
        step="manual",
        link=LINK_MARK,
        today=today,
        invoices=rows,
        totals=totals,
    )
    numbers = [invoice.number for invoice in invoices]
    if chosen is Channel.EMAIL:
        email = render_email(env, template, content, company)
        return Draft(chosen, template, email.subject, email.text, numbers)
    if chosen is Channel.SMS:
        return Draft(chosen, template, "", render_sms(env, template, content, company), numbers)
    return Draft(chosen, template, "", "", numbers)


def sms_length(text: str) -> int:
    """Septets once the link replaces its mark (an estimate of the link's length)."""
    filled = text.replace(LINK_MARK, "x" * LINK_ALLOWANCE)
    return gsm7_length(to_gsm7(" ".join(filled.split())))


def queue(
    session: Session,
    customer: Customer,
    *,
    user_id: int,
    policy: Policy,
    token: str,
    channel: str,
    template: str,
    subject: str,
    text: str,
) -> ReminderMessage:
    """Put the reminder in the outbox (once per form token); the worker sends it."""
    if not TOKEN.match(token):
        raise ManualError("token_invalid")
    chosen = _chosen(channel, template)
    step = MANUAL_STEP_PREFIX + token
    existing = session.scalar(
        select(ReminderMessage).where(
            ReminderMessage.customer_id == customer.id, ReminderMessage.step == step
        )
    )
    if existing is not None:
        return existing  # the same form posted again
    if policy.frozen:
        raise ManualError("frozen")
    text = text.replace("\r\n", "\n").strip()
    if chosen is not Channel.LETTER:
        if not text:
            raise ManualError("text_required", "text")
        if len(text) > TEXT_MAX:
            raise ManualError("text_too_long", "text")
        if chosen is Channel.SMS and sms_length(text) > SMS_LIMIT:
            raise ManualError("sms_too_long", "text")
        if chosen is Channel.EMAIL and not subject.strip():
            raise ManualError("subject_required", "subject")
    now = clock.now()
    if counted_messages(session, [customer.id], now, pending=True).get(customer.id, 0) >= (
        policy.monthly_cap
    ):
        raise ManualError("cap_reached")
    today = _today(customer)
    invoices = _due_now(session, customer, today)
    if not invoices:
        raise ManualError("nothing_due")
    message = ReminderMessage(
        company_id=customer.company_id,
        customer_id=customer.id,
        scenario="manual",
        step=step,
        cycle=today.isoformat(),
        channel=chosen,
        template="formal_notice" if chosen is Channel.LETTER else template,
        status=MessageStatus.PENDING,
        next_attempt_at=now,
        attempts=0,
        created_at=now,
        requested_by_user_id=user_id,
        edited_subject=subject.strip()[:255] or None if chosen is Channel.EMAIL else None,
        edited_text=text if chosen is not Channel.LETTER else None,
    )
    session.add(message)
    session.flush()
    session.add_all(
        ReminderMessageInvoice(
            message_id=message.id, invoice_id=invoice.id, step=step, offset_days=0
        )
        for invoice in invoices
    )
    record(
        session,
        company_id=customer.company_id,
        customer_id=customer.id,
        actor=Actor.USER,
        actor_id=str(user_id),
        action="reminder.queued",
        subject_type="reminder_message",
        subject_id=message.id,
        details={
            "step": step,
            "channel": chosen.value,
            "manual": True,
            "invoices": [invoice.number for invoice in invoices],
            "send_after": now.isoformat(),
        },
    )
    return message


__all__ = ["Draft", "ManualError", "RenderError", "draft", "queue", "sms_length"]
