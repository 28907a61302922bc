"""E-invoices imported (Factur-X PDFs, UBL, CII; one file or a zip of many): each invoice
with its PDF and its customer, found by SIREN or VAT number, else created; each credit
note applied to the invoices it names. Through the services (``upsert_customer``,
``upsert_invoice``, ``attach_pdf``, ``upsert_credit_note``), one document per savepoint;
a preview runs the same calls in a transaction that is rolled back."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from portal.changes import FieldErrors
from portal.changes import Outcome as Done
from portal.customers.models import Customer
from portal.customers.service import (
    create_customer,
    customers_with_identifier,
    find_by_reference,
    upsert_contact,
)
from portal.customers.validation import ContactFields, CustomerFields
from portal.db import transaction
from portal.i18n import N_
from portal.imports.apply import Context, Outcome
from portal.imports.einvoice import EInvoice, EInvoiceError, EInvoiceParty, read_einvoices
from portal.imports.rows import Rejection
from portal.invoices.credit_notes import CreditNoteFields, upsert_credit_note
from portal.invoices.editing import InvoiceFields, attach_pdf, upsert_invoice
from portal.money import format_plain

COUNTED = {Done.CREATED: "new", Done.CHANGED: "changed", Done.UNCHANGED: "unchanged"}
NO_DUE_DATE = N_("%(number)s gives no due date: it is due on its issue date")


def run(
    factory: sessionmaker[Session], ctx: Context, path: Path, filename: str, max_bytes: int
) -> Outcome:
    """Read the file (or the zip of files) and import each document in turn; a
    document that cannot be read is a rejected "row" numbered by its place in the file."""
    outcome = Outcome()
    documents = read_einvoices([(filename, path.read_bytes())], max_bytes=max_bytes)
    for line, document in enumerate(documents, start=1):
        outcome.rows += 1
        if isinstance(document, EInvoiceError):
            label = f"{document.filename}: " if document.filename else ""
            outcome.reject(Rejection(line, f"{label}{document.message}"))
            continue
        if len(outcome.sample) < 10:
            outcome.sample.append({"line": line, "values": _sample(document)})
        if ctx.write:
            with transaction(factory) as db:
                _counted(db, ctx, document, line, outcome)
        else:
            with factory() as db:
                try:
                    _counted(db, ctx, document, line, outcome)
                finally:
                    db.rollback()  # a preview writes nothing
    return outcome


def _counted(db: Session, ctx: Context, document: EInvoice, line: int, outcome: Outcome) -> None:
    try:
        with db.begin_nested():
            done = _one(db, ctx, document, line, outcome)
    except FieldErrors as error:
        message = "; ".join(error.errors.values())
        outcome.reject(Rejection(line, f"{document.number}: {message}"))
    else:
        outcome.counts[COUNTED[done]] += 1


def _sample(document: EInvoice) -> dict[str, str]:
    return {
        "number": document.number,
        "customer_name": document.buyer.name,
        "issue_date": document.issue_date.isoformat(),
        "due_date": document.due_date.isoformat() if document.due_date else "",
        "amount": format_plain(document.total_minor, document.currency),
        "currency": document.currency,
    }


def _one(db: Session, ctx: Context, document: EInvoice, line: int, outcome: Outcome) -> Done:
    customer = _customer(db, ctx, document.buyer, document.buyer_reference, outcome)
    if document.kind == "credit_note":
        fields = CreditNoteFields(
            number=document.number,
            issue_date=document.issue_date,
            currency=document.currency,
            amount_minor=document.total_minor,
        )
        note, done = upsert_credit_note(
            db, customer, fields, document.referenced_invoice_numbers, ctx.actor, ctx.actor_id
        )
        if document.pdf and note.pdf_path is None and ctx.documents_dir:
            attach_pdf(db, note, document.pdf, ctx.documents_dir, ctx.actor, ctx.actor_id)
        return done
    if document.due_date is None:
        outcome.warn(line, NO_DUE_DATE, number=document.number)
    invoice_fields = InvoiceFields(
        number=document.number,
        customer_id=customer.id,
        issue_date=document.issue_date,
        due_date=document.due_date or document.issue_date,
        currency=document.currency,
        amount_minor=document.total_minor,
    )
    invoice, done = upsert_invoice(db, ctx.company_id, invoice_fields, ctx.actor, ctx.actor_id)
    if (
        document.pdf
        and ctx.documents_dir
        and not _same_pdf(ctx.documents_dir, invoice.pdf_path, document.pdf)
    ):
        attach_pdf(db, invoice, document.pdf, ctx.documents_dir, ctx.actor, ctx.actor_id)
        done = Done.CHANGED if done is Done.UNCHANGED else done
    return done


def _same_pdf(documents_dir: Path, stored: str | None, data: bytes) -> bool:
    """Whether the invoice's PDF is already this one (re-importing the file changes nothing)."""
    if stored is None:
        return False
    path = documents_dir / stored
    if not path.is_file():
        return False
    return hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(data).digest()


def _customer(
    db: Session, ctx: Context, buyer: EInvoiceParty, reference: str | None, outcome: Outcome
) -> Customer:
    """The buyer: by SIREN, else by VAT number, else created (reference: the buyer's
    reference in the file, else its SIREN or VAT number)."""
    for siren, vat in ((buyer.siren, None), (None, buyer.vat_number)):
        if siren or vat:
            found = customers_with_identifier(db, ctx.company_id, siren=siren, vat_number=vat)
            if found:
                return found[0]
    key = reference or buyer.siren or buyer.vat_number or _slug(buyer.name)
    fields = CustomerFields(
        reference=key[:64],
        name=buyer.name,
        siren=buyer.siren,
        siret=buyer.siret,
        vat_number=buyer.vat_number,
        address_line1=buyer.address_line1,
        address_line2=buyer.address_line2,
        postcode=buyer.postcode,
        city=buyer.city,
        country=buyer.country or "FR",
    )
    existing = find_by_reference(db, ctx.company_id, fields.reference)
    if existing is not None:
        return existing
    customer = create_customer(db, ctx.company_id, fields, ctx.actor, ctx.actor_id)
    outcome.counts["customers_new"] += 1
    if buyer.email:
        upsert_contact(
            db,
            customer,
            ContactFields(email=buyer.email, is_primary=True),
            ctx.actor,
            ctx.actor_id,
        )
    return customer


def _slug(name: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "-", name.upper()).strip("-") or "E-INVOICE"
