"""Creating and changing customers and their contacts: one path for the back office's
forms, imports and the API (validation, timeline, upsert by reference).

Every change records a timeline event in the same transaction, with who did it and, for
edits, each changed field's value before and after (``{"changes": {field: [old, new]}}``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import clock
from portal.changes import (
    Change,
    FieldErrors,
    Outcome,
    apply_changes,
    current_fields,
    plain,
    timeline_changes,
)
from portal.customers.models import Contact, ContactRole, Customer, RiskSegment
from portal.customers.validation import (
    ContactFields,
    CustomerFields,
    validate_contact,
    validate_customer,
)
from portal.i18n import gettext_ as _
from portal.timeline.models import Actor
from portal.timeline.service import record
from portal.users.models import Role, User

OWNER_ROLES = (Role.ADMIN, Role.CREDIT_MANAGER)

__all__ = [
    "ContactFields",
    "CustomerFields",
    "FieldErrors",
    "Outcome",
    "add_contact",
    "contact_fields",
    "create_customer",
    "customer_fields",
    "customers_with_identifier",
    "find_by_reference",
    "find_contact",
    "remove_contact",
    "update_contact",
    "update_customer",
    "upsert_contact",
    "upsert_customer",
    "validate_contact",
    "validate_customer",
]


def find_by_reference(session: Session, company_id: int, reference: str) -> Customer | None:
    return session.scalars(
        select(Customer).where(
            Customer.company_id == company_id, Customer.reference == reference.strip()
        )
    ).one_or_none()


def customer_fields(customer: Customer) -> CustomerFields:
    """The customer's current values, e.g. to fill an edit form."""
    return current_fields(CustomerFields, customer)


def _column_values(fields: CustomerFields) -> dict[str, Any]:
    values = dataclasses.asdict(fields)
    values["risk_segment"] = RiskSegment(fields.risk_segment)
    return values


def _check_owner(session: Session, owner_user_id: int | None) -> None:
    if owner_user_id is None:
        return
    owner = session.get(User, owner_user_id)
    if owner is None or not owner.is_active or owner.role not in OWNER_ROLES:
        raise FieldErrors({"owner_user_id": _("Choose a credit manager.")})


def _check_reference_free(
    session: Session, company_id: int, reference: str, customer_id: int | None = None
) -> None:
    other = find_by_reference(session, company_id, reference)
    if other is not None and other.id != customer_id:
        raise FieldErrors({"reference": _("Another customer already has this reference.")})


def create_customer(
    session: Session,
    company_id: int,
    fields: CustomerFields,
    actor: Actor,
    actor_id: str | None = None,
    *,
    scenarios: Collection[str] | None = None,
) -> Customer:
    """A new customer (timeline ``customer.created``). Raises ``FieldErrors``."""
    fields = validate_customer(fields, scenarios=scenarios)
    _check_owner(session, fields.owner_user_id)
    _check_reference_free(session, company_id, fields.reference)
    customer = Customer(company_id=company_id, created_at=clock.now(), **_column_values(fields))
    session.add(customer)
    session.flush()
    record(
        session,
        company_id=company_id,
        customer_id=customer.id,
        actor=actor,
        actor_id=actor_id,
        action="customer.created",
        subject_type="customer",
        subject_id=customer.id,
        details={"fields": {k: plain(v) for k, v in dataclasses.asdict(fields).items()}},
    )
    return customer


def update_customer(
    session: Session,
    customer: Customer,
    fields: CustomerFields,
    actor: Actor,
    actor_id: str | None = None,
    *,
    scenarios: Collection[str] | None = None,
) -> dict[str, Change]:
    """Apply ``fields``; return the changes ``{field: (before, after)}``, empty if none.

    A change records ``customer.updated`` with ``{"changes": {field: [before, after]}}``.
    Raises ``FieldErrors`` and changes nothing when a field is bad.
    """
    fields = validate_customer(fields, scenarios=scenarios)
    if fields.owner_user_id != customer.owner_user_id:
        _check_owner(session, fields.owner_user_id)
    if fields.reference != customer.reference:
        _check_reference_free(session, customer.company_id, fields.reference, customer.id)
    changes = apply_changes(customer, _column_values(fields))
    if "risk_segment" in changes and actor is Actor.USER:
        # A credit manager chose it: the nightly suggestion leaves it alone from now on.
        customer.risk_segment_pinned = True
    if changes:
        customer.updated_at = clock.now()
        record(
            session,
            company_id=customer.company_id,
            customer_id=customer.id,
            actor=actor,
            actor_id=actor_id,
            action="customer.updated",
            subject_type="customer",
            subject_id=customer.id,
            details={"changes": timeline_changes(changes)},
        )
    return changes


def upsert_customer(
    session: Session,
    company_id: int,
    fields: CustomerFields,
    actor: Actor,
    actor_id: str | None = None,
    *,
    scenarios: Collection[str] | None = None,
) -> tuple[Customer, Outcome]:
    """Create the customer with this reference, or bring it in line with ``fields``."""
    existing = find_by_reference(session, company_id, fields.reference)
    if existing is None:
        return create_customer(
            session, company_id, fields, actor, actor_id, scenarios=scenarios
        ), Outcome.CREATED
    changes = update_customer(session, existing, fields, actor, actor_id, scenarios=scenarios)
    return existing, Outcome.CHANGED if changes else Outcome.UNCHANGED


