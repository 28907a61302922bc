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
   On SQLite, where one transaction writes at a time, rendering under the write lock would
   have a second worker wait for the first: the claim goes in three steps
   (``_claim_in_steps``). ``lease`` takes the due rows for the worker in a short write;
   ``prerender`` renders them from a read that takes no lock (WAL); then the claim above
   runs on the leased rows, under the write lock: it reads and re-checks the batch again,
   decides and records everything as in one step, and uses a text rendered ahead only when
   it was rendered from exactly what the claim has just read (``Rendered.key``: the
   invoices still due and their amounts, the recipient, the customer and contact, the
   template, the broken promise). A payment recorded while the batch was rendered is
   therefore seen as in a one-step claim, and the message is rendered again without it.
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
from dataclasses import dataclass, field, replace
from pathlib import Path

from jinja2 import Environment, TemplateNotFound
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal import clock
from portal.branding.service import Look
from portal.company.models import Company
from portal.customers.models import Contact, Customer
from portal.db import READ_ONLY
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
    StillDue,
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
    DueInvoice,
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


@dataclass(frozen=True, slots=True)
class Rendered:
    """A message's texts rendered ahead of its claim (``prerender``), with what they were
    rendered from: the claim uses them only when it builds the same thing again."""

    key: tuple[object, ...]
    subject: str
    text: str
    html: str


def lease(
    session: Session, ctx: DeliveryContext, worker_id: str, *, limit: int = CLAIM_BATCH
) -> list[int]:
    """SQLite, step one of a claim: take the due rows for this worker (``sending`` under
    its lease) in a short write transaction, so that no other worker takes them while this
    one renders them outside any write transaction (``prerender``). The claim itself
    (``claim(…, leased=…)``) then re-checks and records them under the write lock as
    usual; a worker killed in between leaves rows whose lease expires."""
    now = clock.now()
    until = now + dt.timedelta(seconds=ctx.settings.reminders.lease_seconds)
    ids = _claim_ids(session, now, limit)
    if ids:
        session.execute(
            update(ReminderMessage)
            .where(ReminderMessage.id.in_(ids))
            .values(status=MessageStatus.SENDING, claimed_by=worker_id, claimed_until=until)
            .execution_options(synchronize_session=False)
        )
    return ids


def prerender(session: Session, ctx: DeliveryContext, ids: list[int]) -> dict[int, Rendered]:
    """Render leased messages from a read (no write lock held: SQLite's other writers go
    on meanwhile). Nothing here is decided or written: the claim reads the batch again
    under the write lock and uses a text only when it was rendered from exactly what it
    reads then (``Rendered.key``); anything that changed in between is rendered again."""
    now = clock.now()
    batch = load_batch(session, ids, now)
    rendered: dict[int, Rendered] = {}
    for message in batch.messages:
        customer = batch.customers[message.customer_id]
        invoices = batch.still_due.get(message.id, [])
        if not invoices or message.channel in (Channel.TASK, Channel.LETTER):
            continue
        channel, contact, recipient = channel_and_recipient(customer, message.channel)
        if not recipient or channel is Channel.LETTER:
            continue
        link = issue_reminder_link(ctx.signer, ctx.settings.base_url, customer, [])
        today = local_today(now, customer.timezone)
        content, _ = _content(ctx, batch, message, customer, contact, invoices, today, link)
        template = message.template if message.channel is channel else "reminder_overdue"
        try:
            subject, text_body, html = _render_text(ctx, message, channel, template, content)
        except RenderError:
            continue  # the claim renders it again and records the failure
        key = _render_key(message, customer, channel, template, recipient, content)
        rendered[message.id] = Rendered(key, subject, text_body, html)
    return rendered


def _render_key(
    message: ReminderMessage,
    customer: Customer,
    channel: Channel,
    template: str,
    recipient: str,
    content: ReminderContent,
) -> tuple[object, ...]:
    """What a message's texts are rendered from, but its link (signed afresh each time):
    the customer's link version stands for it, so links revoked meanwhile render again."""
    return (
        customer.link_version,
        channel,
        template,
        recipient,
        message.edited_text,
        message.cycle,
        replace(content, link=""),
    )


