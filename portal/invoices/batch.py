"""Invoices created and changed by the thousand (imports): existing rows read by number in
one query per batch, new ones inserted in one statement, changes by primary key, and one
timeline event per invoice written in one statement."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.orm import Session

from portal import clock
from portal.invoices.models import Invoice, InvoiceStatus
from portal.timeline.models import Actor
from portal.timeline.service import record_many

# The columns an import sets, compared to tell a change.
FIELDS: tuple[str, ...] = ("customer_id", "issue_date", "due_date", "currency", "amount_minor")
INVOICES = cast(Table, Invoice.__table__)


@dataclass(slots=True)
class Existing:
    id: int
    values: dict[str, Any]
    paid_minor: int
    status: str


def existing(db: Session, company_id: int, numbers: Iterable[str]) -> dict[str, Existing]:
    wanted = list(set(numbers))
    if not wanted:
        return {}
    columns = [
        INVOICES.c.id,
        INVOICES.c.number,
        INVOICES.c.paid_minor,
        INVOICES.c.status,
        *(INVOICES.c[f] for f in FIELDS),
    ]
    query = select(*columns).where(
        INVOICES.c.company_id == company_id, INVOICES.c.number.in_(wanted)
    )
    return {
        row.number: Existing(
            row.id, {f: getattr(row, f) for f in FIELDS}, row.paid_minor, str(row.status)
        )
        for row in db.execute(query)
    }


def same_amount_and_date(
    db: Session, company_id: int, keys: Iterable[tuple[int, int, Any]]
) -> dict[tuple[int, int, Any], str]:
    """(customer id, amount, issue date) -> the number of an invoice that has them."""
    wanted = set(keys)
    if not wanted:
        return {}
    customers = {key[0] for key in wanted}
    query = select(
        INVOICES.c.customer_id, INVOICES.c.amount_minor, INVOICES.c.issue_date, INVOICES.c.number
    ).where(INVOICES.c.company_id == company_id, INVOICES.c.customer_id.in_(customers))
    found: dict[tuple[int, int, Any], str] = {}
    for customer_id, amount, issued, number in db.execute(query):
        key = (customer_id, amount, issued)
        if key in wanted:
            found.setdefault(key, number)
    return found


def insert_invoices(
    db: Session,
    company_id: int,
    rows: Sequence[dict[str, Any]],
    *,
    actor: Actor,
    actor_id: str | None,
    source: dict[str, Any],
) -> None:
    """Create invoices (number and FIELDS each); each is on its customer's timeline."""
    if not rows:
        return
    now = clock.now()
    values = [
        {
            "company_id": company_id,
            "paid_minor": 0,
            "status": InvoiceStatus.OPEN,
            "created_at": now,
            **row,
        }
        for row in rows
    ]
    created = db.execute(
        insert(INVOICES).returning(
            INVOICES.c.id,
            INVOICES.c.customer_id,
            INVOICES.c.number,
            INVOICES.c.amount_minor,
            INVOICES.c.currency,
            sort_by_parameter_order=True,
        ),
        values,
    )
    record_many(
        db,
        [
            {
                "company_id": company_id,
                "customer_id": customer_id,
                "actor": actor,
                "actor_id": actor_id,
                "action": "invoice.created",
                "subject_type": "invoice",
                "subject_id": invoice_id,
                "details": {
                    "number": number,
                    "amount_minor": amount,
                    "currency": currency,
                    **source,
                },
            }
            for invoice_id, customer_id, number, amount, currency in created.all()
        ],
    )


def update_invoices(
    db: Session,
    company_id: int,
    changes: Sequence[tuple[int, int, str, dict[str, tuple[Any, Any]]]],
    *,
    actor: Actor,
    actor_id: str | None,
    source: dict[str, Any],
) -> None:
    """Apply (invoice id, customer id, number, {field: (before, after)}) changes; the
    timeline says what changed, before and after. An amount that falls to what is already
    paid leaves the invoice paid; one above it reopens it."""
    for invoice_id, _customer_id, _number, change in changes:
        values = {f: after for f, (_before, after) in change.items()}
        if "amount_minor" in change:
            amount = change["amount_minor"][1]
            values["status"] = _status_after(db, invoice_id, amount)
        db.execute(update(INVOICES).where(INVOICES.c.id == invoice_id).values(**values))
    record_many(
        db,
        [
            {
                "company_id": company_id,
                "customer_id": customer_id,
                "actor": actor,
                "actor_id": actor_id,
                "action": "invoice.updated",
                "subject_type": "invoice",
                "subject_id": invoice_id,
                "details": {
                    "number": number,
                    "changes": {f: [_plain(b), _plain(a)] for f, (b, a) in change.items()},
                    **source,
                },
            }
            for invoice_id, customer_id, number, change in changes
        ],
    )


def _status_after(db: Session, invoice_id: int, amount: int) -> InvoiceStatus:
    paid, status = db.execute(
        select(INVOICES.c.paid_minor, INVOICES.c.status).where(INVOICES.c.id == invoice_id)
    ).one()
    if status == InvoiceStatus.CANCELLED:
        return InvoiceStatus.CANCELLED
    return InvoiceStatus.PAID if paid >= amount else InvoiceStatus.OPEN


def open_invoices(db: Session, company_id: int, size: int = 5_000) -> Iterator[tuple[int, str]]:
    """(id, number) of every open invoice, streamed in pages by id."""
    last = 0
    while True:
        page = db.execute(
            select(INVOICES.c.id, INVOICES.c.number)
            .where(
                INVOICES.c.company_id == company_id,
                INVOICES.c.status == InvoiceStatus.OPEN,
                INVOICES.c.id > last,
            )
            .order_by(INVOICES.c.id)
            .limit(size)
        ).all()
        if not page:
            return
        yield from ((invoice_id, number) for invoice_id, number in page)
        last = page[-1][0]


def _plain(value: Any) -> Any:
    return value if value is None or isinstance(value, int | str | bool) else str(value)


def settle_elsewhere(
    db: Session,
    company_id: int,
    invoice_id: int,
    actor: Actor,
    actor_id: str | None,
    source: dict[str, Any],
) -> None:
    """An open invoice the accounting system no longer lists: settled outside Relance."""
    from portal.invoices.editing import mark_settled_elsewhere  # type: ignore[import-not-found,import-untyped,unused-ignore]

    mark_settled_elsewhere(db, company_id, invoice_id, actor=actor, actor_id=actor_id)
