"""What one batch of customers or invoices does: compare with what is stored (one query per
batch keyed by the company's references), validate with the services' own checks, count,
flag, and write through the batch services (``customers.batch``, ``invoices.batch``)."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy.orm import Session, sessionmaker

from portal.changes import FieldErrors
from portal.customers import batch as customers
from portal.customers.models import Customer
from portal.customers.service import upsert_contact
from portal.customers.validation import (
    ContactFields,
    CustomerFields,
    validate_contact,
    validate_customer,
)
from portal.db import transaction
from portal.i18n import N_
from portal.imports import people
from portal.imports.apply import ROW_TWICE, Context, FileState, Handler, Outcome
from portal.imports.mapping import Kind
from portal.imports.rows import CustomerRow, InvoiceRow, Rejection, Row
from portal.invoices import batch as invoices
from portal.invoices.editing import InvoiceFields

UNKNOWN_CUSTOMER = N_("there is no customer %(reference)s: add a column with its name")
SAME_AS = N_("invoice %(number)s has the same customer, amount and date as %(other)s")
SAME_IDENTITY = N_("%(reference)s has the same %(what)s (%(value)s) as %(other)s")
# What a customer row may set; other fields keep their stored values.
_CUSTOMER_COLUMNS = (
    "name",
    "siren",
    "siret",
    "vat_number",
    "address_line1",
    "address_line2",
    "postcode",
    "city",
    "country",
    "language",
)


def refused(line: int, error: FieldErrors) -> Rejection:
    """A row the services refused: their messages, already in the current language."""
    return Rejection(line, "; ".join(error.errors.values()))


def _unique(rows: list[Any], key: str, state: FileState, outcome: Outcome) -> list[Any]:
    kept = []
    for row in rows:
        value = getattr(row, key)
        if state.first_time(value):
            kept.append(row)
        else:
            outcome.reject(Rejection(row.line, ROW_TWICE, {"key": value}))
    return kept


# --- customers --------------------------------------------------------------------------------


def customer_fields(row: CustomerRow, current: CustomerFields | None) -> CustomerFields:
    base = current or CustomerFields(reference=row.reference, name=row.name)
    given = {name: getattr(row, name) for name in _CUSTOMER_COLUMNS}
    return validate_customer(base.replace(**{k: v for k, v in given.items() if v is not None}))


def first_contact(row: CustomerRow, country: str) -> ContactFields | None:
    if not (row.email or row.phone or row.contact_name):
        return None
    fields = ContactFields(
        name=row.contact_name or "", email=row.email, phone=row.phone, is_primary=True
    )
    return validate_contact(fields, country)


def customers_batch(
    db: Session, ctx: Context, rows: list[Row], state: FileState, outcome: Outcome
) -> None:
    typed = _unique(cast(list[CustomerRow], rows), "reference", state, outcome)
    found = customers.existing(db, ctx.company_id, (row.reference for row in typed))
    new: list[tuple[CustomerFields, ContactFields | None]] = []
    changed: list[tuple[int, CustomerRow, CustomerFields, ContactFields | None]] = []
    checked: list[tuple[CustomerRow, CustomerFields, ContactFields | None]] = []
    for row in typed:
        current = found.get(row.reference)
        try:
            fields = customer_fields(row, current.fields if current else None)
            contact = first_contact(row, fields.country)
        except FieldErrors as error:
            outcome.reject(refused(row.line, error))
            continue
        checked.append((row, fields, contact))
        if current is None:
            new.append((fields, contact))
        elif fields != current.fields or (
            contact and contact.email and contact.email != (current.email or "").lower()
        ):
            changed.append((current.id, row, fields, contact))
        else:
            outcome.counts["unchanged"] += 1
    _flag_same_identity(db, ctx, checked, state, outcome)
    outcome.counts["new"] += len(new)
    if ctx.write:
        customers.create_customers(
            db, ctx.company_id, new, actor=ctx.actor, actor_id=ctx.actor_id, details=ctx.source
        )
    for customer_id, row, fields, contact in changed:
        try:
            with db.begin_nested():
                customers.update_customers(
                    db, [(customer_id, fields)], actor=ctx.actor, actor_id=ctx.actor_id
                )
                if contact is not None:
                    customer = db.get_one(Customer, customer_id)
                    upsert_contact(db, customer, contact, ctx.actor, ctx.actor_id)
        except FieldErrors as error:
            outcome.reject(refused(row.line, error))
            continue
        outcome.counts["changed"] += 1


def _flag_same_identity(
    db: Session,
    ctx: Context,
    checked: list[tuple[CustomerRow, CustomerFields, ContactFields | None]],
    state: FileState,
    outcome: Outcome,
) -> None:
    """One company under two references (same SIREN, VAT number or email): imported as
    they are, flagged for review, never merged."""
    stored = customers.same_identity(
        db,
        ctx.company_id,
        sirens={f.siren for _, f, _ in checked if f.siren},
        vat_numbers={f.vat_number for _, f, _ in checked if f.vat_number},
    )
    for row, fields, contact in checked:
        for what, value in (
            ("SIREN", fields.siren),
            ("VAT", fields.vat_number),
            ("email", contact.email if contact else None),
        ):
            if not value:
                continue
            key = f"{'vat' if what == 'VAT' else what.lower()}:{value}"
            other = stored.get(key) or state.identities.setdefault(key, row.reference)
            if other != row.reference:
                outcome.warn(
                    row.line,
                    SAME_IDENTITY,
                    reference=row.reference,
                    what=what,
                    value=value,
                    other=other,
                )


# --- invoices ---------------------------------------------------------------------------------


def invoices_batch(
    db: Session, ctx: Context, rows: list[Row], state: FileState, outcome: Outcome
) -> None:
    typed = _unique(cast(list[InvoiceRow], rows), "number", state, outcome)
    ids = _customer_ids(db, ctx, typed, state, outcome)
    typed = [row for row in typed if row.customer_reference in ids]
    found = invoices.existing(db, ctx.company_id, (row.number for row in typed))
    new: list[tuple[InvoiceRow, InvoiceFields]] = []
    changed: list[tuple[InvoiceRow, int, InvoiceFields]] = []
    settle: list[int] = []
    for row in typed:
        fields = InvoiceFields(
            number=row.number,
            customer_id=ids[row.customer_reference] or 0,  # 0: created by this preview
            issue_date=row.issue_date,
            due_date=row.due_date,
            currency=row.currency,
            amount_minor=row.amount_minor,
        )
        current = found.get(row.number)
        if current is not None and ctx.write and current.created_at > ctx.started_at:
            # Written by an earlier batch of this import: the number is in the file twice.
            outcome.reject(Rejection(row.line, ROW_TWICE, {"key": row.number}))
            continue
        if current is None:
            try:
                new.append((row, invoices.validate_new(fields)))
            except FieldErrors as error:
                outcome.reject(refused(row.line, error))
            continue
        if fields != current.fields:
            changed.append((row, current.id, fields))
        elif row.outstanding_minor == 0 and current.status == "open":
            settle.append(current.id)
        else:
            outcome.counts["unchanged"] += 1
    _flag_duplicates(db, ctx, new, state, outcome)
    outcome.counts["new"] += len(new)
    if ctx.write:
        invoices.create_invoices(
            db,
            ctx.company_id,
            [fields for _row, fields in new],
            actor=ctx.actor,
            actor_id=ctx.actor_id,
            details=ctx.source,
        )
    for row, invoice_id, fields in changed:
        if not fields.customer_id:
            outcome.counts["changed"] += 1  # to a customer this preview would create
            continue
        try:
            with db.begin_nested():
                invoices.update_invoices(
                    db, [(invoice_id, fields)], actor=ctx.actor, actor_id=ctx.actor_id
                )
        except FieldErrors as error:
            outcome.reject(refused(row.line, error))
            continue
        outcome.counts["changed"] += 1
    if settle:
        outcome.counts["changed"] += len(settle)
        if ctx.write:
            invoices.settle_elsewhere(db, settle, actor=ctx.actor, actor_id=ctx.actor_id)


def _customer_ids(
    db: Session, ctx: Context, rows: list[InvoiceRow], state: FileState, outcome: Outcome
) -> dict[str, int | None]:
    """Reference -> customer id; a named customer we do not know yet is created (None in a
    preview); an unnamed one rejects its rows."""
    ids: dict[str, int | None] = dict(
        customers.ids_by_reference(db, ctx.company_id, (row.customer_reference for row in rows))
    )
    to_create: dict[str, tuple[CustomerFields, ContactFields | None]] = {}
    for row in rows:
        ref = row.customer_reference
        if ref in ids or ref in to_create:
            continue
        if ref in state.planned_customers:
            ids[ref] = None
            continue
        if not row.customer_name:
            outcome.reject(Rejection(row.line, UNKNOWN_CUSTOMER, {"reference": ref}))
            continue
        try:
            fields = validate_customer(CustomerFields(reference=ref, name=row.customer_name))
            contact = None
            if row.customer_email:
                contact = validate_contact(
                    ContactFields(email=row.customer_email, is_primary=True), fields.country
                )
        except FieldErrors as error:
            outcome.reject(refused(row.line, error))
            continue
        to_create[ref] = (fields, contact)
    outcome.counts["customers_new"] += len(to_create)
    if ctx.write:
        created = customers.create_customers(
            db,
            ctx.company_id,
            list(to_create.values()),
            actor=ctx.actor,
            actor_id=ctx.actor_id,
            details=ctx.source,
        )
        ids.update(created)
    else:
        state.planned_customers.update(to_create)
        ids.update(dict.fromkeys(to_create))
    return ids


def _flag_duplicates(
    db: Session,
    ctx: Context,
    new: list[tuple[InvoiceRow, InvoiceFields]],
    state: FileState,
    outcome: Outcome,
) -> None:
    """The same customer, amount and issue date under another number: imported, flagged."""
    stored = invoices.same_amount_and_date(
        db,
        ctx.company_id,
        (
            (fields.customer_id, fields.amount_minor, fields.issue_date)
            for _row, fields in new
            if fields.customer_id
        ),
    )
    for row, fields in new:
        key = (fields.customer_id, fields.amount_minor, fields.issue_date)
        other = stored.get(key) if fields.customer_id else None
        if other is None:
            digest = hash((row.customer_reference, fields.amount_minor, fields.issue_date))
            line = state.amount_keys.setdefault(digest, row.line)
            if line != row.line:
                other = f"line {line}"
        if other is not None:
            outcome.warn(row.line, SAME_AS, number=row.number, other=other)


def settle_missing(
    factory: sessionmaker[Session], ctx: Context, state: FileState, outcome: Outcome
) -> None:
    """Open invoices the file no longer lists: counted in a preview, settled when applied."""
    with factory() as db:
        missing = [
            invoice_id
            for invoice_id, number in invoices.open_invoices(db, ctx.company_id)
            if hash(number) not in state.keys
        ]
    outcome.counts["settled"] = len(missing)
    if not ctx.write:
        return
    for start in range(0, len(missing), 500):
        with transaction(factory) as db:
            invoices.settle_elsewhere(
                db, missing[start : start + 500], actor=ctx.actor, actor_id=ctx.actor_id
            )


HANDLERS: dict[Kind, Handler] = {
    Kind.CUSTOMERS: customers_batch,
    Kind.INVOICES: invoices_batch,
    Kind.CONTACTS: people.contacts_batch,
    Kind.PAYMENTS: people.payments_batch,
}
