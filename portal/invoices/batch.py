"""Invoices by the thousand (imports): the batch variants of ``invoices.editing``.

Existing invoices are read by number, one query per batch; new ones are checked with the
editing service's own checks and inserted in one statement, with their ``invoice.created``
events in another (the details ``create_invoice`` writes). A changed invoice goes through
``update_invoice`` itself, and an invoice settled outside Relance through
``mark_settled_elsewhere``: their rules (payments released, statuses) stay in one place.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from portal import clock
from portal.changes import Problems
from portal.db import insert_many, one_of
from portal.i18n import gettext_ as _
from portal.invoices.editing import (
    InvoiceFields,
    check_amount,
    check_currency,
    check_number,
    mark_settled_elsewhere,
    update_invoice,
)
from portal.invoices.models import Invoice, InvoiceStatus
from portal.timeline.models import Actor
from portal.timeline.service import record_many

INVOICES = cast(Table, Invoice.__table__)
FIELD_NAMES = tuple(f.name for f in dataclasses.fields(InvoiceFields))


@dataclass(slots=True)
class Existing:
    id: int
    fields: InvoiceFields
    paid_minor: int
    status: InvoiceStatus
    created_at: dt.datetime


def existing(db: Session, company_id: int, numbers: Iterable[str]) -> dict[str, Existing]:
    """Number -> the stored invoice's id, fields, paid amount and status (one query)."""
    wanted = list(set(numbers))
    if not wanted:
        return {}
    columns = [
        INVOICES.c.id,
        INVOICES.c.paid_minor,
        INVOICES.c.status,
        INVOICES.c.created_at,
        *(INVOICES.c[name] for name in FIELD_NAMES),
    ]
    query = select(*columns).where(
        INVOICES.c.company_id == company_id, one_of(db, INVOICES.c.number, wanted)
    )
    found: dict[str, Existing] = {}
    for row in db.execute(query).mappings():
        fields = InvoiceFields(**{name: row[name] for name in FIELD_NAMES})
        found[fields.number] = Existing(
            row["id"], fields, row["paid_minor"], InvoiceStatus(row["status"]), row["created_at"]
        )
    return found


def validate_new(fields: InvoiceFields) -> InvoiceFields:
    """``validate_invoice``'s checks that need no database, for an invoice whose number is
    known to be free and whose customer was just looked up. Raises ``FieldErrors``."""
    problems = Problems()
    number = check_number(problems, fields.number)
    if fields.issue_date is None:
        problems.add("issue_date", _("Enter the issue date."))
    if fields.due_date is None:
        problems.add("due_date", _("Enter the due date."))
    elif fields.issue_date is not None and fields.due_date < fields.issue_date:
        problems.add("due_date", _("The due date cannot be before the issue date."))
    currency = check_currency(problems, fields.currency)
    check_amount(problems, fields.amount_minor)
    problems.check()
    return dataclasses.replace(fields, number=number, currency=currency)


def create_invoices(
    db: Session,
    company_id: int,
    items: Sequence[InvoiceFields],
    *,
    actor: Actor,
    actor_id: str | None,
    details: dict[str, Any] | None = None,
) -> None:
    """Insert invoices checked by ``validate_new``; ``invoice.created`` for each."""
    if not items:
        return
    now = clock.now()
    rows = [
        {
            **{name: getattr(fields, name) for name in FIELD_NAMES},
            "company_id": company_id,
            "paid_minor": 0,
            "status": InvoiceStatus.OPEN,
            "created_at": now,
        }
        for fields in items
    ]
    created = insert_many(db, INVOICES, rows)
    extra = details or {}
    record_many(
        db,
        [
            {
                "company_id": company_id,
                "customer_id": fields.customer_id,
                "actor": actor,
                "actor_id": actor_id,
                "action": "invoice.created",
                "subject_type": "invoice",
                "subject_id": invoice_id,
                "details": {
                    "number": fields.number,
                    "amount_minor": fields.amount_minor,
                    "currency": fields.currency,
                    "issue_date": fields.issue_date.isoformat() if fields.issue_date else None,
                    "due_date": fields.due_date.isoformat() if fields.due_date else None,
                    **extra,
                },
            }
            for invoice_id, fields in zip(created, items, strict=True)
        ],
    )


def _load(db: Session, ids: Iterable[int]) -> dict[int, Invoice]:
    return {each.id: each for each in db.scalars(select(Invoice).where(Invoice.id.in_(list(ids))))}


def update_invoices(
    db: Session, items: Sequence[tuple[int, InvoiceFields]], *, actor: Actor, actor_id: str | None
) -> None:
    """Bring existing invoices (by id) in line with ``fields``, through ``update_invoice``
    (which raises ``FieldErrors``: call it per row to reject just that row)."""
    loaded = _load(db, (invoice_id for invoice_id, _ in items))
    for invoice_id, fields in items:
        update_invoice(db, loaded[invoice_id], fields, actor, actor_id)


def settle_elsewhere(
    db: Session, invoice_ids: Sequence[int], *, actor: Actor, actor_id: str | None
) -> int:
    """Open invoices the accounting system no longer lists: settled outside Relance."""
    settled = 0
    for invoice in _load(db, invoice_ids).values():
        if mark_settled_elsewhere(db, invoice, actor, actor_id) is not None:
            settled += 1
    return settled


def same_amount_and_date(
    db: Session, company_id: int, keys: Iterable[tuple[int, int, Any]]
) -> dict[tuple[int, int, Any], str]:
    """(customer id, amount, issue date) -> the number of a stored invoice that has them."""
    wanted = set(keys)
    if not wanted:
        return {}
    query = select(
        INVOICES.c.customer_id, INVOICES.c.amount_minor, INVOICES.c.issue_date, INVOICES.c.number
    ).where(
        # By customer only: the customers are the company's, and a condition on company_id
        # would let the planner scan the whole (company_id, number) index, batch after batch.
        one_of(db, INVOICES.c.customer_id, {key[0] for key in wanted}),
        one_of(db, INVOICES.c.amount_minor, {key[1] for key in wanted}),
    )
    found: dict[tuple[int, int, Any], str] = {}
    for customer_id, amount, issued, number in db.execute(query):
        key = (customer_id, amount, issued)
        if key in wanted:
            found.setdefault(key, number)
    return found


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