def claim(
    session: Session,
    ctx: DeliveryContext,
    worker_id: str,
    *,
    limit: int = CLAIM_BATCH,
    leased: list[int] | None = None,
    rendered: dict[int, Rendered] | None = None,
) -> list[Delivery]:
    """Claim due messages, re-check and render them; the caller commits, then sends.

    The whole batch is read in a few queries (``recheck.load_batch``), and its timeline
    events are written together at the end. ``leased``: the rows ``lease`` took for this
    worker, still held (instead of the due rows); ``rendered``: texts ``prerender`` made
    for them, used when nothing they were made from changed since."""
    now = clock.now()
    prefer_indexes(session)
    if leased is None:
        ids = _claim_ids(session, now, limit)
    else:
        take_write_lock(session)  # the re-check and its records under the write lock
        m = ReminderMessage
        held = (m.status == MessageStatus.SENDING) & (m.claimed_by == worker_id)
        ids = list(session.scalars(select(m.id).where(m.id.in_(leased), held).order_by(m.id)))
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
        delivery = _prepare(
            session, ctx, batch, message, now, policies[message.company_id], rendered or {}
        )
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
    rendered: dict[int, Rendered],
) -> Delivery | None:
    customer = batch.customers[message.customer_id]
    events = batch.events
    if not ctx.any_time and message.channel is not Channel.TASK:
        # A worker that was down may wake up at night: messages still wait for business hours.
        opens = ctx.calendar.next_send_time(now, customer.timezone)
        if opens > now:
            message.next_attempt_at = opens
            _put_back(message)
            return None
    if policy.frozen:  # stays pending until reminders are thawed
        _put_back(message)
        return None
    reopens = after_quiet_period(policy, ctx.calendar, customer.timezone, now)
    if reopens is not None:
        message.next_attempt_at = reopens
        _put_back(message)
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
    content, rows = _content(ctx, batch, message, customer, contact, invoices, today, link)
    subject, text_body, html, pdf = "", "", "", b""
    template = message.template if message.channel is channel else "reminder_overdue"
    ahead = rendered.get(message.id)
    try:
        if channel is not Channel.LETTER:
            key = _render_key(message, customer, channel, template, recipient, content)
            if ahead is not None and ahead.key == key:
                subject, text_body, html = ahead.subject, ahead.text, ahead.html
            else:
                subject, text_body, html = _render_text(ctx, message, channel, template, content)
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


def _put_back(message: ReminderMessage) -> None:
    """Not sent yet (business hours, a freeze, a quiet period): waiting again."""
    message.status = MessageStatus.PENDING
    message.claimed_until = None


def _content(
    ctx: DeliveryContext,
    batch: Batch,
    message: ReminderMessage,
    customer: Customer,
    contact: Contact | None,
    invoices: list[StillDue],
    today: dt.date,
    link: str,
) -> tuple[ReminderContent, list[DueInvoice]]:
    settings = ctx.settings
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
    return content, rows


def _render_text(
    ctx: DeliveryContext,
    message: ReminderMessage,
    channel: Channel,
    template: str,
    content: ReminderContent,
) -> tuple[str, str, str]:
    """An email's or a text's (subject, text, html); raises RenderError."""
    company = ctx.settings.company
    if message.edited_text is not None:
        return render_edited(message, channel, content.link)
    custom = (
        ctx.custom_texts.find(channel, template, content.language) if ctx.custom_texts else None
    )
    if channel is Channel.EMAIL:
        email = (
            custom.email(ctx.templates, content, company)
            if custom
            else render_email(ctx.templates, template, content, company)
        )
        return email.subject, email.text, email.html
    if custom:
        return "", custom.sms(content, company), ""
    sms_template = _sms_template(ctx.templates, message.template)
    return "", render_sms(ctx.templates, sms_template, content, company), ""


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
        if session.get_bind().dialect.name == "sqlite":
            deliveries = _claim_in_steps(session, ctx, worker_id, limit)
        else:  # rows locked one by one (SKIP LOCKED): two workers claim side by side
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


def _claim_in_steps(
    session: Session, ctx: DeliveryContext, worker_id: str, limit: int
) -> list[Delivery]:
    """SQLite has one writer at a time: rendering a batch while holding the write lock
    would have a second worker's claims and records wait for it. So: lease the rows (a
    short write), render them from a read that takes no lock (WAL: writers go on), then
    claim them as usual under the write lock, which re-reads and re-checks the batch and
    uses the texts rendered ahead only where nothing they came from changed."""
    with session.begin():
        ids = lease(session, ctx, worker_id, limit=limit)
    if not ids:
        return []
    session.connection(execution_options={READ_ONLY: True})  # a snapshot, no lock
    try:
        rendered = prerender(session, ctx, ids)
    finally:
        session.rollback()
    session.expunge_all()  # the claim reads every row again
    with session.begin():
        return claim(session, ctx, worker_id, leased=ids, rendered=rendered)


def deliver_due(
    session_factory: Callable[[], Session],
    ctx: DeliveryContext,
    worker_id: str,
    *,
    limit: int = CLAIM_BATCH,
) -> int:
    """One round (``deliver_round``); returns how many messages were claimed and handed on."""
    return deliver_round(session_factory, ctx, worker_id, limit=limit).claimed
