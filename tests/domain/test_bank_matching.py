"""Matching credit lines: RF reference (exact, then tolerant), invoice numbers, amount
with the payer's name or IBAN; partial payments and overpayments; ambiguity to review;
the review answers; and the reminder engine seeing the payment at send time."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from portal.bank import review
from portal.bank.models import BankLine, BankLinePayment, LineStatus
from portal.bank.references import creditor_references, name_key
from portal.company.models import Company
from portal.customers.models import Customer
from portal.invoices.models import Invoice, InvoiceStatus
from portal.payments import requests as payment_requests
from portal.payments.models import Payment, PaymentRequest, PaymentRequestStatus
from portal.payments.service import customer_credit_minor
from portal.payments.transfer import creditor_reference, format_creditor_reference
from portal.reminders import planning
from portal.reminders.models import MessageStatus
from portal.reminders.outbox import deliver_due
from portal.reminders.worker import calendar_for
from portal.settings import Settings
from portal.timeline.models import TimelineEvent
from tests.bank_helpers import Entry, camt
from tests.bank_import import import_
from tests.factories import make_customer, make_invoice
from tests.reminders_helpers import at, book, context, messages, reminder_settings
from tests.web.test_backoffice import make_user


def declared(db: Session, customer: Customer, *invoices: Invoice) -> PaymentRequest:
    request = payment_requests.prepare_transfer(db, customer, None, [i.id for i in invoices])
    payment_requests.declare_transfer(
        db, request, dt.date(2026, 11, 30), request.amount_minor, dt.date(2026, 12, 1), 7
    )
    return request


def rf(request: PaymentRequest) -> str:
    return creditor_reference(request.customer_id, request.id)


def line(db: Session) -> BankLine:
    return db.scalars(select(BankLine).order_by(BankLine.id.desc())).first()  # type: ignore[return-value]


def actions(db: Session, customer_id: int) -> list[str]:
    return list(
        db.scalars(select(TimelineEvent.action).where(TimelineEvent.customer_id == customer_id))
    )


def test_references_are_found_as_written_then_despite_spaces_case_and_line_breaks() -> None:
    code = creditor_reference(42, 1234)
    assert creditor_references(f"Paiement {code} merci") == ([(42, 1234)], True)
    printed = format_creditor_reference(code).lower()
    broken = printed[:7] + "\n" + printed[7:]
    assert creditor_references(f"VIR {broken}INV-1") == ([(42, 1234)], False)
    assert creditor_references("RF00 1234") == ([], False)
    assert name_key("Société DURAND S.A.S.") == name_key("societe durand")


@pytest.mark.parametrize("exact", [True, False])
def test_an_rf_reference_confirms_the_declared_transfer_with_receipt_and_timeline(
    db: Session, company: Company, exact: bool
) -> None:
    customer = make_customer(db, company)
    invoice = make_invoice(db, customer, amount_minor=20_000)
    request = declared(db, customer, invoice)
    text = rf(request) if exact else format_creditor_reference(rf(request)).lower()
    structured = text if exact else ""
    result = import_(
        db,
        company,
        camt([Entry(20_000, "A1", remittance=(text,) if not exact else (), structured=structured)]),
    )
    assert (result.matched, result.review) == (1, 0)
    db.refresh(invoice)
    db.refresh(request)
    assert invoice.status is InvoiceStatus.PAID
    assert invoice.transfer_pending_until is None
    assert request.status is PaymentRequestStatus.CONFIRMED
    payment = db.scalars(select(Payment)).one()
    assert payment.receipt_pending
    assert payment.payment_request_id == request.id
    assert line(db).matched_by == ("rf" if exact else "rf_tolerant")
    assert {"transfer.confirmed", "payment.recorded", "bank_line.matched"} <= set(
        actions(db, customer.id)
    )


def test_a_transfer_confirmed_by_hand_is_not_recorded_twice(db: Session, company: Company) -> None:
    customer = make_customer(db, company)
    invoice = make_invoice(db, customer, amount_minor=9_900)
    request = declared(db, customer, invoice)
    payment_requests.confirm_transfer(
        db,
        request,
        amount_minor=9_900,
        received_on=dt.date(2026, 12, 1),
        today=dt.date(2026, 12, 3),
    )
    import_(db, company, camt([Entry(9_900, "A2", structured=rf(request))]))
    assert len(db.scalars(select(Payment)).all()) == 1
    assert line(db).status is LineStatus.MATCHED
    # A second line with the same reference is new money: a credit manager looks at it.
    import_(db, company, camt([Entry(9_900, "A3", structured=rf(request))], statement_id="S2"))
    assert line(db).status is LineStatus.REVIEW


def test_invoice_numbers_in_the_remittance_pay_those_invoices(
    db: Session, company: Company
) -> None:
    customer = make_customer(db, company)
    older = make_invoice(db, customer, amount_minor=1_000, due_in_days=-20)
    one = make_invoice(db, customer, amount_minor=3_000, number="F2026-0101")
    two = make_invoice(db, customer, amount_minor=2_000, number="F2026-0102")
    import_(
        db, company, camt([Entry(5_000, "B1", remittance=("Fact. F2026-0101 et", "F2026-0102"))])
    )
    for invoice in (older, one, two):
        db.refresh(invoice)
    assert (one.status, two.status, older.status) == (
        InvoiceStatus.PAID,
        InvoiceStatus.PAID,
        InvoiceStatus.OPEN,
    )
    assert line(db).matched_by == "invoice_number"


def test_a_partial_payment_leaves_the_rest_due_and_an_overpayment_is_credit(
    db: Session, company: Company
) -> None:
    customer = make_customer(db, company)
    partial = make_invoice(db, customer, amount_minor=10_000, number="P-100")
    import_(db, company, camt([Entry(4_000, "C1", remittance=("P-100",))]))
    db.refresh(partial)
    assert (partial.status, partial.remaining_minor) == (InvoiceStatus.OPEN, 6_000)
    import_(db, company, camt([Entry(7_500, "C2", remittance=("P-100",))], statement_id="S2"))
    db.refresh(partial)
    assert partial.status is InvoiceStatus.PAID
    assert customer_credit_minor(db, customer.id, "EUR") == 1_500


def test_amount_and_name_or_iban_match_an_open_invoice(db: Session, company: Company) -> None:
    customer = make_customer(db, company, name="Boulangerie Martin SARL")
    invoice = make_invoice(db, customer, amount_minor=4_321)
    import_(
        db,
        company,
        camt([Entry(4_321, "D1", name="BOULANGERIE MARTIN", iban="FR1420041010050500013M02606")]),
    )
    db.refresh(invoice)
    assert invoice.status is InvoiceStatus.PAID
    assert line(db).matched_by == "amount_name"
    later = make_invoice(db, customer, amount_minor=1_234)
    import_(
        db,
        company,
        camt(
            [Entry(1_234, "D2", name="B. Martin", iban="FR1420041010050500013M02606")],
            statement_id="S2",
        ),
    )
    db.refresh(later)
    assert later.status is InvoiceStatus.PAID
    assert line(db).matched_by == "amount_iban"


def test_amount_and_name_confirm_a_declared_transfer_without_reference(
    db: Session, company: Company
) -> None:
    customer = make_customer(db, company, name="Garage Petit")
    request = declared(db, customer, make_invoice(db, customer, amount_minor=8_000))
    import_(db, company, camt([Entry(8_000, "D3", name="GARAGE PETIT")]))
    db.refresh(request)
    assert request.status is PaymentRequestStatus.CONFIRMED


def test_ambiguity_goes_to_review_with_ranked_suggestions(db: Session, company: Company) -> None:
    customer = make_customer(db, company, name="Dupont")
    first = make_invoice(db, customer, amount_minor=5_000, due_in_days=-5)
    make_invoice(db, customer, amount_minor=5_000)
    other = make_customer(db, company, name="Leroy")
    make_invoice(db, other, number="L-1")
    make_invoice(db, customer, number="D-1")
    result = import_(
        db,
        company,
        camt(
            [
                Entry(5_000, "E1", name="Dupont"),
                Entry(20_000, "E2", remittance=("L-1 D-1",)),
                Entry(777, "E3", name="Inconnu"),
            ]
        ),
    )
    assert (result.matched, result.review) == (0, 3)
    queued = review.queue(db, company.id)
    assert [q.line.entry_reference for q in queued] == ["E1", "E2", "E3"]
    assert first.id in [i.id for s in queued[0].suggestions for i in s.invoices]
    assert {s.customer_id for s in queued[1].suggestions} == {customer.id, other.id}
    assert queued[2].suggestions == []  # nothing open for 7.77, nobody named Inconnu


def test_review_answers_match_split_and_not_a_customer_payment(
    db: Session, company: Company
) -> None:
    user = make_user(db)
    customer = make_customer(db, company)
    other = make_customer(db, company)
    a = make_invoice(db, customer, amount_minor=3_000)
    b = make_invoice(db, customer, amount_minor=2_000)
    c = make_invoice(db, other, amount_minor=4_000)
    import_(db, company, camt([Entry(5_000, "F1"), Entry(7_000, "F2"), Entry(99, "F3")]))
    one, two, three = db.scalars(select(BankLine).order_by(BankLine.id)).all()
    with pytest.raises(review.ReviewError, match="several_customers"):
        review.match(db, one, [a.id, c.id], user_id=user.id)
    review.match(db, one, [a.id, b.id], user_id=user.id)
    with pytest.raises(review.ReviewError, match="split_total"):
        review.split(db, two, [(a.id, 1), (c.id, 1)], user_id=user.id)
    d = make_invoice(db, customer, amount_minor=3_000)
    review.split(db, two, [(d.id, 3_000), (c.id, 4_000)], user_id=user.id)
    review.dismiss(db, three, user_id=user.id)
    with pytest.raises(review.ReviewError, match="already_handled"):
        review.dismiss(db, three, user_id=user.id)
    for invoice in (a, b, c, d):
        db.refresh(invoice)
        assert invoice.status is InvoiceStatus.PAID
    assert [x.status for x in (one, two, three)] == [
        LineStatus.MATCHED,
        LineStatus.MATCHED,
        LineStatus.NOT_CUSTOMER,
    ]
    assert (
        len(db.scalars(select(BankLinePayment).where(BankLinePayment.line_id == two.id)).all()) == 2
    )


def test_the_reminder_engine_sees_the_payment_at_send_time(
    db: Session,
    company: Company,
    settings: Settings,
    tmp_path: Path,
    session_factory: sessionmaker[Session],
) -> None:
    rs = reminder_settings(settings, tmp_path)
    at("2026-03-10 10:00")
    customer = make_customer(db, company)
    invoice = make_invoice(db, customer, due_in_days=-3, amount_minor=6_000, number="R-77")
    db.commit()
    planning.run(db, company.id, book(rs), calendar_for(rs))
    [message] = messages(db, customer.id)
    assert message.status is MessageStatus.PENDING
    import_(db, company, camt([Entry(6_000, "G1", remittance=("R-77",))]))
    db.commit()
    deliver_due(session_factory, context(rs), "worker-test")
    db.expire_all()
    [message] = messages(db, customer.id)
    assert message.status is MessageStatus.CANCELLED
    db.refresh(invoice)
    assert invoice.status is InvoiceStatus.PAID
