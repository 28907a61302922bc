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
import json
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Table,
    any_,
    case,
    exists,
    func,
    insert,
    literal,
    not_,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from portal import clock
from portal.customers.models import Customer
from portal.db import conflict_insert, driver_connection
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
from portal.reminders.policy import CAP_WINDOW, Policy, counts_towards_cap, load_policy
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


def _among(session: Session, column: Any, ids: list[int]) -> ColumnElement[bool]:
    """``column IN ids``; on PostgreSQL as one array parameter (``= ANY``): a page's 2,000
    ids then cost neither a statement rendered anew nor 2,000 parameters each time."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(ColumnElement[bool], column == any_(literal(ids, ARRAY(BigInteger))))
    return cast(ColumnElement[bool], column.in_(ids))


def _customer_page(
    session: Session,
    company_id: int,
    after_id: int,
    now: dt.datetime,
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
    # The conditions on status and channel sit inside the aggregates, not in WHERE: then
    # the only usable index is the one on customer_id. With them in WHERE, stale
    # statistics (the run fills the table while it reads it) made PostgreSQL intersect
    # with the status index, scanning every pending message once per customer: quadratic
    # (a million customers did not finish in an hour). The last message (for the gap) and
    # the messages counting towards the cap come from one pass over the page's messages.
    live_message = ReminderMessage.status.in_(LIVE_STATUSES) & (
        ReminderMessage.channel != Channel.TASK
    )
    messages = (
        select(
            ReminderMessage.customer_id.label("customer_id"),
            func.max(case((live_message, ReminderMessage.created_at))).label("last"),
            func.count(case((counts_towards_cap(now - CAP_WINDOW, pending=True), 1))).label(
                "counted"
            ),
        )
        .where(_among(session, ReminderMessage.customer_id, ids))
        .group_by(ReminderMessage.customer_id)
        .subquery()
    )
    rows = session.execute(
        select(
            Customer.id,
            Customer.reference,
            Customer.name,
            Customer.timezone,
            Customer.risk_segment,
            Customer.strategic,
            Customer.reminder_scenario,
            Customer.reminders_paused_until,
            messages.c.last,
            messages.c.counted,
        )
        .outerjoin(messages, messages.c.customer_id == Customer.id)
        .where(_among(session, Customer.id, ids))
        .order_by(Customer.id)
    ).all()
    return [
        PageCustomer(
            customer_id,
            reference,
            name,
            timezone,
            risk,
            strategic,
            scenario,
            paused,
            in_gap=last is not None and last >= gap_start,
            counted=int(counted or 0),
        )
        for (
            customer_id,
            reference,
            name,
            timezone,
            risk,
            strategic,
            scenario,
            paused,
            last,
            counted,
        ) in rows
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
    counted: int  # messages counting towards the cap now, pending ones included


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
            _among(session, Invoice.customer_id, customer_ids),
            Invoice.status == InvoiceStatus.OPEN,
            Invoice.amount_minor > Invoice.paid_minor,
            Invoice.due_date <= latest_due,
            not_(reminders_paused(today)),
            not_(waiting_for_call),
        )
        .order_by(Invoice.customer_id, Invoice.due_date, Invoice.id)
    )
    return list(session.execute(query).all())


@dataclass(frozen=True, slots=True)
class _ZoneRows:
    """One timezone's share of a page: its customers and their candidate invoices."""

    timezone: str
    today: dt.date
    customers: list[PageCustomer]
    invoices: dict[int, list[Any]]


def _read_pages(
    session: Session,
    company_id: int,
    book: ScenarioBook,
    policy: Policy,
    now: dt.datetime,
    page_size: int,
    reference: str | None,
) -> Iterator[list[_ZoneRows]]:
    """What each page needs from the database, read in the page's own transaction (the
    caller commits between pages); skips the customers paused or in a quiet period."""
    gap_start = now - dt.timedelta(days=book.min_gap_days)
    call_wait_start = now - dt.timedelta(days=policy.call_wait_days)
    after_id = 0
    today_by_zone: dict[str, dt.date] = {}
    while True:
        take_write_lock(session)  # SQLite: this page's transaction will write, take it now
        prefer_indexes(session)
        customers = _customer_page(
            session, company_id, after_id, now, gap_start, page_size, reference
        )
        if not customers:
            return
        after_id = customers[-1].id
        by_zone: dict[str, list[PageCustomer]] = defaultdict(list)
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
        page: list[_ZoneRows] = []
        for timezone, rows in by_zone.items():
            today = today_by_zone[timezone]
            latest_due = today - dt.timedelta(days=book.earliest_days)
            invoices_by_customer: dict[int, list[Any]] = defaultdict(list)
            ids = [r.id for r in rows]
            for invoice in _invoices(session, ids, today, latest_due, call_wait_start):
                invoices_by_customer[int(invoice[1])].append(invoice)
            page.append(_ZoneRows(timezone, today, rows, invoices_by_customer))
        yield page


