"""Writes handed to ``ordered_writes`` land in order, in the caller's transaction; a failed
one is raised in the caller's thread and what was queued after it is not written."""

from __future__ import annotations

from typing import Any, cast

import pytest
from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from portal import db as portal_db
from portal.company.models import Company
from portal.customers.models import Customer
from portal.invoices.models import Invoice
from portal.ordered_writes import ordered_writes
from portal.timeline.models import Actor, TimelineEvent
from tests.factories import make_customer, make_invoice

_timeline = cast(Table, TimelineEvent.__table__)
_invoices = cast(Table, Invoice.__table__)


def _events(company: Company, customer: Customer, count: int, start: int = 0) -> list[Any]:
    return [
        {
            "company_id": company.id,
            "customer_id": customer.id,
            "occurred_at": customer.created_at,
            "actor": Actor.SYSTEM,
            "actor_id": "test",
            "action": "test.written",
            "subject_type": "test",
            "subject_id": str(n),
            "details": {"n": n},
        }
        for n in range(start, start + count)
    ]


def _written(db: Session) -> list[str | None]:
    query = (
        select(TimelineEvent.subject_id)
        .where(TimelineEvent.action == "test.written")
        .order_by(TimelineEvent.id)
    )
    return list(db.scalars(query))


@pytest.mark.parametrize("background", [True, False])
def test_writes_land_in_order_in_the_callers_transaction(
    db: Session, company: Company, background: bool
) -> None:
    customer = make_customer(db, company)
    invoice = make_invoice(db, customer, amount_minor=10_000)
    db.flush()
    with ordered_writes(db, background=background) as writes:
        writes.insert_rows(_timeline, _events(company, customer, 300), binary=True)
        writes.update_many(_invoices, [{"id": invoice.id, "paid_minor": 2_500}])
        writes.insert_rows(_timeline, _events(company, customer, 200, start=300), binary=True)
        writes.insert_rows(_timeline, [])
    assert _written(db) == [str(n) for n in range(500)]
    paid = db.scalar(select(_invoices.c.paid_minor).where(_invoices.c.id == invoice.id))
    assert paid == 2_500


def test_a_failed_write_is_raised_and_what_follows_is_not_written(
    db: Session, company: Company, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer = make_customer(db, company)
    db.flush()
    attempted: list[int] = []
    for name in ("insert_rows", "copy_rows"):  # SQLite's path, PostgreSQL's
        real = getattr(portal_db, name)

        def spy(*args: Any, _real: Any = real, **kwargs: Any) -> None:
            attempted.append(len(args[2]))
            _real(*args, **kwargs)

        monkeypatch.setattr(portal_db, name, spy)
    broken = _events(company, customer, 1)
    broken[0]["customer_id"] = customer.id + 1_000_000  # no such customer: refused

    def write() -> None:
        with ordered_writes(db) as writes:
            writes.insert_rows(_timeline, _events(company, customer, 5), binary=True)
            writes.insert_rows(_timeline, broken, binary=True)
            writes.insert_rows(_timeline, _events(company, customer, 7, start=100), binary=True)

    with pytest.raises(Exception) as raised:  # noqa: PT011 (psycopg's or SQLAlchemy's)
        write()
    assert "foreign key" in str(raised.value).lower()
    assert attempted == [5, 1]
    db.rollback()


def test_a_failure_of_the_callers_block_drops_what_is_queued(db: Session, company: Company) -> None:
    customer = make_customer(db, company)
    db.flush()

    def write() -> None:
        with ordered_writes(db) as writes:
            writes.insert_rows(_timeline, _events(company, customer, 3), binary=True)
            raise LookupError("the caller failed")

    with pytest.raises(LookupError):
        write()
    # The write under way may have landed; nothing is left running on the connection.
    assert _written(db) in ([], ["0", "1", "2"])
