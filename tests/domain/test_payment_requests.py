"""Payment requests: choosing invoices to pay by transfer, declaring the transfer."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import clock
from portal.company.models import Company
from portal.invoices.models import InvoiceStatus
from portal.payments.models import PaymentMethod, PaymentRequest, PaymentRequestStatus
from portal.payments.requests import (
    PaymentRequestError,
    declare_transfer,
    declared_transfers_to_confirm,
    pending_invoice_ids,
    prepare_transfer,
)
from portal.timeline.models import TimelineEvent
from tests.factories import make_customer, make_invoice

TODAY = dt.date(2026, 11, 23)


def _count(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(PaymentRequest)) or 0


def test_prepare_sums_the_remaining_amounts_and_records_it(db: Session, company: Company) -> None:
    customer = make_customer(db, company)
    a = make_invoice(db, customer, amount_minor=10_000, paid_minor=2_500)
    b = make_invoice(db, customer, amount_minor=5_000)
    request = prepare_transfer(db, customer, None, [b.id, a.id])
    assert request.amount_minor == 12_500
    assert request.currency == "EUR"
    assert request.method is PaymentMethod.TRANSFER
    assert request.status is PaymentRequestStatus.OPEN
    assert request.invoice_ids == sorted([a.id, b.id])
    event = db.scalars(
        select(TimelineEvent).where(TimelineEvent.action == "payment_request.created")
    ).one()
    assert event.subject_id == str(request.id)
    assert sorted(event.details["invoices"]) == sorted([a.number, b.number])


def test_the_same_selection_reuses_the_open_request(db: Session, company: Company) -> None:
    customer = make_customer(db, company)
    a = make_invoice(db, customer)
    b = make_invoice(db, customer)
    first = prepare_transfer(db, customer, None, [a.id, b.id])
    again = prepare_transfer(db, customer, None, [b.id, a.id, a.id])
    assert again.id == first.id
    assert _count(db) == 1
    other = prepare_transfer(db, customer, None, [a.id])
    assert other.id != first.id


@pytest.mark.parametrize("case", ["empty", "foreign", "paid", "cancelled", "currency", "scope"])
def test_bad_selections_are_refused_and_create_nothing(
    db: Session, company: Company, case: str
) -> None:
    customer = make_customer(db, company)
    mine = make_invoice(db, customer)
    other = make_customer(db, company)
    invoices = {
        "empty": [],
        "foreign": [mine.id, make_invoice(db, other).id],
        "paid": [
            mine.id,
            make_invoice(db, customer, paid_minor=10_000, status=InvoiceStatus.PAID).id,
        ],
        "cancelled": [make_invoice(db, customer, status=InvoiceStatus.CANCELLED).id],
        "currency": [mine.id, make_invoice(db, customer, currency="USD").id],
        "scope": [mine.id, make_invoice(db, customer).id],
    }[case]
    scope = frozenset({mine.id}) if case == "scope" else None
    expected = {
        "empty": PaymentRequestError.EMPTY_SELECTION,
        "currency": PaymentRequestError.MIXED_CURRENCIES,
    }.get(case, PaymentRequestError.UNKNOWN_INVOICE)
    with pytest.raises(PaymentRequestError) as caught:
        prepare_transfer(db, customer, scope, invoices)
    assert caught.value.key == expected
    assert _count(db) == 0


def test_declare_makes_the_invoices_pending_until_the_grace_date(
    db: Session, company: Company
) -> None:
    customer = make_customer(db, company)
    a = make_invoice(db, customer)
    b = make_invoice(db, customer)
    request = prepare_transfer(db, customer, None, [a.id])
    paid_on = TODAY - dt.timedelta(days=2)
    declare_transfer(db, request, paid_on, 10_000, TODAY, grace_days=10)
    assert request.status is PaymentRequestStatus.DECLARED
    assert request.grace_until == paid_on + dt.timedelta(days=10)
    assert request.declared_amount_minor == 10_000
    assert pending_invoice_ids(db, customer.id, TODAY) == {a.id}
    assert b.id not in pending_invoice_ids(db, customer.id, TODAY)
    assert pending_invoice_ids(db, customer.id, request.grace_until) == {a.id}
    assert pending_invoice_ids(db, customer.id, request.grace_until + dt.timedelta(days=1)) == set()
    event = db.scalars(
        select(TimelineEvent).where(TimelineEvent.action == "transfer.declared")
    ).one()
    assert event.actor.value == "debtor"
    assert event.details["amount_minor"] == 10_000
    assert event.details["paid_on"] == paid_on.isoformat()
    assert event.details["invoices"] == [a.number]
    assert event.details["reference"].startswith("RF")


@pytest.mark.parametrize(
    ("paid_on", "amount", "key"),
    [
        (TODAY + dt.timedelta(days=1), 100, PaymentRequestError.PAID_ON_IN_FUTURE),
        (TODAY - dt.timedelta(days=61), 100, PaymentRequestError.PAID_ON_TOO_OLD),
        (TODAY, 0, PaymentRequestError.AMOUNT_NOT_POSITIVE),
        (TODAY, -5, PaymentRequestError.AMOUNT_NOT_POSITIVE),
    ],
)
def test_declare_refuses_bad_input_and_changes_nothing(
    db: Session, company: Company, paid_on: dt.date, amount: int, key: str
) -> None:
    customer = make_customer(db, company)
    invoice = make_invoice(db, customer)
    request = prepare_transfer(db, customer, None, [invoice.id])
    with pytest.raises(PaymentRequestError) as caught:
        declare_transfer(db, request, paid_on, amount, TODAY, grace_days=10)
    assert caught.value.key == key
    assert request.status is PaymentRequestStatus.OPEN
    assert request.grace_until is None
    assert pending_invoice_ids(db, customer.id, TODAY) == set()


def test_declared_transfers_to_confirm_oldest_first(db: Session, company: Company) -> None:
    first_customer = make_customer(db, company)
    second_customer = make_customer(db, company)
    clock.freeze(dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC))
    first = prepare_transfer(db, second_customer, None, [make_invoice(db, second_customer).id])
    declare_transfer(db, first, TODAY - dt.timedelta(days=4), 100, TODAY, grace_days=10)
    clock.freeze(dt.datetime(2026, 11, 22, 9, tzinfo=dt.UTC))
    second = prepare_transfer(db, first_customer, None, [make_invoice(db, first_customer).id])
    declare_transfer(db, second, TODAY - dt.timedelta(days=1), 100, TODAY, grace_days=10)
    prepare_transfer(db, first_customer, None, [make_invoice(db, first_customer).id])  # open
    other_company = Company(
        slug="other",
        name="Other",
        legal_name="Other",
        created_at=clock.now(),
        updated_at=clock.now(),
    )
    db.add(other_company)
    db.flush()
    stranger = make_customer(db, other_company)
    theirs = prepare_transfer(db, stranger, None, [make_invoice(db, stranger).id])
    declare_transfer(db, theirs, TODAY, 100, TODAY, grace_days=10)
    assert [r.id for r in declared_transfers_to_confirm(db, company.id)] == [first.id, second.id]
