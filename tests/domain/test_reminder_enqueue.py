"""PostgreSQL enqueues a page of planned messages in one statement (arrays joined to the
message rows actually inserted); it must leave exactly the rows of the path every backend
takes (one INSERT … RETURNING, then the invoices and the events): the same messages,
invoices and timeline events, in the same order, and nothing for a message that existed."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.company.models import Company
from portal.customers.models import Customer, RiskSegment
from portal.reminders import planning
from portal.reminders.models import ReminderMessage, ReminderMessageInvoice
from portal.reminders.schedule import BusinessCalendar
from portal.settings import Settings
from portal.timeline.models import TimelineEvent
from tests.factories import make_customer, make_invoice
from tests.reminders_helpers import at, book

pytestmark = pytest.mark.usefixtures("database")

PARIS = BusinessCalendar("FR")
ENQUEUE_PATHS = {
    "every backend": planning._enqueue_rows,
    "postgresql": planning._enqueue_postgresql,
}


@pytest.fixture(autouse=True)
def _postgresql_only(db: Session) -> None:
    if db.get_bind().dialect.name != "postgresql":
        pytest.skip("the one-statement enqueue is PostgreSQL's")


def _seed(db: Session, company: Company) -> list[Customer]:
    """Customers in three timezones and segments, with one to four invoices each, some in
    another currency, some not yet due, one with nothing due."""
    zones = ("Europe/Paris", "America/New_York", "Pacific/Honolulu")
    segments = (RiskSegment.LOW, RiskSegment.HIGH, RiskSegment.MEDIUM)
    customers = []
    for n in range(9):
        customer = make_customer(
            db,
            company,
            timezone=zones[n % 3],
            risk_segment=segments[n % 3],
            strategic=n == 4,
            email=f"c{n}@example.com",
        )
        for k in range(n % 4 + 1):
            make_invoice(
                db,
                customer,
                amount_minor=1_000 * (n + 1) + k,
                due_in_days=(-40, -41, -9, 3)[k] - n % 2,
                currency="USD" if k == 2 else "EUR",
            )
        customers.append(customer)
    make_invoice(db, make_customer(db, company, email="late@example.com"), due_in_days=40)
    db.flush()
    return customers


def _rows(db: Session) -> dict[str, list[Any]]:
    """The rows written, ids replaced by their order and message ids by the customer."""
    messages = list(db.scalars(select(ReminderMessage).order_by(ReminderMessage.id)))
    customer_of = {m.id: m.customer_id for m in messages}
    skip = {"id"}
    items = db.scalars(select(ReminderMessageInvoice).order_by(ReminderMessageInvoice.id))
    events = db.scalars(
        select(TimelineEvent)
        .where(TimelineEvent.action == "reminder.queued")
        .order_by(TimelineEvent.id)
    )
    return {
        "messages": [
            {c.key: getattr(m, c.key) for c in ReminderMessage.__table__.c if c.key not in skip}
            for m in messages
        ],
        "items": [(customer_of[i.message_id], i.invoice_id, i.step, i.offset_days) for i in items],
        "events": [
            (
                e.company_id,
                e.customer_id,
                e.occurred_at,
                e.actor,
                e.actor_id,
                e.subject_type,
                customer_of[int(e.subject_id or 0)],
                e.details,
            )
            for e in events
        ],
    }


def _enqueue_both_ways(
    db: Session, company: Company, pages: list[list[planning.PlannedMessage]], now: dt.datetime
) -> dict[str, tuple[list[int], dict[str, list[Any]]]]:
    results = {}
    for name, enqueue in ENQUEUE_PATHS.items():
        savepoint = db.begin_nested()
        counts = [enqueue(db, company.id, page, now) for page in pages]
        counts.append(enqueue(db, company.id, pages[0], now))  # again: nothing new
        db.expire_all()
        results[name] = (counts, _rows(db))
        savepoint.rollback()
    return results


def test_postgresql_enqueue_writes_the_rows_of_the_generic_path(
    db: Session, company: Company, settings: Settings
) -> None:
    now = at("2026-03-10 10:00")
    _seed(db, company)
    pages = list(planning.plan(db, company.id, book(settings), PARIS, now=now, page_size=4))
    assert sum(len(page) for page in pages) >= 6
    assert len({m.cycle for page in pages for m in page}) > 1  # timezones on both sides of 0h
    assert any(len(m.invoices) > 1 for page in pages for m in page)

    results = _enqueue_both_ways(db, company, pages, now)

    generic, fast = results["every backend"], results["postgresql"]
    assert generic == fast
    counts, rows = fast
    assert counts == [len(page) for page in pages] + [0]
    assert len(rows["messages"]) == len(rows["events"]) == sum(counts)
    assert len(rows["items"]) == sum(len(m.invoices) for page in pages for m in page)


def test_a_message_that_exists_brings_no_invoices_nor_event(
    db: Session, company: Company, settings: Settings
) -> None:
    now = at("2026-03-10 10:00")
    _seed(db, company)
    page = [m for p in planning.plan(db, company.id, book(settings), PARIS, now=now) for m in p]
    first = page[0]
    # Another planner enqueued the first customer's message a moment ago.
    db.add(ReminderMessage(**planning._message_row(company.id, first, now)))
    db.flush()

    results = _enqueue_both_ways(db, company, [page], now)

    generic, fast = results["every backend"], results["postgresql"]
    assert generic == fast
    counts, rows = fast
    assert counts[0] == len(page) - 1
    assert first.customer_id not in {item[0] for item in rows["items"]}
    assert [e[1] for e in rows["events"]].count(first.customer_id) == 0
