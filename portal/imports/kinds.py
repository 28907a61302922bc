"""What one batch of each kind of row does: compare with what is stored (one query per batch
keyed by the company's references), count, flag, and write through the batch services."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy.orm import Session, sessionmaker

from portal.customers import batch as customers
from portal.db import transaction
from portal.i18n import N_
from portal.imports.apply import ROW_TWICE, Context, FileState, Handler, Outcome
from portal.imports.mapping import Kind
from portal.imports.rows import CustomerRow, InvoiceRow, Rejection, Row
from portal.invoices import batch as invoices


def _changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {
        name: (before.get(name), value)
        for name, value in after.items()
        if value is not None and before.get(name) != value
    }


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


def _customer_values(row: CustomerRow) -> dict[str, Any]:
    values: dict[str, Any] = {"name": row.name, "language": row.language}
    for name in customers.FIELDS:
        if name not in values and hasattr(row, name):
            values[name] = getattr(row, name)
    return values


def customers_batch(
    db: Session, ctx: Context, rows: list[Row], state: FileState, outcome: Outcome
) -> None:
    typed = _unique(cast(list[CustomerRow], rows), "reference", state, outcome)
    found = customers.existing(db, ctx.company_id, (row.reference for row in typed))
    new: list[dict[str, Any]] = []
    changed: list[tuple[int, dict[str, tuple[Any, Any]]]] = []
    for row in typed:
        _flag_same_identity(row, state, outcome)
        values = _customer_values(row)
        current = found.get(row.reference)
        if current is None:
            new.append(
                {"reference": row.reference, **values, "email": row.email, "phone": row.phone}
            )
            continue
        change = _changes(current.values, values)
        if row.email and row.email.lower() != (current.email or "").lower():
            change["email"] = (current.email, row.email)
        if change:
            changed.append((current.id, change))
        else:
            outcome.counts["unchanged"] += 1
    outcome.counts["new"] += len(new)
    outcome.counts["changed"] += len(changed)
    if ctx.write:
        customers.insert_customers(
            db, ctx.company_id, new, actor=ctx.actor, actor_id=ctx.actor_id, source=ctx.source
        )
        customers.update_customers(
            db, ctx.company_id, changed, actor=ctx.actor, actor_id=ctx.actor_id, source=ctx.source
        )


def _flag_same_identity(row: CustomerRow, state: FileState, outcome: Outcome) -> None:
    """One company under two references: the same SIREN, VAT number or email."""
    for label, value in (("SIREN", row.siren), ("VAT", row.vat_number), ("email", row.email)):
        if not value:
            continue
        key = f"{label}:{value.replace(' ', '').lower()}"
        other = state.identities.setdefault(key, row.reference)
        if other != row.reference:
            outcome.warn(
                row.line,
                N_("%(reference)s has the same %(what)s (%(value)s) as %(other)s"),
                reference=row.reference,
                what=label,
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
    new: list[dict[str, Any]] = []
    changed: list[tuple[int, int, str, dict[str, tuple[Any, Any]]]] = []
    for row in typed:
        customer_id = ids[row.customer_reference]
        values = {
            "customer_id": customer_id,
            "issue_date": row.issue_date,
            "due_date": row.due_date,
            "currency": row.currency,
            "amount_minor": row.amount_minor,
        }
        current = found.get(row.number)
        if current is None:
            new.append(
                {"number": row.number, **values, "_line": row.line, "_ref": row.customer_reference}
            )
            continue
        if customer_id is None:  # its customer is new in this preview
            values["customer_id"] = -1
        change = _changes(current.values, values)
        if change:
            changed.append((current.id, current.values["customer_id"], row.number, change))
        else:
            outcome.counts["unchanged"] += 1
    _flag_duplicates(db, ctx, new, ids, state, outcome)
    outcome.counts["new"] += len(new)
    outcome.counts["changed"] += len(changed)
    if ctx.write:
        for each in new:
            del each["_line"], each["_ref"]
        invoices.insert_invoices(
            db, ctx.company_id, new, actor=ctx.actor, actor_id=ctx.actor_id, source=ctx.source
        )
        invoices.update_invoices(
            db, ctx.company_id, changed, actor=ctx.actor, actor_id=ctx.actor_id, source=ctx.source
        )


def _customer_ids(
    db: Session, ctx: Context, rows: list[InvoiceRow], state: FileState, outcome: Outcome
) -> dict[str, int | None]:
    """Reference -> customer id; a named customer we do not know yet is created (None in a
    preview); an unnamed one rejects its rows."""
    found = customers.existing(db, ctx.company_id, (row.customer_reference for row in rows))
    ids: dict[str, int | None] = {ref: each.id for ref, each in found.items()}
    to_create: dict[str, dict[str, Any]] = {}
    for row in rows:
        ref = row.customer_reference
        if ref in ids or ref in to_create:
            continue
        if ref in state.planned_customers:
            ids[ref] = None
        elif row.customer_name:
            to_create[ref] = {
                "reference": ref,
                "name": row.customer_name,
                "email": row.customer_email,
            }
        else:
            outcome.reject(
                Rejection(
                    row.line,
                    N_("there is no customer %(reference)s: add a column with its name"),
                    {"reference": ref},
                )
            )
    outcome.counts["customers_new"] += len(to_create)
    if ctx.write:
        ids.update(
            customers.insert_customers(
                db,
                ctx.company_id,
                list(to_create.values()),
                actor=ctx.actor,
                actor_id=ctx.actor_id,
                source=ctx.source,
            )
        )
    else:
        state.planned_customers.update(to_create)
        ids.update(dict.fromkeys(to_create))
    return ids


def _flag_duplicates(
    db: Session,
    ctx: Context,
    new: list[dict[str, Any]],
    ids: dict[str, int | None],
    state: FileState,
    outcome: Outcome,
) -> None:
    """The same customer, amount and issue date under another number: imported, flagged."""
    known = [row for row in new if row["customer_id"] is not None]
    stored = invoices.same_amount_and_date(
        db,
        ctx.company_id,
        ((row["customer_id"], row["amount_minor"], row["issue_date"]) for row in known),
    )
    message = N_("invoice %(number)s has the same customer, amount and date as %(other)s")
    for row in new:
        key = (row["customer_id"], row["amount_minor"], row["issue_date"])
        other = stored.get(key) if row["customer_id"] is not None else None
        if other is None:
            digest = hash((row["_ref"], key[1], key[2]))
            line = state.amount_keys.setdefault(digest, row["_line"])
            if line != row["_line"]:
                other = f"line {line}"
        if other is not None and other != row["number"]:
            outcome.warn(row["_line"], message, number=row["number"], other=other)


def settle_missing(
    factory: sessionmaker[Session], ctx: Context, state: FileState, outcome: Outcome
) -> None:
    """Open invoices the file no longer lists: counted in a preview, settled when applied."""
    with factory() as db:
        missing = [
            (invoice_id, number)
            for invoice_id, number in invoices.open_invoices(db, ctx.company_id)
            if hash(number) not in state.keys
        ]
    outcome.counts["settled"] = len(missing)
    if not ctx.write or not missing:
        return
    for start in range(0, len(missing), 500):
        with transaction(factory) as db:
            for invoice_id, _number in missing[start : start + 500]:
                invoices.settle_elsewhere(
                    db, ctx.company_id, invoice_id, ctx.actor, ctx.actor_id, ctx.source
                )


def _not_yet(
    db: Session, ctx: Context, rows: list[Row], state: FileState, outcome: Outcome
) -> None:
    for row in rows:
        outcome.reject(Rejection(row.line, N_("this kind of import is not available yet")))


HANDLERS: dict[Kind, Handler] = {
    Kind.CUSTOMERS: customers_batch,
    Kind.INVOICES: invoices_batch,
    Kind.CONTACTS: _not_yet,
    Kind.PAYMENTS: _not_yet,
}
