"""Contacts and payments received elsewhere, imported row by row through the services
themselves (``upsert_contact``, ``record_offline_payment``): such files are small, and a
preview runs the same calls in a transaction that is rolled back, so its counts and
rejections are exactly what applying will do."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from functools import partial
from typing import cast

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from portal.changes import FieldErrors
from portal.changes import Outcome as Done
from portal.customers.models import ContactRole, Customer
from portal.customers.service import upsert_contact
from portal.customers.validation import ContactFields
from portal.i18n import N_
from portal.imports.apply import Context, FileState, Outcome
from portal.imports.rows import ContactRow, PaymentRow, Rejection, Row
from portal.invoices.models import Invoice, InvoiceStatus
from portal.payments.models import PaymentMethod
from portal.payments.offline import record_offline_payment

UNKNOWN_CUSTOMER = N_("there is no customer %(reference)s")
UNKNOWN_INVOICE = N_("there is no invoice %(number)s")
COUNTED = {Done.CREATED: "new", Done.CHANGED: "changed", Done.UNCHANGED: "unchanged"}

_ROLES = {
    "comptabilite": ContactRole.ACCOUNTING,
    "comptable": ContactRole.ACCOUNTING,
    "accounting": ContactRole.ACCOUNTING,
    "accounts payable": ContactRole.ACCOUNTING,
    "facturation": ContactRole.BILLING,
    "billing": ContactRole.BILLING,
    "direction": ContactRole.MANAGEMENT,
    "gerant": ContactRole.MANAGEMENT,
    "management": ContactRole.MANAGEMENT,
    "achats": ContactRole.PURCHASING,
    "purchasing": ContactRole.PURCHASING,
}
_METHODS = {
    "virement": PaymentMethod.TRANSFER,
    "vir": PaymentMethod.TRANSFER,
    "transfer": PaymentMethod.TRANSFER,
    "bank transfer": PaymentMethod.TRANSFER,
    "cheque": PaymentMethod.CHEQUE,
    "chq": PaymentMethod.CHEQUE,
    "check": PaymentMethod.CHEQUE,
    "compensation": PaymentMethod.OFFSET,
    "offset": PaymentMethod.OFFSET,
}


def _plain(text: str | None) -> str:
    decomposed = unicodedata.normalize("NFKD", text or "")
    return "".join(c for c in decomposed if not unicodedata.combining(c)).strip().lower()


def contact_role(text: str | None) -> str:
    plain = _plain(text)
    if plain in {role.value for role in ContactRole}:
        return plain
    return _ROLES.get(plain, ContactRole.OTHER if plain else ContactRole.BILLING).value


def payment_method(text: str | None) -> str:
    plain = _plain(text)
    return _METHODS.get(plain, PaymentMethod.OTHER if plain else PaymentMethod.TRANSFER).value


def counted(
    db: Session, outcome: Outcome, line: int, call: Callable[[], tuple[object, Done]]
) -> None:
    """Run one service call in a savepoint: its outcome counted, or its refusal rejected
    (the service's messages, in the current language) with nothing of it written."""
    try:
        with db.begin_nested():
            _changed, done = call()
    except FieldErrors as error:
        outcome.reject(Rejection(line, "; ".join(error.errors.values())))
        return
    outcome.counts[COUNTED[done]] += 1


def contacts_batch(
    db: Session, ctx: Context, rows: list[Row], state: FileState, outcome: Outcome
) -> None:
    typed = cast(list[ContactRow], rows)
    references = {row.customer_reference for row in typed}
    found = {
        customer.reference: customer
        for customer in db.scalars(
            select(Customer)
            .where(Customer.company_id == ctx.company_id, Customer.reference.in_(references))
            .options(selectinload(Customer.contacts))
        )
    }
    for row in typed:
        customer = found.get(row.customer_reference)
        if customer is None:
            outcome.reject(
                Rejection(row.line, UNKNOWN_CUSTOMER, {"reference": row.customer_reference})
            )
            continue
        fields = ContactFields(
            name=row.name,
            email=row.email,
            phone=row.phone,
            role=contact_role(row.role),
            is_primary=row.is_primary,
        )
        counted(
            db,
            outcome,
            row.line,
            partial(upsert_contact, db, customer, fields, ctx.actor, ctx.actor_id),
        )


def payments_batch(
    db: Session, ctx: Context, rows: list[Row], state: FileState, outcome: Outcome
) -> None:
    typed = cast(list[PaymentRow], rows)
    numbers = {row.invoice_number for row in typed}
    found = {
        invoice.number: invoice
        for invoice in db.scalars(
            select(Invoice)
            .where(Invoice.company_id == ctx.company_id, Invoice.number.in_(numbers))
            .options(selectinload(Invoice.customer))
        )
    }
    for row in typed:
        invoice = found.get(row.invoice_number)
        if invoice is None:
            outcome.reject(Rejection(row.line, UNKNOWN_INVOICE, {"number": row.invoice_number}))
            continue
        counted(
            db,
            outcome,
            row.line,
            partial(
                record_offline_payment,
                db,
                invoice.customer,
                amount_minor=row.amount_minor,
                currency=row.currency,
                method=payment_method(row.method),
                reference=row.reference,
                received_on=row.date,
                invoice_ids=[invoice.id] if invoice.status is InvoiceStatus.OPEN else [],
                actor=ctx.actor,
                actor_id=ctx.actor_id,
                provider="import",
            ),
        )
