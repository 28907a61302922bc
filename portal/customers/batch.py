"""Customers by the thousand (imports): the batch variants of ``customers.service``.

The same validation (``validate_customer``, ``validate_contact``) and the same timeline
actions as the one-at-a-time services; what differs is how rows reach the database: one
query reads a batch's existing customers by reference, one statement inserts the new ones
with their first contact, one statement writes their timeline events. A changed customer
goes through ``update_customer`` itself (changes are few; their rules stay in one place).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, or_, select
from sqlalchemy.orm import Session

from portal import clock
from portal.changes import plain
from portal.customers.models import Contact, ContactRole, Customer, RiskSegment
from portal.customers.service import update_customer
from portal.customers.validation import ContactFields, CustomerFields
from portal.db import insert_many, one_of
from portal.timeline.models import Actor
from portal.timeline.service import record_many

CUSTOMERS = cast(Table, Customer.__table__)
CONTACTS = cast(Table, Contact.__table__)
FIELD_NAMES = tuple(f.name for f in dataclasses.fields(CustomerFields))


@dataclass(slots=True)
class Existing:
    id: int
    fields: CustomerFields
    email: str | None  # the primary contact's (else the first contact with one)


def existing(db: Session, company_id: int, references: Iterable[str]) -> dict[str, Existing]:
    """Reference -> id, current fields and email of the customers that exist (2 queries)."""
    wanted = list(set(references))
    if not wanted:
        return {}
    columns = [CUSTOMERS.c.id, *(CUSTOMERS.c[name] for name in FIELD_NAMES)]
    query = select(*columns).where(
        CUSTOMERS.c.company_id == company_id, one_of(db, CUSTOMERS.c.reference, wanted)
    )
    found: dict[str, Existing] = {}
    for row in db.execute(query).mappings():
        fields = CustomerFields(**{name: plain(row[name]) for name in FIELD_NAMES})
        found[fields.reference] = Existing(row["id"], fields, None)
    by_id = {each.id: each for each in found.values()}
    if by_id:
        emails = (
            select(CONTACTS.c.customer_id, CONTACTS.c.email)
            .where(one_of(db, CONTACTS.c.customer_id, by_id), CONTACTS.c.email.is_not(None))
            .order_by(CONTACTS.c.customer_id, CONTACTS.c.is_primary.desc(), CONTACTS.c.id)
        )
        for customer_id, email in db.execute(emails):
            if by_id[customer_id].email is None:
                by_id[customer_id].email = email
    return found


def ids_by_reference(db: Session, company_id: int, references: Iterable[str]) -> dict[str, int]:
    """Reference -> id of the customers that exist, in one query (invoice imports)."""
    wanted = list(set(references))
    if not wanted:
        return {}
    query = select(CUSTOMERS.c.reference, CUSTOMERS.c.id).where(
        CUSTOMERS.c.company_id == company_id, one_of(db, CUSTOMERS.c.reference, wanted)
    )
    return dict(db.execute(query).all())


def same_identity(
    db: Session, company_id: int, *, sirens: Iterable[str], vat_numbers: Iterable[str]
) -> dict[str, str]:
    """ "siren:<n>" / "vat:<n>" -> the reference of a stored customer that has it."""
    sirens, vat_numbers = set(sirens), set(vat_numbers)
    if not sirens and not vat_numbers:
        return {}
    query = select(CUSTOMERS.c.reference, CUSTOMERS.c.siren, CUSTOMERS.c.vat_number).where(
        CUSTOMERS.c.company_id == company_id,
        or_(one_of(db, CUSTOMERS.c.siren, sirens), one_of(db, CUSTOMERS.c.vat_number, vat_numbers)),
    )
    found: dict[str, str] = {}
    for reference, siren, vat_number in db.execute(query):
        if siren in sirens:
            found.setdefault(f"siren:{siren}", reference)
        if vat_number in vat_numbers:
            found.setdefault(f"vat:{vat_number}", reference)
    return found


def create_customers(
    db: Session,
    company_id: int,
    items: Sequence[tuple[CustomerFields, ContactFields | None]],
    *,
    actor: Actor,
    actor_id: str | None,
    details: dict[str, Any] | None = None,
) -> dict[str, int]:
    """Insert validated customers (``validate_customer``), each with its first contact
    (``validate_contact``) when given; ``customer.created`` and ``contact.added`` on their
    timelines. Returns reference -> id."""
    if not items:
        return {}
    now = clock.now()
    rows = [
        {
            **_values(fields),
            "risk_segment": RiskSegment(fields.risk_segment),
            "company_id": company_id,
            "link_version": 1,
            "created_at": now,
        }
        for fields, _contact in items
    ]
    new_ids = insert_many(db, CUSTOMERS, rows)
    ids = {fields.reference: new_id for (fields, _), new_id in zip(items, new_ids, strict=True)}
    extra = details or {}
    events = [
        _event(
            company_id,
            ids[fields.reference],
            actor,
            actor_id,
            "customer.created",
            "customer",
            ids[fields.reference],
            {"fields": {k: plain(v) for k, v in _values(fields).items()}, **extra},
        )
        for fields, _contact in items
    ]
    contacts = [(ids[fields.reference], contact) for fields, contact in items if contact]
    if contacts:
        values = [
            {
                **_values(contact),
                "role": ContactRole(contact.role),
                "is_primary": True,  # a customer's first contact is the one reminders go to
                "customer_id": customer_id,
            }
            for customer_id, contact in contacts
        ]
        added = insert_many(db, CONTACTS, values)
        for contact_id, row in zip(added, values, strict=True):
            customer_id, name = row["customer_id"], row["name"]
            fields_json = {k: plain(v) for k, v in row.items() if k != "customer_id"}
            events.append(
                _event(
                    company_id,
                    customer_id,
                    actor,
                    actor_id,
                    "contact.added",
                    "contact",
                    contact_id,
                    {"name": name, "fields": fields_json, **extra},
                )
            )
    record_many(db, events)
    return ids


def update_customers(
    db: Session,
    items: Sequence[tuple[int, CustomerFields]],
    *,
    actor: Actor,
    actor_id: str | None,
) -> None:
    """Bring existing customers (by id) in line with ``fields``, through the service."""
    if not items:
        return
    loaded = {
        each.id: each
        for each in db.scalars(select(Customer).where(Customer.id.in_([i for i, _ in items])))
    }
    for customer_id, fields in items:
        update_customer(db, loaded[customer_id], fields, actor, actor_id)


def _values(fields: Any) -> dict[str, Any]:
    """A fields dataclass as a dict (dataclasses.asdict copies deeply, and costs more)."""
    return {name: getattr(fields, name) for name in _NAMES[type(fields)]}


_NAMES = {
    kind: tuple(f.name for f in dataclasses.fields(kind))
    for kind in (CustomerFields, ContactFields)
}


def _event(
    company_id: int,
    customer_id: int,
    actor: Actor,
    actor_id: str | None,
    action: str,
    subject_type: str,
    subject_id: int,
    details: dict[str, Any],
) -> dict[str, Any]:
    return {
        "company_id": company_id,
        "customer_id": customer_id,
        "actor": actor,
        "actor_id": actor_id,
        "action": action,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "details": details,
    }
