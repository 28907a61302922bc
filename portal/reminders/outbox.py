"""Delivering the outbox: claim, re-check, render, send after commit, record.

Exactly once, and where the boundary lies:

1. *Claim* (one transaction): take due rows (``pending`` and due, or ``sending`` whose
   lease expired because a worker died) with ``SELECT … FOR UPDATE SKIP LOCKED`` on
   PostgreSQL, so two workers never take the same row; on SQLite the claim's first
   statement is an UPDATE, which takes the database's write lock (one writer at a time).
   In the same transaction the invoices are read again: paid, cancelled, paused
   (holds, declared transfers, manual pauses) ones are dropped, the message is rendered
   from what is left (or cancelled, on the timeline, when nothing is), and the row
   becomes ``sending`` with a lease (``claimed_until``).
2. *Send*, after the commit: SMTP, the SMS provider, or the letter file.
3. *Record* (one transaction): ``sent`` with its timeline event, or a retry with
   exponential backoff, ``failed`` after the last attempt, ``bounced`` when the recipient
   was refused.

A worker killed before step 2 completes leaves a ``sending`` row whose lease expires: the
next claim takes it again and sends it (nothing is lost). A worker killed after the SMTP
server accepted the message but before step 3 committed — a window of one round trip —
sends it again after the lease: delivery to SMTP is *at least once*, and the repeat
carries the same ``Message-ID`` (derived from the outbox row) so mail clients and
archives recognise it as the same message; the SMS provider gets the same idempotency
key. Everything before the provider (planning, claiming) is exactly once, enforced by the
unique (customer, step, cycle) key and the claim.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import Environment, TemplateNotFound
from sqlalchemy import delete, not_, or_, select, update
from sqlalchemy.orm import Session, selectinload

from portal import clock
from portal.branding.service import Look
from portal.company.models import Company
from portal.customers.models import Contact, Customer
from portal.holds.service import reminders_paused
from portal.invoices.models import Invoice, InvoiceStatus
from portal.links.service import issue_link
from portal.links.tokens import LinkSigner
from portal.mail.sender import Mailer, OutgoingEmail
from portal.money import format_money
from portal.reminders.editor.texts import CustomTexts
from portal.reminders.letters import (
    REGISTERED_TEMPLATE,
    LocalRegisteredMail,
    RegisteredLetter,
    RegisteredMailProvider,
)
from portal.reminders.models import (
    Channel,
    MessageStatus,
    ReminderMessage,
    ReminderMessageInvoice,
    ReminderTask,
    TaskKind,
    prefer_indexes,
    take_write_lock,
)
from portal.reminders.policy import Policy, load_policy
from portal.reminders.render import (
    ReminderContent,
    RenderError,
    due_invoices,
    render_edited,
    render_email,
    render_letter,
    render_sms,
)
from portal.reminders.schedule import BusinessCalendar
from portal.reminders.sendcheck import (
    after_quiet_period,
    over_cap,
    promise_broken_since_last_message,
)
from portal.reminders.sms import DeliveryError, Sms, SmsProvider
from portal.settings import Settings
from portal.timeline.models import Actor
from portal.timeline.service import record

log = logging.getLogger(__name__)

CLAIM_BATCH = 20
MAX_BACKOFF_SECONDS = 6 * 3600


def new_worker_id() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Delivery:
    """A claimed message, rendered, to send after the claim commits."""

    message_id: int
    channel: Channel
    recipient: str
    subject: str
    text: str
    html: str
    mime_message_id: str
    letter_pdf: bytes = b""
    # A registered letter for the postal provider (PORTAL_REMINDER_REGISTERED_LETTERS=local).
    registered: bool = False


@dataclass(frozen=True)
class Outcome:
    ok: bool
    external_id: str = ""
    error: str = ""
    permanent: bool = False


@dataclass
class DeliveryContext:
    """What delivering needs besides the database."""

    settings: Settings
    templates: Environment
    signer: LinkSigner
    mailer: Mailer
    sms: SmsProvider
    # Demo and tests: send at once instead of waiting for business hours.
    any_time: bool = False
    # The company's look for this round (worker.apply_branding); None: the configured one.
    brand: Look | None = None
    # Texts written in the back office for this round (worker.apply_branding); None: files.
    custom_texts: CustomTexts | None = None

    # Registered letters; None: the local stand-in (portal.reminders.letters).
    registered_provider: RegisteredMailProvider | None = None

    def registered_mail(self) -> RegisteredMailProvider:
        if self.registered_provider is None:
            folder = self.settings.reminders.letters_dir / "registered"
            self.registered_provider = LocalRegisteredMail(folder)
        return self.registered_provider

    @property
    def calendar(self) -> BusinessCalendar:
        r = self.settings.reminders
        return BusinessCalendar(
            r.holiday_country or self.settings.company.country, r.send_from_hour, r.send_until_hour
        )

    @property
    def mail_domain(self) -> str:
        return self.settings.base_url.split("//")[-1].split(":")[0].split("/")[0] or "localhost"


def _claim_ids(session: Session, worker_id: str, now: dt.datetime, limit: int) -> list[int]:
    due = or_(
        (ReminderMessage.status == MessageStatus.PENDING)
        & (ReminderMessage.next_attempt_at <= now),
        (ReminderMessage.status == MessageStatus.SENDING) & (ReminderMessage.claimed_until < now),
    )
    candidates = (
        select(ReminderMessage.id)
        .where(due)
        .order_by(ReminderMessage.next_attempt_at, ReminderMessage.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        return list(session.scalars(candidates.with_for_update(skip_locked=True)))
    # SQLite: an UPDATE first, so this transaction holds the write lock from its start.
    claimed = session.execute(
        update(ReminderMessage)
        .where(ReminderMessage.id.in_(candidates.scalar_subquery()))
        .values(claimed_by=worker_id)
        .returning(ReminderMessage.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(int(row[0]) for row in claimed)


def _still_due(session: Session, message: ReminderMessage, today: dt.date) -> list[Invoice]:
    return list(
        session.scalars(
            select(Invoice)
            .join(ReminderMessageInvoice, ReminderMessageInvoice.invoice_id == Invoice.id)
            .where(
                ReminderMessageInvoice.message_id == message.id,
                Invoice.status == InvoiceStatus.OPEN,
                Invoice.amount_minor > Invoice.paid_minor,
                not_(reminders_paused(today)),
            )
            .order_by(Invoice.due_date, Invoice.id)
        )
    )


def _event(session: Session, message: ReminderMessage, action: str, **details: object) -> None:
    record(
        session,
        company_id=message.company_id,
        customer_id=message.customer_id,
        actor=Actor.SYSTEM,
        actor_id="reminders",
        action=action,
        subject_type="reminder_message",
        subject_id=message.id,
        details={"step": message.step, "channel": str(message.channel), **details},
    )


def _cancel(session: Session, message: ReminderMessage, reason: str, **details: object) -> None:
    message.status = MessageStatus.CANCELLED
    message.claimed_until = None
    # The invoices may be reminded again at this step once their pause ends.
    session.execute(
        delete(ReminderMessageInvoice).where(ReminderMessageInvoice.message_id == message.id)
    )
    _event(session, message, "reminder.cancelled", reason=reason, **details)


def claim(
    session: Session, ctx: DeliveryContext, worker_id: str, *, limit: int = CLAIM_BATCH
) -> list[Delivery]:
    """Claim due messages, re-check and render them; the caller commits, then sends."""
    now = clock.now()
    prefer_indexes(session)
    ids = _claim_ids(session, worker_id, now, limit)
    if not ids:
        return []
    messages = list(
        session.scalars(
            select(ReminderMessage).where(ReminderMessage.id.in_(ids)).order_by(ReminderMessage.id)
        )
    )
    customers = {
        c.id: c
        for c in session.scalars(
            select(Customer)
            .where(Customer.id.in_({m.customer_id for m in messages}))
            .options(selectinload(Customer.contacts))
        )
    }
    lease = now + dt.timedelta(seconds=ctx.settings.reminders.lease_seconds)
    policies: dict[int, Policy] = {}
    deliveries = []
    for message in messages:
        customer = customers[message.customer_id]
        if message.company_id not in policies:
            policies[message.company_id] = load_policy(
                session, message.company_id, ctx.settings.reminders
            )
        delivery = _prepare(session, ctx, message, customer, now, policies[message.company_id])
        if delivery is None:
            continue
        message.status = MessageStatus.SENDING
        message.claimed_by = worker_id
        message.claimed_until = lease
        message.attempts += 1
        deliveries.append(delivery)
    session.flush()
    return deliveries


def _prepare(
    session: Session,
    ctx: DeliveryContext,
    message: ReminderMessage,
    customer: Customer,
    now: dt.datetime,
    policy: Policy,
) -> Delivery | None:
    if not ctx.any_time and message.channel is not Channel.TASK:
        # A worker that was down may wake up at night: messages still wait for business hours.
        opens = ctx.calendar.next_send_time(now, customer.timezone)
        if opens > now:
            message.next_attempt_at = opens
            message.claimed_until = None
            return None
    if policy.frozen:  # stays pending until reminders are thawed
        message.claimed_until = None
        return None
    reopens = after_quiet_period(policy, ctx.calendar, customer.timezone, now)
    if reopens is not None:
        message.next_attempt_at = reopens
        message.claimed_until = None
        return None
    today = now.astimezone(ZoneInfo(customer.timezone)).date()
    if customer.reminders_paused_until is not None and customer.reminders_paused_until >= today:
        _cancel(session, message, "customer_paused")
        return None
    planned_ids = set(
        session.scalars(
            select(ReminderMessageInvoice.invoice_id).where(
                ReminderMessageInvoice.message_id == message.id
            )
        )
    )
    invoices = _still_due(session, message, today)
    kept = {invoice.id for invoice in invoices}
    dropped = sorted(planned_ids - kept)
    if not invoices:
        _cancel(session, message, "nothing_due", dropped_invoices=dropped)
        return None
    if dropped:
        session.execute(
            delete(ReminderMessageInvoice).where(
                ReminderMessageInvoice.message_id == message.id,
                ReminderMessageInvoice.invoice_id.in_(dropped),
            )
        )
    if message.channel is Channel.TASK:
        _open_task(session, message, customer, invoices, now)
        return None
    if over_cap(session, message, policy, now):
        _cancel(session, message, "monthly_cap", cap=policy.monthly_cap)
        return None
    channel, contact, recipient = _channel_and_recipient(customer, message.channel)
    if not recipient:
        _cancel(session, message, "no_recipient")
        return None
    settings = ctx.settings
    link = issue_link(session, ctx.signer, settings.base_url, customer, purpose="reminder")
    rows, totals = due_invoices(
        [(i.id, i.number, i.due_date, i.currency, i.remaining_minor) for i in invoices],
        today,
        penalties=settings.reminders.formal_notice_penalties
        and message.template.startswith("formal_notice"),
        ecb_rate=settings.reminders.ecb_rate,
    )
    content = ReminderContent(
        customer_name=customer.name,
        contact_name=contact.name if contact else "",
        language=customer.language,
        country=customer.country,
        step=message.step,
        link=link,
        today=today,
        invoices=rows,
        penalties=settings.reminders.formal_notice_penalties
        and message.template.startswith("formal_notice"),
        ecb_rate=settings.reminders.ecb_rate,
        totals=totals,
        promise_broken_on=promise_broken_since_last_message(session, customer.id),
    )
    subject, text_body, html, pdf = "", "", "", b""
    template = message.template if message.channel is channel else "reminder_overdue"
    custom = (
        ctx.custom_texts.find(channel, template, content.language) if ctx.custom_texts else None
    )
    try:
        if channel is not Channel.LETTER and message.edited_text is not None:
            subject, text_body, html = render_edited(message, channel, link)
        elif channel is Channel.EMAIL:
            email = (
                custom.email(ctx.templates, content, settings.company)
                if custom
                else render_email(ctx.templates, template, content, settings.company)
            )
            subject, text_body, html = email.subject, email.text, email.html
        elif channel is Channel.SMS:
            text_body = (
                custom.sms(content, settings.company)
                if custom
                else render_sms(
                    ctx.templates,
                    _sms_template(ctx.templates, message.template),
                    content,
                    settings.company,
                )
            )
        else:
            company = session.get(Company, message.company_id)
            assert company is not None
            brand = ctx.brand.pdf_brand(content.language) if ctx.brand else None
            registered = message.template == REGISTERED_TEMPLATE
            pdf = render_letter(company, customer, content, brand, registered=registered)
            if registered and settings.reminders.registered_letters == "task":
                _post_letter_task(session, message, customer, now)
            subject = f"letter-{message.id}.pdf"
            text_body = "\n".join(
                f"{r.number}: {format_money(r.remaining_minor, r.currency, content.language)}"
                for r in rows
            )
    except RenderError as error:
        message.status = MessageStatus.FAILED
        message.last_error = str(error)[:500]
        _event(session, message, "reminder.failed", error=str(error)[:300])
        return None
    message.recipient = recipient[:254]
    message.subject = subject[:255] or None
    message.body_text = text_body
    message.body_html = html or None
    return Delivery(
        message_id=message.id,
        channel=channel,
        recipient=recipient,
        subject=subject,
        text=text_body,
        html=html,
        # The same Message-ID on every attempt: a repeat after a crash is recognisable.
        mime_message_id=f"<reminder-{message.id}.{message.cycle}@{ctx.mail_domain}>",
        letter_pdf=pdf,
        registered=channel is Channel.LETTER
        and message.template == REGISTERED_TEMPLATE
        and settings.reminders.registered_letters != "task",
    )


def _sms_template(env: Environment, template: str) -> str:
    """The email's template as a text when an email falls back to SMS and one exists."""
    try:
        env.get_template(f"sms/{template}.txt")
    except TemplateNotFound:
        return "reminder_overdue"
    return template


