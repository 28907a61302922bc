"""Portal sessions: the home page's one-query load agrees with the two-step load."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from portal import clock
from portal.access.service import load_access, load_access_and_open_invoices, start_session
from portal.cases.models import Case, CaseInvoice, CaseKind, CaseStatus
from portal.company.models import Company
from portal.invoices.models import Invoice, InvoiceStatus
from portal.invoices.service import Scope, open_invoices
from portal.links.models import LinkScope
from tests.factories import make_customer, make_invoice

IDLE = dt.timedelta(minutes=30)


def _both(db: Session, secret: str) -> tuple[object, object]:
    access = load_access(db, secret, IDLE)
    combined, lines = load_access_and_open_invoices(db, secret, IDLE)
    if access is None:
        assert combined is None
        assert lines == []
        return None, None
    assert combined is not None
    assert combined.customer is access.customer
    assert combined.invoice_ids == access.invoice_ids
    assert lines == open_invoices(db, Scope(access.customer.id, access.invoice_ids))
    return access, lines


def test_one_query_load_matches_the_two_step_load(db: Session, company: Company) -> None:
    customer = make_customer(db, company)
    other = make_customer(db, company)
    make_invoice(db, customer, number="A-2", due_in_days=5)
    make_invoice(db, customer, number="A-1", due_in_days=-5, paid_minor=100)
    make_invoice(db, customer, number="A-3", status=InvoiceStatus.PAID, paid_minor=10_000)
    make_invoice(db, other, number="B-1")
    secret = start_session(db, customer, None, None, None)
    db.flush()
    _access, lines = _both(db, secret)
    assert [line.number for line in lines] == ["A-1", "A-2"]  # type: ignore[union-attr]


def test_one_query_load_without_invoices_and_with_a_scope(db: Session, company: Company) -> None:
    empty = make_customer(db, company)
    secret = start_session(db, empty, None, None, None)
    db.flush()
    access, lines = _both(db, secret)
    assert access is not None
    assert lines == []

    scoped = make_customer(db, company)
    kept = make_invoice(db, scoped, number="S-1")
    make_invoice(db, scoped, number="S-2")
    scope = LinkScope(customer_id=scoped.id, invoice_ids=[kept.id], created_at=clock.now())
    db.add(scope)
    db.flush()
    secret = start_session(db, scoped, scope.id, None, None)
    db.flush()
    _access, lines = _both(db, secret)
    assert [line.number for line in lines] == ["S-1"]  # type: ignore[union-attr]


def test_one_query_load_refuses_what_load_access_refuses(db: Session, company: Company) -> None:
    customer = make_customer(db, company)
    make_invoice(db, customer)
    secret = start_session(db, customer, None, None, None)
    db.flush()
    assert _both(db, "not-a-session") == (None, None)
    customer.link_version += 1  # revoked
    db.flush()
    assert _both(db, secret) == (None, None)


def _case(
    db: Session, invoice: Invoice, kind: CaseKind, status: CaseStatus, promised: dt.date | None
) -> None:
    now = clock.now()
    case = Case(
        company_id=invoice.company_id,
        customer_id=invoice.customer_id,
        kind=kind,
        status=status,
        currency=invoice.currency,
        total_minor=invoice.amount_minor,
        promised_date=promised,
        created_at=now,
        updated_at=now,
    )
    case.invoices.append(CaseInvoice(invoice_id=invoice.id))
    db.add(case)
    db.flush()


def test_one_query_load_reads_every_field_and_the_live_cases(db: Session, company: Company) -> None:
    customer = make_customer(db, company)
    due = clock.now().date() + dt.timedelta(days=3)
    pending = clock.now().date() + dt.timedelta(days=2)
    # Same due date: the number breaks the tie.
    promised = make_invoice(db, customer, number="P-2", due_date=due, amount_minor=123_456_789)
    disputed = make_invoice(
        db, customer, number="P-1", due_date=due, transfer_pending_until=pending
    )
    closed_case = make_invoice(db, customer, number="P-0", due_in_days=-40, paid_minor=7)
    promise_date = clock.now().date() + dt.timedelta(days=9)
    _case(db, promised, CaseKind.PROMISE, CaseStatus.ACTIVE, promise_date)
    _case(db, disputed, CaseKind.DISPUTE, CaseStatus.OPEN, None)
    _case(db, closed_case, CaseKind.DISPUTE, CaseStatus.RESOLVED, None)
    secret = start_session(db, customer, None, None, None)
    db.flush()
    _access, lines = _both(db, secret)
    by_number = {line.number: line for line in lines}  # type: ignore[union-attr]
    assert list(by_number) == ["P-0", "P-1", "P-2"]
    assert by_number["P-2"].amount_minor == 123_456_789
    assert by_number["P-1"].transfer_pending_until == pending
    assert by_number["P-0"].paid_minor == 7
    assert [(line.hold_kind, line.hold_promised_date) for line in by_number.values()] == [
        (None, None),
        (CaseKind.DISPUTE, None),
        (CaseKind.PROMISE, promise_date),
    ]
    assert all(line.hold_loaded for line in by_number.values())
