"""Invoices created, changed, cancelled and settled elsewhere; PDFs attached; credit notes
reducing what is owed. The same services serve the back office and imports."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import clock
from portal.changes import FieldErrors, Outcome
from portal.company.models import Company
from portal.customers.models import Customer
from portal.invoices import credit_notes, editing
from portal.invoices.credit_notes import CreditNoteFields
from portal.invoices.editing import InvoiceFields
from portal.invoices.models import CreditNoteStatus, Invoice, InvoiceStatus
from portal.invoices.service import Scope, open_invoices, summarise
from portal.payments.models import Payment, PaymentMethod
from portal.payments.service import customer_credit_minor, record_payment
from portal.timeline.models import Actor, TimelineEvent
from tests.factories import make_customer, make_invoice

ISSUED = dt.date(2026, 3, 1)
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def fields(customer: Customer, **values: object) -> InvoiceFields:
    base: dict[str, object] = {
        "number": "F-100",
        "customer_id": customer.id,
        "issue_date": ISSUED,
        "due_date": ISSUED + dt.timedelta(days=30),
        "currency": "EUR",
        "amount_minor": 120_00,
    }
    return InvoiceFields(**(base | values))  # type: ignore[arg-type]


def events(db: Session, customer_id: int, action: str) -> list[TimelineEvent]:
    return list(
        db.scalars(
            select(TimelineEvent)
            .where(TimelineEvent.customer_id == customer_id, TimelineEvent.action == action)
            .order_by(TimelineEvent.id)
        )
    )


def pay(db: Session, customer: Customer, invoice: Invoice, amount: int, ref: str) -> None:
    record_payment(
        db,
        customer,
        amount_minor=amount,
        currency=invoice.currency,
        method=PaymentMethod.TRANSFER,
        provider="test",
        provider_reference=ref,
        invoice_ids=[invoice.id],
    )


@pytest.fixture
def customer(db: Session, company: Company) -> Customer:
    return make_customer(db, company)


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"due_date": ISSUED - dt.timedelta(days=1)}, "due_date"),
        ({"amount_minor": 0}, "amount"),
        ({"amount_minor": -5}, "amount"),
        ({"currency": "EURO"}, "currency"),
        ({"currency": "XYZ"}, "currency"),
        ({"number": " "}, "number"),
        ({"issue_date": None}, "issue_date"),
        ({"customer_id": 999_999}, "customer_id"),
    ],
)
def test_bad_invoices_are_refused_by_field(
    db: Session, company: Company, customer: Customer, change: dict[str, object], field: str
) -> None:
    with pytest.raises(FieldErrors) as raised:
        editing.create_invoice(db, company.id, fields(customer, **change), Actor.USER)
    assert field in raised.value.errors
    assert db.scalar(select(Invoice.id).where(Invoice.number == "F-100")) is None


def test_numbers_are_unique_per_company(db: Session, company: Company, customer: Customer) -> None:
    editing.create_invoice(db, company.id, fields(customer), Actor.USER)
    with pytest.raises(FieldErrors) as raised:
        editing.create_invoice(db, company.id, fields(customer), Actor.USER)
    assert set(raised.value.errors) == {"number"}


# --- create, update, upsert -------------------------------------------------------------------


def test_create_and_update_record_before_and_after(
    db: Session, company: Company, customer: Customer
) -> None:
    lower_case = fields(customer, currency="eur")
    invoice = editing.create_invoice(db, company.id, lower_case, Actor.USER, "3")
    assert (invoice.currency, invoice.status, invoice.paid_minor) == ("EUR", InvoiceStatus.OPEN, 0)
    [created] = events(db, customer.id, "invoice.created")
    assert created.details["amount_minor"] == 120_00
    new_due = ISSUED + dt.timedelta(days=45)
    changes = editing.update_invoice(
        db, invoice, fields(customer, amount_minor=150_00, due_date=new_due), Actor.USER, "4"
    )
    assert changes == {
        "due_date": (ISSUED + dt.timedelta(days=30), new_due),
        "amount_minor": (120_00, 150_00),
    }
    [updated] = events(db, customer.id, "invoice.updated")
    assert (updated.actor, updated.actor_id) == (Actor.USER, "4")
    assert updated.details["changes"] == {
        "due_date": ["2026-03-31", "2026-04-15"],
        "amount_minor": [120_00, 150_00],
    }
    assert editing.update_invoice(db, invoice, editing.invoice_fields(invoice), Actor.USER) == {}


def test_upsert_by_number(db: Session, company: Company, customer: Customer) -> None:
    invoice, outcome = editing.upsert_invoice(db, company.id, fields(customer), Actor.SYSTEM)
    assert outcome is Outcome.CREATED
    _, outcome = editing.upsert_invoice(db, company.id, fields(customer), Actor.SYSTEM)
    assert outcome is Outcome.UNCHANGED
    again, outcome = editing.upsert_invoice(
        db, company.id, fields(customer, amount_minor=99_00), Actor.SYSTEM
    )
    assert (again.id, outcome, again.amount_minor) == (invoice.id, Outcome.CHANGED, 99_00)


def test_lowering_below_what_was_paid_gives_the_surplus_back_as_credit(
    db: Session, company: Company, customer: Customer
) -> None:
    invoice = editing.create_invoice(db, company.id, fields(customer), Actor.USER)
    pay(db, customer, invoice, 100_00, "t-1")
    assert invoice.paid_minor == 100_00
    changes = editing.update_invoice(db, invoice, fields(customer, amount_minor=80_00), Actor.USER)
    assert changes["status"] == (InvoiceStatus.OPEN, InvoiceStatus.PAID)
    assert (invoice.paid_minor, invoice.remaining_minor) == (80_00, 0)
    assert customer_credit_minor(db, customer.id, "EUR") == 20_00
    [updated] = events(db, customer.id, "invoice.updated")
    assert updated.details["released_minor"] == 20_00
    # Raised again, it is open for the difference.
    editing.update_invoice(db, invoice, fields(customer, amount_minor=90_00), Actor.USER)
    assert (invoice.status, invoice.remaining_minor) == (InvoiceStatus.OPEN, 10_00)


def test_a_paid_invoice_keeps_its_currency_and_customer(
    db: Session, company: Company, customer: Customer
) -> None:
    invoice = editing.create_invoice(db, company.id, fields(customer), Actor.USER)
    pay(db, customer, invoice, 10_00, "t-2")
    other = make_customer(db, company)
    with pytest.raises(FieldErrors) as raised:
        editing.update_invoice(
            db, invoice, fields(customer, currency="USD", customer_id=other.id), Actor.USER
        )
    assert set(raised.value.errors) == {"currency", "customer_id"}


def test_cancelling_frees_what_was_paid_and_hides_the_invoice(
    db: Session, company: Company, customer: Customer
) -> None:
    invoice = editing.create_invoice(db, company.id, fields(customer), Actor.USER)
    pay(db, customer, invoice, 30_00, "t-3")
    assert editing.cancel_invoice(db, invoice, Actor.USER, "5", reason="issued twice")
    assert (invoice.status, invoice.paid_minor, invoice.remaining_minor) == (
        InvoiceStatus.CANCELLED,
        0,
        0,
    )
    assert customer_credit_minor(db, customer.id, "EUR") == 30_00
    assert open_invoices(db, Scope(customer.id)) == []
    [event] = events(db, customer.id, "invoice.cancelled")
    assert event.details["released_minor"] == 30_00
    assert event.details["changes"] == {"status": ["open", "cancelled"]}
    assert not editing.cancel_invoice(db, invoice, Actor.USER)  # once
    with pytest.raises(FieldErrors):
        editing.update_invoice(db, invoice, fields(customer, amount_minor=1), Actor.USER)


def test_settled_elsewhere_pays_the_rest_once(
    db: Session, company: Company, customer: Customer
) -> None:
    invoice = make_invoice(db, customer, amount_minor=50_00)
    other = make_invoice(db, customer, amount_minor=70_00, due_in_days=-30)
    pay(db, customer, invoice, 20_00, "t-4")
    payment = editing.mark_settled_elsewhere(db, invoice, Actor.SYSTEM, "import:9")
    assert payment is not None
    assert (payment.amount_minor, payment.method, payment.provider) == (
        30_00,
        PaymentMethod.OTHER,
        "import",
    )
    assert (invoice.status, invoice.remaining_minor) == (InvoiceStatus.PAID, 0)
    assert other.remaining_minor == 70_00  # the older invoice got nothing of it
    assert editing.mark_settled_elsewhere(db, invoice, Actor.SYSTEM) is None
    assert len(events(db, customer.id, "invoice.settled_elsewhere")) == 1


# --- PDF --------------------------------------------------------------------------------------


def test_a_pdf_is_stored_by_content_and_removed_on_rollback(
    db: Session, company: Company, customer: Customer, tmp_path: Path
) -> None:
    invoice = editing.create_invoice(db, company.id, fields(customer), Actor.USER)
    db.commit()
    stored = editing.attach_pdf(db, invoice, PDF, tmp_path, Actor.USER, "2")
    path = tmp_path / stored
    assert path.read_bytes() == PDF
    assert stored.startswith("invoices/")
    assert "F-100" not in stored  # a random name, never one from the document
    db.rollback()
    assert not path.exists()
    kept = editing.attach_pdf(db, invoice, PDF, tmp_path, Actor.USER, "2")
    db.commit()
    assert (tmp_path / kept).is_file()
    assert events(db, customer.id, "invoice.pdf_attached")[-1].details["size_bytes"] == len(PDF)


@pytest.mark.parametrize(
    ("data", "limit"),
    [(b"", 1000), (b"\x89PNG\r\n\x1a\n....", 1000), (PDF, 10)],
)
def test_what_is_not_a_small_pdf_is_refused(
    db: Session, customer: Customer, company: Company, tmp_path: Path, data: bytes, limit: int
) -> None:
    invoice = editing.create_invoice(db, company.id, fields(customer), Actor.USER)
    with pytest.raises(FieldErrors) as raised:
        editing.attach_pdf(db, invoice, data, tmp_path, max_bytes=limit)
    assert set(raised.value.errors) == {"pdf"}
    assert invoice.pdf_path is None
    assert not (tmp_path / "invoices").exists() or not any((tmp_path / "invoices").iterdir())


# --- credit notes -----------------------------------------------------------------------------


def note(number: str = "AV-1", amount: int = 40_00, **values: object) -> CreditNoteFields:
    base: dict[str, object] = {
        "number": number,
        "issue_date": ISSUED,
        "currency": "EUR",
        "amount_minor": amount,
    }
    return CreditNoteFields(**(base | values))  # type: ignore[arg-type]


def test_a_credit_note_reduces_what_is_owed_on_the_invoice_it_names(
    db: Session, customer: Customer
) -> None:
    older = make_invoice(db, customer, amount_minor=100_00, due_in_days=-40, number="F-OLD")
    named = make_invoice(db, customer, amount_minor=100_00, due_in_days=5, number="F-NAMED")
    issued = credit_notes.issue_credit_note(
        db, customer, note(reason="damaged goods"), ["F-NAMED"], Actor.USER, "6"
    )
    assert (named.remaining_minor, older.remaining_minor) == (60_00, 100_00)
    payment = db.get(Payment, issued.payment_id)
    assert payment is not None
    assert (payment.method, payment.provider, payment.receipt_pending) == (
        PaymentMethod.CREDIT_NOTE,
        "credit_note",
        False,
    )
    # The debtor's totals reflect it; the credit note itself is never a line they owe.
    lines = open_invoices(db, Scope(customer.id))
    assert {line.number for line in lines} == {"F-OLD", "F-NAMED"}
    [total] = summarise(lines, clock.now().date())
    assert (total.due_minor, total.overdue_minor) == (160_00, 100_00)
    [event] = events(db, customer.id, "credit_note.issued")
    assert event.details["applies_to"] == ["F-NAMED"]
    assert event.actor_id == "6"


def test_a_credit_note_larger_than_its_invoice_settles_the_rest_like_a_payment(
    db: Session, customer: Customer
) -> None:
    older = make_invoice(db, customer, amount_minor=30_00, due_in_days=-40)
    named = make_invoice(db, customer, amount_minor=20_00, number="F-SMALL")
    credit_notes.issue_credit_note(db, customer, note(amount=60_00), ["F-SMALL"], Actor.USER)
    assert (named.status, older.status) == (InvoiceStatus.PAID, InvoiceStatus.PAID)
    assert customer_credit_minor(db, customer.id, "EUR") == 10_00


def test_credit_notes_are_checked(db: Session, customer: Customer, company: Company) -> None:
    make_invoice(db, customer, number="F-USD", currency="USD")
    stranger = make_customer(db, company)
    make_invoice(db, stranger, number="F-THEIRS")
    for numbers in (["F-NOPE"], ["F-USD"], ["F-THEIRS"]):
        with pytest.raises(FieldErrors) as raised:
            credit_notes.issue_credit_note(db, customer, note(), numbers, Actor.USER)
        assert set(raised.value.errors) == {"applies_to"}
    with pytest.raises(FieldErrors) as raised:
        credit_notes.issue_credit_note(db, customer, note(amount=0, currency="??"), [], Actor.USER)
    assert set(raised.value.errors) == {"amount", "currency"}


def test_upsert_and_cancel_a_credit_note(db: Session, customer: Customer) -> None:
    invoice = make_invoice(db, customer, amount_minor=100_00, number="F-C")
    issued, outcome = credit_notes.upsert_credit_note(db, customer, note(), ["F-C"], Actor.SYSTEM)
    assert outcome is Outcome.CREATED
    same, outcome = credit_notes.upsert_credit_note(db, customer, note(), ["F-C"], Actor.SYSTEM)
    assert (same.id, outcome) == (issued.id, Outcome.UNCHANGED)
    assert invoice.remaining_minor == 60_00  # applied once
    with pytest.raises(FieldErrors):
        credit_notes.upsert_credit_note(db, customer, note(amount=1), ["F-C"], Actor.SYSTEM)
    assert credit_notes.cancel_credit_note(db, issued, Actor.USER, "2")
    db.refresh(invoice)
    assert (issued.status, invoice.remaining_minor) == (CreditNoteStatus.CANCELLED, 100_00)
    assert [e.action for e in events(db, customer.id, "payment.cancelled")] == ["payment.cancelled"]
    assert not credit_notes.cancel_credit_note(db, issued, Actor.USER)
