"""A statement's exact matches recorded all at once (``payments.bulk``) leave the database
exactly as recording them one payment after the other through the payment service: the
same payments, allocations, credit, invoices settled (so reminders stop), declared
transfers confirmed, receipts owed, timeline and outgoing events, row for row."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from portal import clock, migrate
from portal.bank import statements
from portal.bank.models import BankLine, BankLinePayment, BankStatement
from portal.company.models import Company
from portal.company.service import sync_company
from portal.customers.models import Customer
from portal.db import make_engine, make_session_factory
from portal.invoices.models import Invoice, InvoiceStatus
from portal.payments import bulk
from portal.payments import requests as payment_requests
from portal.payments.bulk import BankTransfer
from portal.payments.models import Payment, PaymentAllocation, PaymentRequest
from portal.payments.service import customer_credit_minor
from portal.payments.transfer import creditor_reference
from portal.settings import Settings
from portal.timeline.models import TimelineEvent
from portal.webhooks.models import OutgoingEvent, WebhookEndpoint
from tests.bank_helpers import Entry, camt
from tests.bank_import import import_
from tests.conftest import backends, fresh_database_url
from tests.factories import make_customer, make_invoice

NOW = dt.datetime(2026, 12, 3, 9, 30, tzinfo=dt.UTC)
SET_UP = NOW - dt.timedelta(days=1)  # so that what the import changes is stamped apart
COMPARED = (
    BankStatement,
    BankLine,
    BankLinePayment,
    Payment,
    PaymentAllocation,
    Invoice,
    PaymentRequest,
    TimelineEvent,
    OutgoingEvent,
)


@pytest.fixture(params=backends())
def two_databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[Any]]:
    """Two fresh databases of one backend, migrated: one per recording path."""
    factories, cleanups = [], []
    for _ in range(2):
        url, drop = fresh_database_url(request.param, tmp_path)
        engine = make_engine(url)
        migrate.upgrade(url, engine=engine)
        factories.append(make_session_factory(engine))
        cleanups.append((engine, drop))
    yield factories
    for engine, drop in cleanups:
        engine.dispose()
        drop()


def _customer(db: Session, company: Company, key: str, name: str) -> Customer:
    return make_customer(db, company, reference=key, name=name, email=f"{key}@example.com")


def _invoice(db: Session, customer: Customer, number: str, amount: int, due: int = 10) -> Invoice:
    return make_invoice(db, customer, amount_minor=amount, number=number, due_in_days=due)


def _declare(db: Session, customer: Customer, *invoices: Invoice, days: int = 7) -> PaymentRequest:
    request = payment_requests.prepare_transfer(db, customer, None, [i.id for i in invoices])
    payment_requests.declare_transfer(
        db, request, dt.date(2026, 11, 30), request.amount_minor, dt.date(2026, 12, 1), days
    )
    return request


def _rf(request: PaymentRequest) -> str:
    return creditor_reference(request.customer_id, request.id)


def mixed_statement(db: Session, company: Company) -> bytes:
    """Every kind of line a statement brings, against one set of invoices."""
    exact = _customer(db, company, "EXACT", "Exact SA")
    _invoice(db, exact, "F-EX-1", 10_000)
    _invoice(db, exact, "F-EX-0", 5_000, due=-20)  # older, left alone: the line names F-EX-1
    partial = _customer(db, company, "PART", "Partiel SARL")
    _invoice(db, partial, "F-PA-1", 20_000)
    over = _customer(db, company, "OVER", "Trop SAS")
    _invoice(db, over, "F-OV-1", 3_000)  # paid 5,000: 2,000 of credit
    declared = _customer(db, company, "DECL", "Déclarant SA")
    first, second = _invoice(db, declared, "F-DE-1", 4_000), _invoice(db, declared, "F-DE-2", 6_000)
    both = _declare(db, declared, first, second)
    _declare(db, declared, second, days=20)  # still declared: keeps F-DE-2 pending
    short = _customer(db, company, "SHORT", "Court SARL")
    # Paid 6,000: F-SH-2 gets nothing, yet is no longer "payment pending".
    owed = _invoice(db, short, "F-SH-1", 9_000), _invoice(db, short, "F-SH-2", 1_000, due=30)
    short_request = _declare(db, short, *owed)
    undeclared = _customer(db, company, "OPEN", "Ouvert SA")
    open_request = payment_requests.prepare_transfer(
        db, undeclared, None, [_invoice(db, undeclared, "F-OP-1", 2_500).id]
    )
    split = _customer(db, company, "SPLIT", "Partage SAS")
    _invoice(db, split, "F-SP-1", 1_000)
    _invoice(db, split, "F-SP-2", 2_000)
    _invoice(db, split, "F-SP-3", 4_000, due=-5)  # the oldest: takes what is left
    twice = _customer(db, company, "TWICE", "Deux Fois SA")
    _invoice(db, twice, "F-TW-1", 3_000, due=-10)
    _invoice(db, twice, "F-TW-2", 3_000)
    named = _customer(db, company, "NAMED", "Durand Frères")
    _invoice(db, named, "F-NA-1", 4_321)
    by_hand = _customer(db, company, "HAND", "Main SA")
    by_hand_request = _declare(db, by_hand, _invoice(db, by_hand, "F-HA-1", 7_000))
    payment_requests.confirm_transfer(
        db,
        by_hand_request,
        amount_minor=7_000,
        received_on=dt.date(2026, 12, 1),
        today=clock.now().date(),
    )
    db.add(
        WebhookEndpoint(
            company_id=company.id,
            url="https://erp.example/hooks",
            events=["payment.succeeded", "invoice.paid"],
            secret="s" * 32,
            created_at=clock.now(),
        )
    )
    db.flush()
    return camt(
        [
            Entry(10_000, "L01", remittance=("VIR FACT F-EX-1",)),
            Entry(7_000, "L02", remittance=("F-PA-1 acompte",)),
            Entry(5_000, "L03", remittance=("F-OV-1",)),
            Entry(10_000, "L04", structured=_rf(both)),
            Entry(6_000, "L05", structured=_rf(short_request)),
            Entry(2_500, "L06", structured=_rf(open_request)),
            Entry(5_500, "L07", remittance=("FACT F-SP-1 F-SP-2",)),
            Entry(4_000, "L08", remittance=("F-TW-1",)),  # 1,000 over: onto F-TW-2
            Entry(2_500, "L09", remittance=("F-TW-2",)),  # the rest of F-TW-2, 500 of credit
            Entry(4_321, "L10", name="DURAND FRERES"),
            Entry(7_000, "L11", structured=_rf(by_hand_request)),  # recorded by hand already
            Entry(1_234, "L12", name="Inconnu", remittance=("VIREMENT",)),  # to review
            Entry(900, "L13", credit=False),  # a debit: ignored
        ]
    )


def _state(db: Session) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for model in COMPARED:
        table: Table = model.__table__  # type: ignore[assignment]
        rows = [dict(row._mapping) for row in db.execute(select(table).order_by(table.c.id))]
        for row in rows:
            row.pop("event_id", None)  # an outgoing event's random id
        out[table.name] = rows
    return out


def _run(factory: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch, bulk: bool) -> Any:
    clock.freeze(SET_UP)
    with monkeypatch.context() as patched:
        if not bulk:
            patched.setattr(statements, "apply", statements.apply_one_by_one)
        with factory() as db:
            company = sync_company(db, settings.company)
            data = mixed_statement(db, company)
            db.commit()
            clock.freeze(NOW)
            first = import_(db, company, data)
            db.commit()
            again = import_(db, company, data)
            db.commit()
            return (first, again), _state(db)


def test_the_bulk_path_writes_exactly_what_one_payment_after_the_other_writes(
    two_databases: list[Any], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    one_by_one = _run(two_databases[0], settings, monkeypatch, bulk=False)
    bulk = _run(two_databases[1], settings, monkeypatch, bulk=True)
    (first, again), state = bulk
    assert (first.matched, first.review, first.debits) == (11, 1, 1)
    assert again.new == 0  # importing again adds nothing
    assert one_by_one[0] == bulk[0]
    for table, rows in one_by_one[1].items():
        assert state[table] == rows, table
    # Not a comparison of two empty sets: what the statement did.
    payments = state["payments"]
    assert len(payments) == 11  # one by hand before, ten from the statement
    assert all(p["receipt_pending"] for p in payments)
    assert {e["type"] for e in state["outgoing_events"]} == {"payment.succeeded", "invoice.paid"}
    actions = {e["action"] for e in state["timeline_events"]}
    assert {"payment.recorded", "transfer.confirmed", "bank_line.matched"} <= actions


def test_the_bulk_path_settles_allocates_and_keeps_what_is_still_declared_pending(
    db: Session, company: Company
) -> None:
    clock.freeze(SET_UP)
    data = mixed_statement(db, company)
    clock.freeze(NOW)
    import_(db, company, data)
    invoices = {i.number: i for i in db.scalars(select(Invoice))}
    paid = {n for n, i in invoices.items() if i.status is InvoiceStatus.PAID}
    assert paid == {
        "F-EX-1",
        "F-OV-1",
        "F-DE-1",
        "F-DE-2",
        "F-OP-1",
        "F-SP-1",
        "F-SP-2",
        "F-TW-1",
        "F-TW-2",
        "F-NA-1",
        "F-HA-1",
    }
    assert invoices["F-PA-1"].remaining_minor == 13_000
    assert invoices["F-SH-1"].remaining_minor == 3_000
    assert invoices["F-SP-3"].remaining_minor == 1_500
    assert invoices["F-EX-0"].remaining_minor == 5_000
    # The declaration of F-DE-2 alone is still open: F-DE-2 stays "payment pending" till then.
    assert invoices["F-DE-2"].transfer_pending_until == dt.date(2026, 12, 20)
    assert invoices["F-DE-1"].transfer_pending_until is None
    assert invoices["F-SH-1"].transfer_pending_until is None
    assert invoices["F-SH-2"].transfer_pending_until is None
    assert invoices["F-SH-2"].remaining_minor == 1_000
    credit = {
        c.reference: customer_credit_minor(db, c.id, "EUR") for c in db.scalars(select(Customer))
    }
    assert (credit["OVER"], credit["TWICE"], credit["EXACT"]) == (2_000, 500, 0)


def test_a_payment_made_between_the_first_read_and_the_lock_moves_the_rest_to_the_oldest(
    db: Session, company: Company, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the invoices a payment names are locked, unless its money goes beyond them;
    which payments do is found on a first read without locks. Should a payment made
    meanwhile (here: written between the two reads) pay part of a named invoice, the
    payer's oldest invoices are read and locked too, and take the rest."""
    customer = _customer(db, company, "RACE", "Course SA")
    oldest = _invoice(db, customer, "F-RA-1", 3_000, due=-10)
    named = _invoice(db, customer, "F-RA-2", 3_000)
    db.flush()
    first_read = bulk._beyond_named
    calls: list[set[tuple[int, str]]] = []

    def meanwhile(state: Any, transfers: Any) -> set[tuple[int, str]]:
        beyond = first_read(state, transfers)
        if not calls:
            db.execute(update(Invoice).where(Invoice.id == named.id).values(paid_minor=1_000))
        calls.append(beyond)
        return beyond

    monkeypatch.setattr(bulk, "_beyond_named", meanwhile)
    transfer = BankTransfer(
        customer.id, 3_000, "EUR", dt.date(2026, 12, 3), "line:race", (named.id,)
    )
    (payment,) = bulk.record_transfers(db, [transfer], today=dt.date(2026, 12, 3))
    assert calls[0] == set()  # the first read saw it paid exactly by the line
    assert calls[1] == {(customer.id, "EUR")}  # the locked one, money left over
    shares = {
        a.invoice_id: a.amount_minor
        for a in db.scalars(
            select(PaymentAllocation).where(PaymentAllocation.payment_id == payment.id)
        )
    }
    assert shares == {named.id: 2_000, oldest.id: 1_000}
    assert payment.credit_minor == 0
