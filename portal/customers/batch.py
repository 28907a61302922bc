"""Customers created and changed by the thousand (imports): one query reads a batch's
existing rows by reference, one statement inserts the new ones, updates go by primary key,
and the timeline events of the batch are written in one statement. Same checks and same
timeline actions as the one-at-a-time services."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.orm import Session

from portal import clock
from portal.customers.models import Contact, Customer
from portal.timeline.models import Actor
from portal.timeline.service import record_many

# The customer's own columns an import may set, compared to tell a change.
FIELDS: tuple[str, ...] = ("name", "language")
CUSTOMERS = cast(Table, Customer.__table__)
CONTACTS = cast(Table, Contact.__table__)


@dataclass(slots=True)
class Existing:
    id: int
    values: dict[str, Any]
    email: str | None


def existing(db: Session, company_id: int, references: Iterable[str]) -> dict[str, Existing]:
    """Reference -> the customer's id, fields and primary email, for those that exist."""
    wanted = list(set(references))
    if not wanted:
        return {}
    columns = [CUSTOMERS.c.id, CUSTOMERS.c.reference, *(CUSTOMERS.c[f] for f in FIELDS)]
    found: dict[str, Existing] = {}
    for row in db.execute(
        select(*columns).where(
            CUSTOMERS.c.company_id == company_id, CUSTOMERS.c.reference.in_(wanted)
        )
    ):
        found[row.reference] = Existing(row.id, {f: getattr(row, f) for f in FIELDS}, None)
    if found:
        by_id = {each.id: each for each in found.values()}
        query = (
            select(CONTACTS.c.customer_id, CONTACTS.c.email)
            .where(CONTACTS.c.customer_id.in_(by_id), CONTACTS.c.email.is_not(None))
            .order_by(CONTACTS.c.customer_id, CONTACTS.c.is_primary.desc(), CONTACTS.c.id)
        )
        for customer_id, email in db.execute(query):
            if by_id[customer_id].email is None:
                by_id[customer_id].email = email
    return found


def insert_customers(
    db: Session,
    company_id: int,
    rows: Sequence[Mapping[str, Any]],
    *,
    actor: Actor,
    actor_id: str | None,
    source: dict[str, Any],
) -> dict[str, int]:
    """Create customers from ``rows`` (reference, name, and optionally FIELDS, email,
    phone, contact_name); returns reference -> id. A primary contact is added for an
    email or a phone."""
    if not rows:
        return {}
    now = clock.now()
    values = [
        {
            "company_id": company_id,
            "reference": row["reference"],
            "name": row["name"],
            "language": row.get("language") or "fr",
            "timezone": row.get("timezone") or "Europe/Paris",
            "risk_segment": "medium",
            "strategic": False,
            "link_version": 1,
            "created_at": now,
            **{f: row[f] for f in FIELDS if f not in ("name", "language") and f in row},
        }
        for row in rows
    ]
    created = db.execute(
        insert(CUSTOMERS).returning(
            CUSTOMERS.c.reference, CUSTOMERS.c.id, sort_by_parameter_order=True
        ),
        values,
    )
    ids: dict[str, int] = dict(created.all())
    contacts = [
        {
            "customer_id": ids[row["reference"]],
            "name": row.get("contact_name") or "",
            "email": row.get("email"),
            "phone": row.get("phone"),
            "is_primary": True,
            "receives_reminders": True,
        }
        for row in rows
        if row.get("email") or row.get("phone")
    ]
    if contacts:
        db.execute(insert(CONTACTS), contacts)
    _events(
        db,
        company_id,
        [
            (ids[row["reference"]], "customer.created", {"reference": row["reference"], **source})
            for row in rows
        ],
        actor,
        actor_id,
    )
    return ids


def update_customers(
    db: Session,
    company_id: int,
    changes: Sequence[tuple[int, dict[str, tuple[Any, Any]]]],
    *,
    actor: Actor,
    actor_id: str | None,
    source: dict[str, Any],
) -> None:
    """Apply (customer id, {field: (before, after)}) changes; "email" changes the primary
    contact's address (or adds one). Each change is on the customer's timeline."""
    for customer_id, change in changes:
        own = {f: after for f, (_before, after) in change.items() if f in FIELDS}
        if own:
            db.execute(update(CUSTOMERS).where(CUSTOMERS.c.id == customer_id).values(**own))
        if "email" in change:
            _set_primary_email(db, customer_id, change["email"][1])
    _events(
        db,
        company_id,
        [
            (
                customer_id,
                "customer.updated",
                {"changes": {f: [_plain(b), _plain(a)] for f, (b, a) in change.items()}, **source},
            )
            for customer_id, change in changes
        ],
        actor,
        actor_id,
    )


def _set_primary_email(db: Session, customer_id: int, email: str) -> None:
    primary = db.execute(
        select(CONTACTS.c.id)
        .where(CONTACTS.c.customer_id == customer_id)
        .order_by(CONTACTS.c.is_primary.desc(), CONTACTS.c.id)
        .limit(1)
    ).scalar()
    if primary is None:
        db.execute(
            insert(CONTACTS).values(
                customer_id=customer_id,
                name="",
                email=email,
                is_primary=True,
                receives_reminders=True,
            )
        )
    else:
        db.execute(update(CONTACTS).where(CONTACTS.c.id == primary).values(email=email))


def _plain(value: Any) -> Any:
    return value if value is None or isinstance(value, int | str | bool) else str(value)


def _events(
    db: Session,
    company_id: int,
    events: Sequence[tuple[int, str, dict[str, Any]]],
    actor: Actor,
    actor_id: str | None,
) -> None:
    record_many(
        db,
        [
            {
                "company_id": company_id,
                "customer_id": customer_id,
                "actor": actor,
                "actor_id": actor_id,
                "action": action,
                "subject_type": "customer",
                "subject_id": str(customer_id),
                "details": details,
            }
            for customer_id, action, details in events
        ],
    )
