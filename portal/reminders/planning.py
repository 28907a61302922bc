"""Planning a run: which customers get which step now, streamed page by page.

For every customer (keyset pages by id), the invoices still due and not paused today in
the customer's timezone are read in one query per page and timezone, each with the last
step it already had; each invoice moves to the furthest step its age has reached (missed
runs are caught up with one message, not repeated). A customer gets at most one message
per run: the most advanced step among their invoices, listing every invoice at that step.
An invoice already in its scenario moves to its next step (a pause that ends resumes
there, not at the furthest step); an invoice never reminded starts at the furthest step
its age has reached. The invoices of an open call step wait for it ``call_wait_days``, the
customer's other invoices follow their own steps. A message is not planned within
``min_gap_days`` of the previous one, nor past the company's cap per 30 days, nor during a
quiet period or a freeze.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, case, exists, func, insert, not_, select
from sqlalchemy.orm import Session

from portal import clock
from portal.customers.models import Customer
from portal.db import conflict_insert
from portal.holds.service import reminders_paused
from portal.invoices.models import Invoice, InvoiceStatus
from portal.reminders.models import (
    Channel,
    MessageStatus,
    ReminderMessage,
    ReminderMessageInvoice,
    ReminderTask,
    TaskKind,
    TaskStatus,
    prefer_indexes,
    take_write_lock,
)
from portal.reminders.policy import Policy, counted_messages, load_policy
from portal.reminders.scenarios import Scenario, ScenarioBook, Step, StepFacts
from portal.reminders.schedule import BusinessCalendar
from portal.timeline.models import Actor, TimelineEvent

PAGE_SIZE = 2000
MANUAL_STEP_PREFIX = "manual-"  # portal.reminders.manual's steps
LIVE_STATUSES = (MessageStatus.PENDING, MessageStatus.SENDING, MessageStatus.SENT)


@dataclass(frozen=True, slots=True)
class PlannedInvoice:
    id: int
    number: str
    due_date: dt.date
    currency: str
    remaining_minor: int


@dataclass(frozen=True, slots=True)
class PlannedMessage:
    customer_id: int
    reference: str
    name: str
    timezone: str
    scenario: str
    step: Step
    cycle: str
    send_after: dt.datetime
    invoices: tuple[PlannedInvoice, ...]

    def totals(self) -> dict[str, int]:
        sums: dict[str, int] = defaultdict(int)
        for invoice in self.invoices:
            sums[invoice.currency] += invoice.remaining_minor
        return dict(sums)


def _customer_page(
    session: Session,
    company_id: int,
    after_id: int,
    gap_start: dt.datetime,
    size: int,
    reference: str | None,
) -> list[PageCustomer]:
    # The page's ids first, by the primary key alone: the per-customer lookups below then
    # run for these customers only, whatever plan the database prefers.
    page = (
        select(Customer.id)
        .where(Customer.company_id == company_id, Customer.id > after_id)
        .order_by(Customer.id)
        .limit(size)
    )
    if reference is not None:
        page = page.where(Customer.reference == reference)
    ids = list(session.scalars(page))
    if not ids:
        return []
    customers = session.execute(
        select(
            Customer.id,
            Customer.reference,
            Customer.name,
            Customer.timezone,
            Customer.risk_segment,
            Customer.strategic,
            Customer.reminder_scenario,
            Customer.reminders_paused_until,
        )
        .where(Customer.id.in_(ids))
        .order_by(Customer.id)
    ).all()
    # The conditions on status and channel sit inside the aggregates, not in WHERE: then
    # the only usable index is the one on customer_id. With them in WHERE, stale
    # statistics (the run fills the table while it reads it) made PostgreSQL intersect
    # with the status index, scanning every pending message once per customer: quadratic
    # (a million customers did not finish in an hour).
    live_message = ReminderMessage.status.in_(LIVE_STATUSES) & (
        ReminderMessage.channel != Channel.TASK
    )
    last_message: dict[int, dt.datetime | None] = dict(
        session.execute(
            select(
                ReminderMessage.customer_id,
                func.max(case((live_message, ReminderMessage.created_at))),
            )
            .where(ReminderMessage.customer_id.in_(ids))
            .group_by(ReminderMessage.customer_id)
        ).all()
    )
    return [
        PageCustomer(
            *row,
            in_gap=(last := last_message.get(row[0])) is not None and last >= gap_start,
        )
        for row in customers
    ]


@dataclass(frozen=True, slots=True)
class PageCustomer:
    id: int
    reference: str
    name: str
    timezone: str
    risk_segment: str
    strategic: bool
    reminder_scenario: str | None
    reminders_paused_until: dt.date | None
    in_gap: bool


def _invoices(
    session: Session,
    customer_ids: list[int],
    today: dt.date,
    latest_due: dt.date,
    call_wait_start: dt.datetime,
) -> list[Any]:
    last_offset = (
        select(func.max(ReminderMessageInvoice.offset_days))
        .where(
            ReminderMessageInvoice.invoice_id == Invoice.id,
            # A reminder sent by hand does not move the invoice along its scenario.
            not_(ReminderMessageInvoice.step.startswith(MANUAL_STEP_PREFIX)),
        )
        .scalar_subquery()
    )
    # An open call step holds its own invoices for a while, not the customer's others.
    waiting_for_call = exists(
        select(ReminderTask.id)
        .join(
            ReminderMessageInvoice,
            ReminderMessageInvoice.message_id == ReminderTask.message_id,
        )
        .where(
            ReminderMessageInvoice.invoice_id == Invoice.id,
            ReminderTask.status == TaskStatus.OPEN,
            ReminderTask.kind == TaskKind.STEP,
            ReminderTask.created_at > call_wait_start,
        )
    )
    query = (
        select(
            Invoice.id,
            Invoice.customer_id,
            Invoice.number,
            Invoice.due_date,
            Invoice.currency,
            Invoice.amount_minor - Invoice.paid_minor,
            last_offset,
        )
        .where(
            Invoice.customer_id.in_(customer_ids),
            Invoice.status == InvoiceStatus.OPEN,
            Invoice.amount_minor > Invoice.paid_minor,
            Invoice.due_date <= latest_due,
            not_(reminders_paused(today)),
            not_(waiting_for_call),
        )
        .order_by(Invoice.customer_id, Invoice.due_date, Invoice.id)
    )
    return list(session.execute(query).all())


def plan(
    session: Session,
    company_id: int,
    book: ScenarioBook,
    calendar: BusinessCalendar,
    *,
    now: dt.datetime | None = None,
    page_size: int = PAGE_SIZE,
    any_time: bool = False,
    reference: str | None = None,
    policy: Policy | None = None,
) -> Iterator[list[PlannedMessage]]:
    """Pages of planned messages; reads only. ``any_time`` ignores business hours (demo);
    ``reference`` limits the run to one customer; ``policy``: the company's cap, quiet
    periods and freeze (read from the database when not given)."""
    now = now or clock.now()
    policy = policy or load_policy(session, company_id)
    if policy.frozen:
        return
    gap_start = now - dt.timedelta(days=book.min_gap_days)
    call_wait_start = now - dt.timedelta(days=policy.call_wait_days)
    after_id = 0
    send_after_by_zone: dict[str, dt.datetime] = {}
    today_by_zone: dict[str, dt.date] = {}
    while True:
        take_write_lock(session)  # SQLite: this page's transaction will write, take it now
        prefer_indexes(session)
        customers = _customer_page(session, company_id, after_id, gap_start, page_size, reference)
        if not customers:
            return
        after_id = customers[-1].id
        by_zone: dict[str, list[Any]] = defaultdict(list)
        counted = counted_messages(session, [r.id for r in customers], now, pending=True)
        for row in customers:
            timezone = str(row.timezone)
            if timezone not in today_by_zone:
                today_by_zone[timezone] = now.astimezone(ZoneInfo(timezone)).date()
            paused = row.reminders_paused_until
            if paused is not None and paused >= today_by_zone[timezone]:
                continue
            if policy.is_quiet(today_by_zone[timezone]):
                continue
            by_zone[timezone].append(row)
        page: list[PlannedMessage] = []
        for timezone, rows in by_zone.items():
            today = today_by_zone[timezone]
            latest_due = today - dt.timedelta(days=book.earliest_days)
            invoices_by_customer: dict[int, list[Any]] = defaultdict(list)
            ids = [r.id for r in rows]
            for invoice in _invoices(session, ids, today, latest_due, call_wait_start):
                invoices_by_customer[int(invoice[1])].append(invoice)
            for row in rows:
                planned = _plan_customer(
                    row,
                    invoices_by_customer.get(row.id, []),
                    book,
                    today,
                )
                if planned is None:
                    continue
                step, scenario, chosen = planned
                if step.channel is not Channel.TASK and (
                    row.in_gap or counted.get(row.id, 0) >= policy.monthly_cap
                ):
                    continue
                if any_time or step.channel is Channel.TASK:
                    send_after = now
                else:
                    if timezone not in send_after_by_zone:
                        send_after_by_zone[timezone] = calendar.next_send_time(now, timezone)
                    send_after = send_after_by_zone[timezone]
                page.append(
                    PlannedMessage(
                        customer_id=row.id,
                        reference=str(row.reference),
                        name=str(row.name),
                        timezone=timezone,
                        scenario=scenario,
                        step=step,
                        cycle=today.isoformat(),
                        send_after=send_after,
                        invoices=tuple(chosen),
                    )
                )
        page.sort(key=lambda message: message.customer_id)
        yield page


def _plan_customer(
    customer: Any,
    invoices: list[Any],
    book: ScenarioBook,
    today: dt.date,
) -> tuple[Step, str, list[PlannedInvoice]] | None:
    if not invoices:
        return None
    scenario = book.for_customer(
        customer.reminder_scenario,
        str(customer.risk_segment),
        bool(customer.strategic),
    )
    by_step: dict[str, list[PlannedInvoice]] = defaultdict(list)
    best: Step | None = None
    for invoice_id, _customer, number, due, currency, remaining, last in invoices:
        step = _step_for(
            scenario,
            (today - due).days,
            last,
            StepFacts(
                str(customer.risk_segment), bool(customer.strategic), currency, int(remaining)
            ),
        )
        if step is None:
            continue
        by_step[step.key].append(
            PlannedInvoice(int(invoice_id), str(number), due, str(currency), int(remaining))
        )
        if best is None or step.days > best.days:
            best = step
    if best is None:
        return None
    return best, scenario.name, by_step[best.key]


def _step_for(
    scenario: Scenario, days_from_due: int, last: int | None, facts: StepFacts
) -> Step | None:
    """Never reminded: the furthest step reached (an old invoice skips the courtesy email).
    Already in the scenario: the next step after its last one, once reached, so a pause
    that ends (a broken promise, a dispute rejected) resumes there, not at the furthest.
    Steps whose condition ``facts`` fail are passed over either way."""
    if last is None:
        return scenario.latest_step(days_from_due, None, facts)
    return next(
        (
            step
            for step in scenario.steps
            if last < step.days <= days_from_due and step.applies(facts)
        ),
        None,
    )


@dataclass
class RunResult:
    planned: int = 0
    enqueued: int = 0


def enqueue(
    session: Session, company_id: int, messages: list[PlannedMessage], now: dt.datetime
) -> int:
    """Insert one page of planned messages, their invoices and timeline events.

    The unique (customer, step, cycle) key makes a second run of the day a no-op: rows
    that already exist are skipped (ON CONFLICT DO NOTHING), and so are their invoices.
    """
    if not messages:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        return _enqueue_postgresql(session, company_id, messages, now)
    statement = (
        conflict_insert(session, cast(Table, ReminderMessage.__table__))
        .on_conflict_do_nothing()
        .returning(ReminderMessage.__table__.c.id, ReminderMessage.__table__.c.customer_id)
    )
    rows = [_message_row(company_id, m, now) for m in messages]
    inserted = {
        int(customer_id): int(message_id)
        for message_id, customer_id in session.execute(statement, rows).all()
    }
    if not inserted:
        return 0
    items, events = _children(company_id, messages, inserted, now)
    item_table = cast(Table, ReminderMessageInvoice.__table__)
    session.execute(conflict_insert(session, item_table).on_conflict_do_nothing(), items)
    session.execute(insert(cast(Table, TimelineEvent.__table__)), events)
    return len(inserted)


MESSAGE_COLUMNS = (
    "company_id",
    "customer_id",
    "scenario",
    "step",
    "cycle",
    "channel",
    "template",
    "status",
    "next_attempt_at",
    "attempts",
    "created_at",
)
ITEM_COLUMNS = ("message_id", "invoice_id", "step", "offset_days")
EVENT_COLUMNS = (
    "company_id",
    "customer_id",
    "occurred_at",
    "actor",
    "actor_id",
    "action",
    "subject_type",
    "subject_id",
    "details",
)


def _message_row(company_id: int, m: PlannedMessage, now: dt.datetime) -> dict[str, Any]:
    return {
        "company_id": company_id,
        "customer_id": m.customer_id,
        "scenario": m.scenario,
        "step": m.step.key,
        "cycle": m.cycle,
        "channel": str(m.step.channel),
        "template": m.step.template,
        "status": str(MessageStatus.PENDING),
        "next_attempt_at": m.send_after,
        "attempts": 0,
        "created_at": now,
    }


def _children(
    company_id: int, messages: list[PlannedMessage], inserted: dict[int, int], now: dt.datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    items: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for m in messages:
        message_id = inserted.get(m.customer_id)
        if message_id is None:
            continue
        items.extend(
            {
                "message_id": message_id,
                "invoice_id": invoice.id,
                "step": m.step.key,
                "offset_days": m.step.days,
            }
            for invoice in m.invoices
        )
        events.append(
            {
                "company_id": company_id,
                "customer_id": m.customer_id,
                "occurred_at": now,
                "actor": str(Actor.SYSTEM),
                "actor_id": "reminders",
                "action": "reminder.queued",
                "subject_type": "reminder_message",
                "subject_id": str(message_id),
                "details": {
                    "step": m.step.key,
                    "channel": str(m.step.channel),
                    "invoices": [invoice.number for invoice in m.invoices],
                    "send_after": m.send_after.isoformat(),
                },
            }
        )
    return items, events


def _enqueue_postgresql(
    session: Session, company_id: int, messages: list[PlannedMessage], now: dt.datetime
) -> int:
    """The same as the generic path, with COPY: rows go to session-local staging tables,
    then one INSERT … SELECT … ON CONFLICT DO NOTHING each (about 4x faster)."""
    import json

    raw = session.connection().connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor:
        for staging, source, columns in (
            ("reminder_staging_messages", "reminder_messages", MESSAGE_COLUMNS),
            ("reminder_staging_items", "reminder_message_invoices", ITEM_COLUMNS),
        ):
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {staging} AS "  # noqa: S608 - constants
                f"SELECT {', '.join(columns)} FROM {source} WITH NO DATA"
            )
            cursor.execute(f"DELETE FROM {staging}")  # noqa: S608
        with cursor.copy(
            f"COPY reminder_staging_messages ({', '.join(MESSAGE_COLUMNS)}) FROM STDIN"
        ) as copy:
            for m in messages:
                row = _message_row(company_id, m, now)
                copy.write_row([row[c] for c in MESSAGE_COLUMNS])
        cursor.execute(
            f"INSERT INTO reminder_messages ({', '.join(MESSAGE_COLUMNS)}) "  # noqa: S608
            f"SELECT {', '.join(MESSAGE_COLUMNS)} FROM reminder_staging_messages "
            "ON CONFLICT DO NOTHING RETURNING id, customer_id"
        )
        inserted = {int(customer_id): int(message_id) for message_id, customer_id in cursor}
        if not inserted:
            return 0
        items, events = _children(company_id, messages, inserted, now)
        with cursor.copy(
            f"COPY reminder_staging_items ({', '.join(ITEM_COLUMNS)}) FROM STDIN"
        ) as copy:
            for item in items:
                copy.write_row([item[c] for c in ITEM_COLUMNS])
        cursor.execute(
            f"INSERT INTO reminder_message_invoices ({', '.join(ITEM_COLUMNS)}) "  # noqa: S608
            f"SELECT {', '.join(ITEM_COLUMNS)} FROM reminder_staging_items ON CONFLICT DO NOTHING"
        )
        with cursor.copy(f"COPY timeline_events ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as copy:
            for event in events:
                event["details"] = json.dumps(event["details"])
                copy.write_row([event[c] for c in EVENT_COLUMNS])
    return len(inserted)


def run(
    session: Session,
    company_id: int,
    book: ScenarioBook,
    calendar: BusinessCalendar,
    *,
    now: dt.datetime | None = None,
    page_size: int = PAGE_SIZE,
    any_time: bool = False,
    reference: str | None = None,
    policy: Policy | None = None,
) -> RunResult:
    """Plan and enqueue, committing page by page (memory stays flat; a rerun resumes)."""
    now = now or clock.now()
    policy = policy or load_policy(session, company_id)
    result = RunResult()
    for page in plan(
        session,
        company_id,
        book,
        calendar,
        now=now,
        page_size=page_size,
        any_time=any_time,
        reference=reference,
        policy=policy,
    ):
        result.planned += len(page)
        result.enqueued += enqueue(session, company_id, page, now)
        session.commit()
    return result