@dataclass
class _PagePlanner:
    """Turns a page's rows into its messages: pure computation, no database."""

    book: ScenarioBook
    calendar: BusinessCalendar
    policy: Policy
    now: dt.datetime
    any_time: bool
    send_after_by_zone: dict[str, dt.datetime] = field(default_factory=dict)

    def __call__(self, zones: list[_ZoneRows]) -> list[PlannedMessage]:
        page: list[PlannedMessage] = []
        for zone in zones:
            for row in zone.customers:
                planned = _plan_customer(row, zone.invoices.get(row.id, []), self.book, zone.today)
                if planned is None:
                    continue
                step, scenario, chosen = planned
                if step.channel is not Channel.TASK and (
                    row.in_gap or row.counted >= self.policy.monthly_cap
                ):
                    continue
                page.append(
                    PlannedMessage(
                        customer_id=row.id,
                        reference=str(row.reference),
                        name=str(row.name),
                        timezone=zone.timezone,
                        scenario=scenario,
                        step=step,
                        cycle=zone.today.isoformat(),
                        send_after=self._send_after(step, zone.timezone),
                        invoices=tuple(chosen),
                    )
                )
        page.sort(key=lambda message: message.customer_id)
        return page

    def _send_after(self, step: Step, timezone: str) -> dt.datetime:
        if self.any_time or step.channel is Channel.TASK:
            return self.now
        if timezone not in self.send_after_by_zone:
            self.send_after_by_zone[timezone] = self.calendar.next_send_time(self.now, timezone)
        return self.send_after_by_zone[timezone]


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
    started = _start(
        session, company_id, book, calendar, now, page_size, any_time, reference, policy
    )
    if started is None:
        return
    planner, pages, _now = started
    for zones in pages:
        yield planner(zones)


def _start(
    session: Session,
    company_id: int,
    book: ScenarioBook,
    calendar: BusinessCalendar,
    now: dt.datetime | None,
    page_size: int,
    any_time: bool,
    reference: str | None,
    policy: Policy | None,
) -> tuple[_PagePlanner, Iterator[list[_ZoneRows]], dt.datetime] | None:
    """The planner and the pages of customers to plan, or None while reminders are frozen."""
    now = now or clock.now()
    policy = policy or load_policy(session, company_id)
    if policy.frozen:
        return None
    planner = _PagePlanner(book, calendar, policy, now, any_time)
    return planner, _read_pages(session, company_id, book, policy, now, page_size, reference), now


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
    return _enqueue_rows(session, company_id, messages, now)


def _enqueue_rows(
    session: Session, company_id: int, messages: list[PlannedMessage], now: dt.datetime
) -> int:
    """Any backend: the messages with RETURNING, then their invoices and events."""
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
                "details": _event_details(m),
            }
        )
    return items, events


def _event_details(m: PlannedMessage) -> dict[str, Any]:
    return {
        "step": m.step.key,
        "channel": str(m.step.channel),
        "invoices": [invoice.number for invoice in m.invoices],
        "send_after": m.send_after.isoformat(),
    }


# One statement per page: the planned messages, their invoices and events travel as
# arrays; each invoice and event joins the message row actually inserted, so a message
# that already existed (a second run, another planner) brings nothing of its own.
ENQUEUE_POSTGRESQL = """
WITH planned AS (
    SELECT *
    FROM unnest(
        %(customer_id)s::bigint[], %(scenario)s::text[], %(step)s::text[],
        %(offset_days)s::int[], %(cycle)s::text[], %(channel)s::text[],
        %(template)s::text[], %(send_after)s::timestamptz[], %(details)s::text[]
    ) WITH ORDINALITY AS p (
        customer_id, scenario, step, offset_days, cycle, channel, template, send_after,
        details, position
    )
), messages AS (
    INSERT INTO reminder_messages (
        company_id, customer_id, scenario, step, cycle, channel, template, status,
        next_attempt_at, attempts, created_at
    )
    SELECT %(company_id)s, customer_id, scenario, step, cycle, channel, template,
        %(status)s, send_after, 0, %(now)s
    FROM planned
    ORDER BY position
    ON CONFLICT DO NOTHING
    RETURNING id, customer_id
), items AS (
    INSERT INTO reminder_message_invoices (message_id, invoice_id, step, offset_days)
    SELECT m.id, i.invoice_id, p.step, p.offset_days
    FROM unnest(%(item_customer_id)s::bigint[], %(item_invoice_id)s::bigint[])
        WITH ORDINALITY AS i (customer_id, invoice_id, position)
    JOIN messages AS m ON m.customer_id = i.customer_id
    JOIN planned AS p ON p.customer_id = i.customer_id
    ORDER BY i.position
    ON CONFLICT DO NOTHING
), events AS (
    INSERT INTO timeline_events (
        company_id, customer_id, occurred_at, actor, actor_id, action, subject_type,
        subject_id, details
    )
    SELECT %(company_id)s, m.customer_id, %(now)s, %(actor)s, 'reminders', 'reminder.queued',
        'reminder_message', m.id::text, p.details::json
    FROM messages AS m
    JOIN planned AS p ON p.customer_id = m.customer_id
    ORDER BY p.position
)
SELECT count(*) FROM messages
"""