# --- contacts -----------------------------------------------------------------------------


def contact_fields(contact: Contact) -> ContactFields:
    return current_fields(ContactFields, contact)


def _contact_values(fields: ContactFields) -> dict[str, Any]:
    values = dataclasses.asdict(fields)
    values["role"] = ContactRole(fields.role)
    return values


def _contact_event(
    session: Session,
    customer: Customer,
    contact: Contact,
    action: str,
    actor: Actor,
    actor_id: str | None,
    details: dict[str, Any],
) -> None:
    customer.updated_at = clock.now()  # a nightly sync by updated_since sees its contacts
    record(
        session,
        company_id=customer.company_id,
        customer_id=customer.id,
        actor=actor,
        actor_id=actor_id,
        action=action,
        subject_type="contact",
        subject_id=contact.id,
        details={"name": contact.name, **details},
    )


def _one_primary(
    session: Session, customer: Customer, chosen: Contact, actor: Actor, actor_id: str | None
) -> None:
    """``chosen`` became the primary contact: the others stop being it."""
    for other in customer.contacts:
        if other is not chosen and other.is_primary:
            other.is_primary = False
            _contact_event(
                session,
                customer,
                other,
                "contact.updated",
                actor,
                actor_id,
                {"changes": {"is_primary": [True, False]}},
            )


def add_contact(
    session: Session,
    customer: Customer,
    fields: ContactFields,
    actor: Actor,
    actor_id: str | None = None,
) -> Contact:
    fields = validate_contact(fields, customer.country)
    contact = Contact(**_contact_values(fields))
    if not customer.contacts:
        contact.is_primary = True  # the first contact is the one reminders go to
    customer.contacts.append(contact)
    session.flush()
    if contact.is_primary:
        _one_primary(session, customer, contact, actor, actor_id)
    _contact_event(
        session,
        customer,
        contact,
        "contact.added",
        actor,
        actor_id,
        {"fields": {k: plain(v) for k, v in _contact_values(fields).items()}},
    )
    return contact


def update_contact(
    session: Session,
    contact: Contact,
    fields: ContactFields,
    actor: Actor,
    actor_id: str | None = None,
) -> dict[str, Change]:
    customer = contact.customer
    fields = validate_contact(fields, customer.country)
    changes = apply_changes(contact, _contact_values(fields))
    if "email" in changes:
        contact.email_bounced_at = None  # a new address has not bounced
    if changes:
        if contact.is_primary:
            _one_primary(session, customer, contact, actor, actor_id)
        _contact_event(
            session,
            customer,
            contact,
            "contact.updated",
            actor,
            actor_id,
            {"changes": timeline_changes(changes)},
        )
    return changes


def remove_contact(
    session: Session, contact: Contact, actor: Actor, actor_id: str | None = None
) -> None:
    customer = contact.customer
    _contact_event(
        session,
        customer,
        contact,
        "contact.removed",
        actor,
        actor_id,
        {"fields": {k: plain(v) for k, v in dataclasses.asdict(contact_fields(contact)).items()}},
    )
    customer.contacts.remove(contact)
    session.flush()


def find_contact(customer: Customer, fields: ContactFields) -> Contact | None:
    """The contact these (normalised) fields describe: same email, else same phone, else
    same name (case-insensitive)."""
    for key in ("email", "phone", "name"):
        wanted = getattr(fields, key)
        if wanted:
            for contact in customer.contacts:
                value = getattr(contact, key)
                if value and value.casefold() == wanted.casefold():
                    return contact
            return None
    return None


def upsert_contact(
    session: Session,
    customer: Customer,
    fields: ContactFields,
    actor: Actor,
    actor_id: str | None = None,
) -> tuple[Contact, Outcome]:
    """Add the contact, or bring the one with the same email (else phone, else name) in
    line with ``fields``."""
    fields = validate_contact(fields, customer.country)
    existing = find_contact(customer, fields)
    if existing is None:
        return add_contact(session, customer, fields, actor, actor_id), Outcome.CREATED
    # A row that does not say "primary" leaves the primary contact as it is.
    fields = fields.replace(is_primary=fields.is_primary or existing.is_primary)
    changes = update_contact(session, existing, fields, actor, actor_id)
    return existing, Outcome.CHANGED if changes else Outcome.UNCHANGED


def customers_with_identifier(
    session: Session, company_id: int, *, siren: str | None = None, vat_number: str | None = None
) -> list[Customer]:
    """Customers with this SIREN or VAT number (normalised first): for imports and
    e-invoices that name a company by its identifiers rather than our reference."""
    query = select(Customer).where(Customer.company_id == company_id)
    if siren:
        query = query.where(Customer.siren == "".join(siren.split()))
    elif vat_number:
        query = query.where(Customer.vat_number == "".join(vat_number.split()).upper())
    else:
        return []
    return list(session.scalars(query.order_by(Customer.id)))
