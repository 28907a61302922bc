"""Delivering the outbox: claim, re-check, render, send after commit, record.

Exactly once, and where the boundary lies:

1. *Claim* (one transaction): take due rows (``pending`` and due, or ``sending`` whose
   lease expired because a worker died) with ``SELECT … FOR UPDATE SKIP LOCKED`` on
   PostgreSQL, so two workers never take the same row; on SQLite the claim's first
   statement takes the database's write lock (one writer at a time).
   In the same transaction the invoices are read again: paid, cancelled, paused
   (holds, declared transfers, manual pauses) ones are dropped, the message is rendered
   from what is left (or cancelled, on the timeline, when nothing is), and the row
   becomes ``sending`` with a lease (``claimed_until``).
2. *Send*, after the commit: SMTP, the SMS provider, or the letter file.
3. *Record* (one short transaction per message, right after its send): ``sent`` with its
   timeline event, or a retry with exponential backoff, ``failed`` after the last attempt,
   ``bounced`` when the recipient was refused (SMTP 5xx on RCPT; a 4xx is retried).

The shape for speed (docs/architecture.md): a batch of ``CLAIM_BATCH`` messages is claimed,
re-checked (``recheck.load_batch``: a few queries for the whole batch, the cap and broken
promises included) and rendered in one
transaction; the sends reuse the worker's connections (``sending.Connections``: one SMTP
session, one kept-alive HTTP connection to the SMS provider); each record is two
statements, committed without waiting for the disk on PostgreSQL (``synchronous_commit``
off: a worker killed after the commit keeps it; only a database crash within a fraction
of a second could forget it, and the message would be sent again with its Message-ID, the
at-least-once boundary below). Recording each message before the next is sent keeps that
boundary at one message. A batch stops sending when its lease runs short: the messages it
did not attempt go back to the queue without counting an attempt.

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
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import Environment, TemplateNotFound
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import clock
from portal.branding.service import Look
from portal.company.models import Company
from portal.customers.models import Customer
from portal.links.service import issue_reminder_link
from portal.links.tokens import LinkSigner
from portal.mail.sender import Mailer
from portal.money import format_money
from portal.reminders.editor.texts import CustomTexts
from portal.reminders.letters import (
    REGISTERED_TEMPLATE,
    LocalRegisteredMail,
    RegisteredMailProvider,
)
from portal.reminders.models import (
    Channel,
    MessageStatus,
    ReminderMessage,
    ReminderTask,
    TaskKind,
    prefer_indexes,
    take_write_lock,
)
from portal.reminders.policy import Policy, load_policy
from portal.reminders.recheck import (
    Batch,
    cancel,
    channel_and_recipient,
    drop_invoices,
    event,
    load_batch,
    local_today,
    open_task,
)
from portal.reminders.recording import record_outcome
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
from portal.reminders.sendcheck import after_quiet_period
from portal.reminders.sending import DEFERRED, Connections, Delivery, Outcome, letter_path
from portal.reminders.sms import SmsProvider
from portal.settings import Settings
from portal.timeline.service import record_many

__all__ = [
    "Delivery",
    "DeliveryContext",
    "Outcome",
    "claim",
    "deliver_due",
    "letter_file",
    "record_outcome",
]

log = logging.getLogger(__name__)

CLAIM_BATCH = 50
MAX_BACKOFF_SECONDS = 6 * 3600


def new_worker_id() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


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
    _connections: Connections | None = field(default=None, repr=False)

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

    @property
    def connections(self) -> Connections:
        if self._connections is None:
            self._connections = Connections(
                self.mailer,
                self.sms,
                self.settings.reminders.letters_dir,
                sender_name=self.settings.company.name,
                registered_mail=self.registered_mail,
            )
        return self._connections

    def close_connections(self) -> None:
        """When the queue is empty: an idle SMTP session would be dropped by the server."""
        if self._connections is not None:
            self._connections.close()

    def warm_up(self) -> None:
        """Compile what every message uses before the first one waits for it: the
        catalogs of each language and the reminder templates (the environment keeps
        them compiled), and parse the letters' fonts."""
        from portal import i18n
        from portal.reminders.render import warm_up_templates

        for language in i18n.SUPPORTED:
            i18n.translations(language)
        warm_up_templates(self.templates)

    def company(self, session: Session, company_id: int) -> Company:
        company = session.get(Company, company_id)
        assert company is not None
        return company


def _claim_ids(session: Session, now: dt.datetime, limit: int) -> list[int]:
    """The due rows, oldest first: those whose lease expired (a worker died), then pending
    ones due. Two queries, each one range of the ``(status, next_attempt_at)`` index, where
    one query with both conditions joined by OR would read every waiting row each time."""
    m = ReminderMessage
    postgresql = session.get_bind().dialect.name == "postgresql"
    if not postgresql:
        take_write_lock(session)  # one writer at a time, from the claim's start
    ids: list[int] = []
    for due in (
        (m.status == MessageStatus.SENDING) & (m.claimed_until < now),
        (m.status == MessageStatus.PENDING) & (m.next_attempt_at <= now),
    ):
        query = select(m.id).where(due).order_by(m.next_attempt_at, m.id).limit(limit - len(ids))
        if postgresql:
            query = query.with_for_update(skip_locked=True)
        ids.extend(session.scalars(query))
        if len(ids) >= limit:
            break
    return sorted(ids)