def _enqueue_postgresql(
    session: Session, company_id: int, messages: list[PlannedMessage], now: dt.datetime
) -> int:
    """The same rows as the generic path, in one round trip (no per-row statements, no
    staging tables); ``tests/domain/test_reminder_enqueue.py`` compares the two."""
    return _execute_enqueue(session, _enqueue_parameters(company_id, messages, now))


def _enqueue_parameters(
    company_id: int, messages: list[PlannedMessage], now: dt.datetime
) -> dict[str, Any]:
    """ENQUEUE_POSTGRESQL's arrays for one page."""
    columns: dict[str, list[Any]] = {
        key: []
        for key in (
            "customer_id",
            "scenario",
            "step",
            "offset_days",
            "cycle",
            "channel",
            "template",
            "send_after",
            "details",
            "item_customer_id",
            "item_invoice_id",
        )
    }
    for m in messages:
        columns["customer_id"].append(m.customer_id)
        columns["scenario"].append(m.scenario)
        columns["step"].append(m.step.key)
        columns["offset_days"].append(m.step.days)
        columns["cycle"].append(m.cycle)
        columns["channel"].append(str(m.step.channel))
        columns["template"].append(m.step.template)
        columns["send_after"].append(m.send_after)
        columns["details"].append(json.dumps(_event_details(m)))
        for invoice in m.invoices:
            columns["item_customer_id"].append(m.customer_id)
            columns["item_invoice_id"].append(invoice.id)
    return {
        **columns,
        "company_id": company_id,
        "status": str(MessageStatus.PENDING),
        "actor": str(Actor.SYSTEM),
        "now": now,
    }


def _execute_enqueue(session: Session, parameters: dict[str, Any]) -> int:
    if not parameters["customer_id"]:
        return 0
    with driver_connection(session.connection()).cursor() as cursor:
        cursor.execute(ENQUEUE_POSTGRESQL, parameters)
        row = cursor.fetchone()
    return int(row[0]) if row else 0


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
    result = RunResult()
    started = _start(
        session, company_id, book, calendar, now, page_size, any_time, reference, policy
    )
    if started is None:
        return result
    planner, pages, now = started
    if session.get_bind().dialect.name != "postgresql":
        for zones in pages:
            page = planner(zones)
            result.planned += len(page)
            result.enqueued += enqueue(session, company_id, page, now)
            session.commit()
        return result
    # PostgreSQL: while the server inserts page k, a thread plans page k + 1 from rows
    # already read (pure Python, no database), so both cores work. Page k + 1 is read
    # before page k is written, in the same transaction: pages share no customer, and
    # nothing planned for one customer depends on another's messages.
    prepare = partial(_prepared_page, planner, company_id, now)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="reminder-planner") as pool:
        ahead: Future[tuple[int, dict[str, Any]]] | None = None
        for zones in pages:
            following = pool.submit(prepare, zones)
            if ahead is not None:
                _write_page(session, result, ahead.result())
            ahead = following
        if ahead is not None:
            _write_page(session, result, ahead.result())
    return result


def _prepared_page(
    planner: _PagePlanner, company_id: int, now: dt.datetime, zones: list[_ZoneRows]
) -> tuple[int, dict[str, Any]]:
    page = planner(zones)
    return len(page), _enqueue_parameters(company_id, page, now)


def _write_page(session: Session, result: RunResult, prepared: tuple[int, dict[str, Any]]) -> None:
    planned, parameters = prepared
    result.planned += planned
    result.enqueued += _execute_enqueue(session, parameters)
    session.commit()
