"""Payments received outside Relance (cheque, transfer, offset): recorded once per
reference, and allocated like card and transfer payments."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from portal import clock, migrate
from portal.changes import FieldErrors, Outcome
from portal.company.models import Company
from portal.company.service import sync_company
from portal.customers.models import Customer
from portal.db import make_engine, make_session_factory, transaction
from portal.invoices.models import InvoiceStatus
from portal.payments.models import Payment, PaymentAllocation, PaymentMethod
from portal.payments.offline import find_offline_payment, record_offline_payment
from portal.payments.service import customer_credit_minor
from portal.settings import Settings
from portal.timeline.models import Actor, TimelineEvent
from tests.conftest import backends, fresh_database_url
from tests.factories import make_customer, make_invoice

TODAY = dt.date(2026, 3, 10)


@pytest.fixture(autouse=True)
def _today() -> None:
    clock.freeze(dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC))


@pytest.fixture
def customer(db: Session, company: Company) -> Customer:
    return make_customer(db, company)


def cheque(db: Session, customer: Customer, **values: object) -> tuple[Payment, Outcome]:
    arguments: dict[str, object] = {
        "amount_minor": 150_00,
        "currency": "EUR",
        "method": "cheque",
        "reference": "CHQ 1234567",
        "received_on": TODAY - dt.timedelta(days=2),
        "actor": Actor.USER,
        "actor_id": "4",
    }
    return record_offline_payment(db, customer, **(arguments | values))  # type: ignore[arg-type]


def test_a_cheque_goes_to_the_chosen_invoice_then_the_oldest(
    db: Session, customer: Customer
) -> None:
    oldest = make_invoice(db, customer, amount_minor=100_00, due_in_days=-60)
    chosen = make_invoice(db, customer, amount_minor=100_00, due_in_days=10)
    payment, outcome = cheque(db, customer, invoice_ids=[chosen.id])
    assert outcome is Outcome.CREATED
    assert (payment.method, payment.provider) == (PaymentMethod.CHEQUE, "manual")
    assert (chosen.status, chosen.remaining_minor) == (InvoiceStatus.PAID, 0)
    assert oldest.remaining_minor == 50_00
    # Received on the 8th, at noon where the customer is.
    assert payment.received_at == dt.datetime(2026, 3, 8, 11, 0, tzinfo=dt.UTC)
    [event] = db.scalars(
        select(TimelineEvent).where(TimelineEvent.action == "payment.recorded")
    ).all()
    assert (event.actor, event.actor_id, event.details["method"]) == (Actor.USER, "4", "cheque")


def test_the_same_reference_records_nothing_twice(db: Session, customer: Customer) -> None:
    invoice = make_invoice(db, customer, amount_minor=500_00)
    first, _ = cheque(db, customer)
    again, outcome = cheque(db, customer, reference=" CHQ 1234567 ")
    assert (again.id, outcome) == (first.id, Outcome.UNCHANGED)
    assert invoice.paid_minor == 150_00
    with pytest.raises(FieldErrors) as raised:
        cheque(db, customer, amount_minor=1_00)  # same reference, another amount
    assert set(raised.value.errors) == {"reference"}
    assert find_offline_payment(db, customer, "CHQ 1234567") is first


def test_references_belong_to_one_customer_and_provider(
    db: Session, company: Company, customer: Customer
) -> None:
    other = make_customer(db, company)
    first, _ = cheque(db, customer)
    second, outcome = cheque(db, other)
    imported, outcome_import = cheque(db, customer, provider="import")
    assert outcome is outcome_import is Outcome.CREATED
    assert len({first.id, second.id, imported.id}) == 3


def test_an_offset_with_nothing_open_is_the_customers_credit(
    db: Session, customer: Customer
) -> None:
    cheque(db, customer, method="offset", reference="OFFSET-2026-03")
    assert customer_credit_minor(db, customer.id, "EUR") == 150_00


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount_minor": 0}, "amount"),
        ({"currency": "EU"}, "currency"),
        ({"method": "card"}, "method"),  # card payments come from Stripe only
        ({"method": "bitcoin"}, "method"),
        ({"reference": "  "}, "reference"),
        ({"received_on": TODAY + dt.timedelta(days=1)}, "received_on"),
        ({"received_on": None}, "received_on"),
        ({"received_on": TODAY - dt.timedelta(days=5000)}, "received_on"),
    ],
)
def test_bad_input_is_refused_before_anything_is_written(
    db: Session, customer: Customer, change: dict[str, object], field: str
) -> None:
    with pytest.raises(FieldErrors) as raised:
        cheque(db, customer, **change)
    assert field in raised.value.errors
    assert db.scalar(select(func.count(Payment.id))) == 0


def test_invoices_named_must_be_the_customers_open_ones(
    db: Session, company: Company, customer: Customer
) -> None:
    theirs = make_invoice(db, make_customer(db, company))
    usd = make_invoice(db, customer, currency="USD")
    paid = make_invoice(db, customer, status=InvoiceStatus.PAID, paid_minor=10_000)
    for invoice in (theirs, usd, paid):
        with pytest.raises(FieldErrors) as raised:
            cheque(db, customer, invoice_ids=[invoice.id])
        assert set(raised.value.errors) == {"invoice_ids"}


# Each example makes its own customer, so sharing the test's session is harmless.
@hsettings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    amounts=st.lists(st.integers(min_value=1, max_value=50_000), min_size=1, max_size=4),
    paid=st.integers(min_value=1, max_value=200_000),
)
def test_no_cent_is_lost_or_created(
    db: Session, company: Company, amounts: list[int], paid: int
) -> None:
    customer = make_customer(db, company)
    invoices = [make_invoice(db, customer, amount_minor=a) for a in amounts]
    payment, _ = cheque(db, customer, amount_minor=paid, reference=f"R-{customer.id}")
    allocated = db.scalar(
        select(func.coalesce(func.sum(PaymentAllocation.amount_minor), 0)).where(
            PaymentAllocation.payment_id == payment.id
        )
    )
    assert allocated == sum(i.paid_minor for i in invoices) == min(paid, sum(amounts))
    assert customer_credit_minor(db, customer.id, "EUR") == paid - allocated


@pytest.mark.parametrize("backend", backends())
def test_two_requests_with_one_reference_record_one_payment(
    backend: str, tmp_path: Path, settings: Settings
) -> None:
    """A double click: the second request waits on the unique index while the first
    commits (PostgreSQL), or on the write lock (SQLite), then answers UNCHANGED."""
    url, drop = fresh_database_url(backend, tmp_path)
    engine = make_engine(url)
    try:
        migrate.upgrade(url, engine=engine)
        factory = make_session_factory(engine)
        with transaction(factory) as setup:
            customer_id = make_customer(setup, sync_company(setup, settings.company)).id
        results: list[tuple[int, Outcome]] = []

        def second() -> None:
            with transaction(factory) as db:
                customer = db.get(Customer, customer_id)
                assert customer is not None
                payment, outcome = cheque(db, customer)
                results.append((payment.id, outcome))

        with factory() as first_db:
            first_customer = first_db.get(Customer, customer_id)
            assert first_customer is not None
            first, _ = cheque(first_db, first_customer)
            first_db.flush()
            thread = threading.Thread(target=second)
            thread.start()
            if backend == "postgresql":
                _wait_for_a_lock_wait(engine)
            first_db.commit()
            first_id = first.id
        thread.join(timeout=30)
        assert results == [(first_id, Outcome.UNCHANGED)]
        with factory() as check:
            assert check.scalar(select(func.count(Payment.id))) == 1
    finally:
        engine.dispose()
        drop()


def _wait_for_a_lock_wait(engine: Engine) -> None:
    deadline = time.monotonic() + 20
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    with engine.connect() as connection:
        while connection.execute(query).scalar_one() == 0:
            assert time.monotonic() < deadline, "the second request never waited"
            connection.rollback()