def _channel_and_recipient(
    customer: Customer, planned: Channel
) -> tuple[Channel, Contact | None, str]:
    """The planned channel if someone accepts it, else the next one: texts fall back to
    email and email to texts (an opted-out number, a bounced address). Letters (legal
    notices) go to the customer's postal address whatever the contacts' preferences."""
    if planned is Channel.LETTER:
        return planned, _reminder_contact(customer, planned), customer.name
    order = (planned, Channel.EMAIL if planned is Channel.SMS else Channel.SMS)
    for channel in order:
        contact = _reminder_contact(customer, channel)
        if contact is not None:
            address = contact.phone if channel is Channel.SMS else contact.email
            return channel, contact, address or ""
    return planned, None, ""


def _reminder_contact(customer: Customer, channel: Channel) -> Contact | None:
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


def _post_letter_task(
    session: Session, message: ReminderMessage, customer: Customer, now: dt.datetime
) -> None:
    """A registered letter to post by hand: a task that asks for its tracking number."""
    if session.scalar(select(ReminderTask.id).where(ReminderTask.message_id == message.id)):
        return  # claimed again after a failed attempt: the task exists
    session.add(
        ReminderTask(
            company_id=message.company_id,
            customer_id=customer.id,
            message_id=message.id,
            kind=TaskKind.POST_LETTER,
            step=message.step,
            title=f"{customer.name}: registered letter",
            created_at=now,
        )
    )