def claim(
    session: Session, ctx: DeliveryContext, worker_id: str, *, limit: int = CLAIM_BATCH
) -> list[Delivery]:
    """Claim due messages, re-check and render them; the caller commits, then sends.

    The whole batch is read in a few queries (``recheck.load_batch``), and its timeline
    events are written together at the end."""
    now = clock.now()
    prefer_indexes(session)
    ids = _claim_ids(session, now, limit)
    if not ids:
        return []
    batch = load_batch(session, ids, now)
    lease = now + dt.timedelta(seconds=ctx.settings.reminders.lease_seconds)
    policies: dict[int, Policy] = {}
    deliveries = []
    for message in batch.messages:
        if message.company_id not in policies:
            policies[message.company_id] = load_policy(
                session, message.company_id, ctx.settings.reminders
            )
        delivery = _prepare(session, ctx, batch, message, now, policies[message.company_id])
        if delivery is None:
            continue
        message.status = MessageStatus.SENDING
        message.claimed_by = worker_id
        message.claimed_until = lease
        message.attempts += 1
        batch.take(message)
        deliveries.append(delivery)
    session.flush()
    record_many(session, batch.events)
    return deliveries


def _prepare(
    session: Session,
    ctx: DeliveryContext,
    batch: Batch,
    message: ReminderMessage,
    now: dt.datetime,
    policy: Policy,
) -> Delivery | None:
    customer = batch.customers[message.customer_id]
    events = batch.events
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
    today = local_today(now, customer.timezone)
    if customer.reminders_paused_until is not None and customer.reminders_paused_until >= today:
        cancel(session, events, message, "customer_paused")
        return None
    invoices = batch.still_due.get(message.id, [])
    kept = {invoice.id for invoice in invoices}
    dropped = sorted(batch.planned.get(message.id, set()) - kept)
    if not invoices:
        cancel(session, events, message, "nothing_due", dropped_invoices=dropped)
        return None
    if dropped:
        drop_invoices(session, message, dropped)
    if message.channel is Channel.TASK:
        open_task(session, events, message, customer, invoices, now)
        return None
    if batch.over_cap(message, policy.monthly_cap):
        cancel(session, events, message, "monthly_cap", cap=policy.monthly_cap)
        return None
    channel, contact, recipient = channel_and_recipient(customer, message.channel)
    if not recipient:
        cancel(session, events, message, "no_recipient")
        return None
    settings = ctx.settings
    link = issue_reminder_link(ctx.signer, settings.base_url, customer, events)
    penalties = settings.reminders.formal_notice_penalties and message.template.startswith(
        "formal_notice"
    )
    rows, totals = due_invoices(
        [invoice.as_row() for invoice in invoices],
        today,
        penalties=penalties,
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
        penalties=penalties,
        ecb_rate=settings.reminders.ecb_rate,
        totals=totals,
        promise_broken_on=batch.promises_broken.get(customer.id),
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
            company = ctx.company(session, message.company_id)
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
        event(events, message, "reminder.failed", error=str(error)[:300])
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
        company_id=message.company_id,
        customer_id=message.customer_id,
        step=message.step,
        planned_channel=str(message.channel),
        attempt=message.attempts + 1,  # the claim counts this attempt
    )


def _sms_template(env: Environment, template: str) -> str:
    """The email's template as a text when an email falls back to SMS and one exists."""
    try:
        env.get_template(f"sms/{template}.txt")
    except TemplateNotFound:
        return "reminder_overdue"
    return template


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


def send(ctx: DeliveryContext, delivery: Delivery) -> Outcome:
    """Hand a claimed message to its channel; never raises for delivery problems."""
    return ctx.connections.send(delivery)


def letter_file(settings: Settings, message_id: int) -> Path:
    return letter_path(settings.reminders.letters_dir, message_id)


@dataclass
class RoundResult:
    """What one round did: the worker's progress log adds these up."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0  # failed or bounced
    deferred: int = 0

    def __bool__(self) -> bool:
        return self.claimed > 0

    def add(self, action: str) -> None:
        if action == "reminder.sent":
            self.sent += 1
        elif action == "reminder.retry":
            self.retried += 1
        elif action in ("reminder.failed", "reminder.bounced"):
            self.failed += 1
        elif action == "deferred":
            self.deferred += 1


def deliver_round(
    session_factory: Callable[[], Session],
    ctx: DeliveryContext,
    worker_id: str,
    *,
    limit: int = CLAIM_BATCH,
) -> RoundResult:
    """One round: claim a batch (one commit), then send each and record it (a short commit
    each), until the batch is done or its lease runs short."""
    settings = ctx.settings
    # Stop sending while a last send, even one that runs into its timeout, fits in the lease.
    slowest = 2 * max(settings.smtp.timeout_seconds, settings.sms.timeout_seconds)
    started = time.monotonic()
    deadline = started + settings.reminders.lease_seconds - slowest
    with session_factory() as session:
        with session.begin():
            deliveries = claim(session, ctx, worker_id, limit=limit)
        result = RoundResult(claimed=len(deliveries))
        # The same session (and connection) records each message in a transaction of its
        # own, committed before the next is sent.
        session.expunge_all()
        for index, delivery in enumerate(deliveries):
            late = index > 0 and time.monotonic() > deadline  # the first always fits (settings)
            outcome = DEFERRED if late else ctx.connections.send(delivery)
            with session.begin():
                result.add(record_outcome(session, settings, worker_id, delivery, outcome))
    return result


def deliver_due(
    session_factory: Callable[[], Session],
    ctx: DeliveryContext,
    worker_id: str,
    *,
    limit: int = CLAIM_BATCH,
) -> int:
    """One round (``deliver_round``); returns how many messages were claimed and handed on."""
    return deliver_round(session_factory, ctx, worker_id, limit=limit).claimed