def _open_task(
    session: Session,
    message: ReminderMessage,
    customer: Customer,
    invoices: list[Invoice],
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
    _event(
        session,
        message,
        "reminder.task_opened",
        task_id=task.id,
        invoices=[invoice.number for invoice in invoices],
    )


def send(ctx: DeliveryContext, delivery: Delivery) -> Outcome:
    """Hand a claimed message to its channel; never raises for delivery problems."""
    try:
        if delivery.channel is Channel.EMAIL:
            ctx.mailer.send(
                OutgoingEmail(
                    delivery.recipient,
                    delivery.subject,
                    delivery.text,
                    delivery.html,
                    delivery.mime_message_id,
                    sender_name=ctx.settings.company.name,
                )
            )
            return Outcome(True, delivery.mime_message_id)
        if delivery.channel is Channel.SMS:
            sid = ctx.sms.send(
                Sms(delivery.recipient, delivery.text, f"reminder-{delivery.message_id}")
            )
            return Outcome(True, sid)
        path = _letter_path(ctx.settings.reminders.letters_dir, delivery.message_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(delivery.letter_pdf)
        temporary.replace(path)  # the same file whatever the attempt: idempotent
        if delivery.registered:
            tracking = ctx.registered_mail().send(
                RegisteredLetter(
                    delivery.message_id,
                    delivery.recipient,
                    [],
                    delivery.letter_pdf,
                    f"reminder-{delivery.message_id}",
                )
            )
            return Outcome(True, tracking)
        return Outcome(True, path.name)
    except DeliveryError as error:
        return Outcome(False, error=str(error), permanent=error.permanent)
    except _smtp_refusals() as error:
        return Outcome(False, error=f"refused: {error}", permanent=True)
    except OSError as error:  # smtplib errors, timeouts, connection refused
        return Outcome(False, error=f"{type(error).__name__}: {error}")


def _smtp_refusals() -> tuple[type[Exception], ...]:
    import smtplib

    return (smtplib.SMTPRecipientsRefused,)


def _letter_path(letters_dir: Path, message_id: int) -> Path:
    return letters_dir / f"reminder-{message_id}.pdf"


def letter_file(settings: Settings, message_id: int) -> Path:
    return _letter_path(settings.reminders.letters_dir, message_id)


def record_outcome(
    session: Session, settings: Settings, worker_id: str, delivery: Delivery, outcome: Outcome
) -> None:
    """Record what happened, unless another worker took the row over meanwhile."""
    take_write_lock(session)
    message = session.scalar(
        select(ReminderMessage)
        .where(
            ReminderMessage.id == delivery.message_id,
            ReminderMessage.status == MessageStatus.SENDING,
            ReminderMessage.claimed_by == worker_id,
        )
        .with_for_update()
    )
    if message is None:
        log.warning("reminder %s was taken over by another worker", delivery.message_id)
        return
    now = clock.now()
    message.claimed_until = None
    if outcome.ok:
        message.status = MessageStatus.SENT
        message.sent_at = now
        message.external_id = outcome.external_id[:255]
        message.last_error = None
        _event(
            session,
            message,
            "reminder.sent",
            to=delivery.recipient,
            sent_by=str(delivery.channel),
            external_id=outcome.external_id,
            attempt=message.attempts,
        )
        return
    message.last_error = outcome.error[:500]
    if outcome.permanent:
        message.status = MessageStatus.BOUNCED
        _event(
            session, message, "reminder.bounced", to=delivery.recipient, error=outcome.error[:300]
        )
    elif message.attempts >= settings.reminders.max_attempts:
        message.status = MessageStatus.FAILED
        _event(
            session,
            message,
            "reminder.failed",
            error=outcome.error[:300],
            attempts=message.attempts,
        )
    else:
        delay = min(
            settings.reminders.retry_base_seconds * 2 ** (message.attempts - 1),
            MAX_BACKOFF_SECONDS,
        )
        message.status = MessageStatus.PENDING
        message.next_attempt_at = now + dt.timedelta(seconds=delay)
        _event(
            session,
            message,
            "reminder.retry",
            error=outcome.error[:300],
            attempt=message.attempts,
            next_attempt_at=message.next_attempt_at.isoformat(),
        )


def deliver_due(
    session_factory: Callable[[], Session],
    ctx: DeliveryContext,
    worker_id: str,
    *,
    limit: int = CLAIM_BATCH,
) -> int:
    """One round: claim (commit), send each, record each (commit). Returns how many were
    handed to a channel."""
    # A batch must be sent within its lease even if every send runs into its timeout.
    settings = ctx.settings
    slowest = 2 * max(settings.smtp.timeout_seconds, settings.sms.timeout_seconds)
    limit = max(1, min(limit, int(settings.reminders.lease_seconds // slowest)))
    with session_factory() as session, session.begin():
        deliveries = claim(session, ctx, worker_id, limit=limit)
    for delivery in deliveries:
        outcome = send(ctx, delivery)
        with session_factory() as session, session.begin():
            record_outcome(session, ctx.settings, worker_id, delivery, outcome)
    return len(deliveries)
