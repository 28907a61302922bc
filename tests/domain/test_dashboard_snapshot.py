"""The whole-company dashboard computed ahead (``cockpit.snapshot``): after any series of
writes and a refresh, its figures are exactly the live panels'; until the refresh they are
the figures of when it was computed, at most ``MAX_AGE`` old; a filtered view is live."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from portal import clock
from portal.cases.models import Case, CaseInvoice, CaseKind, CaseStatus
from portal.cockpit import dashboard, snapshot
from portal.cockpit.filters import Filters
from portal.company.models import Company
from portal.customers.models import Customer
from portal.invoices.models import Invoice, InvoiceStatus
from tests.factories import make_customer, make_invoice, make_payment, make_sent_reminder

TODAY = dt.date(2026, 6, 30)
NOW = dt.datetime(2026, 6, 30, 12, 0, tzinfo=dt.UTC)


def at(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(10), tzinfo=dt.UTC)


def _invoice(
    db: Session, customer: Customer, amount: int, issued: dt.date, **kw: object
) -> Invoice:
    due = issued + dt.timedelta(days=30)
    return make_invoice(db, customer, amount_minor=amount, issue_date=issued, due_date=due, **kw)


def _remind(db: Session, customer: Customer, sent: dt.date, *invoices: Invoice) -> None:
    make_sent_reminder(db, customer, at(sent), list(invoices))


def _book(db: Session, company: Company) -> tuple[Customer, list[Invoice]]:
    customer = make_customer(db, company)
    d = dt.date
    invoices = [
        _invoice(db, customer, 100_000, d(2026, 3, 1)),
        _invoice(db, customer, 50_000, d(2026, 6, 1)),
        _invoice(db, customer, 20_000, d(2026, 2, 1)),
        _invoice(db, customer, 30_000, d(2026, 5, 20), currency="USD"),
        _invoice(db, customer, 9_999, d(2026, 5, 1), status=InvoiceStatus.CANCELLED),
    ]
    make_payment(db, invoices[0], 40_000, at(d(2026, 6, 10)))
    make_payment(db, invoices[2], 20_000, at(d(2026, 3, 20)))
    _remind(db, customer, d(2026, 3, 15), invoices[2], invoices[0])
    promise = Case(
        company_id=company.id,
        customer_id=customer.id,
        kind=CaseKind.PROMISE,
        status=CaseStatus.ACTIVE,
        currency="EUR",
        total_minor=50_000,
        promised_date=d(2026, 7, 2),
        created_at=at(d(2026, 6, 20)),
        updated_at=NOW,
    )
    promise.invoices = [CaseInvoice(invoice_id=invoices[1].id)]
    db.add(promise)
    db.flush()
    return customer, invoices


def _live(db: Session, company: Company) -> dashboard.Dashboard:
    return dashboard.load(db, Filters(company.id, TODAY))


def test_after_writes_and_a_refresh_the_snapshot_is_exactly_the_live_dashboard(
    db: Session, company: Company
) -> None:
    clock.freeze(NOW)
    customer, invoices = _book(db, company)
    whole = Filters(company.id, TODAY)
    snapshot.refresh(db, company.id, TODAY)
    board, computed_at = snapshot.load(db, whole)
    assert computed_at == NOW
    assert board == _live(db, company)
    assert all((board.aging, board.dso, board.effectiveness, board.forecast))
    for name in dashboard.PANELS:
        assert snapshot.panel(db, whole, name) == dashboard.PANELS[name](db, whole)

    # A series of writes: a payment settles an invoice, a new invoice, a reminder, a payment
    # in the other currency, an invoice cancelled.
    clock.freeze(NOW + dt.timedelta(minutes=3))
    make_payment(db, invoices[0], 60_000, at(dt.date(2026, 6, 29)))
    _invoice(db, customer, 7_000, dt.date(2026, 6, 28))
    _remind(db, customer, dt.date(2026, 6, 15), invoices[1])
    make_payment(db, invoices[3], 10_000, at(dt.date(2026, 6, 25)))
    invoices[1].status = InvoiceStatus.CANCELLED
    db.flush()
    live = _live(db, company)
    stale, computed_at = snapshot.load(db, whole)
    assert computed_at == NOW  # the page says these figures are three minutes old
    assert stale == board != live
    # The worker refreshes once they are REFRESH_AFTER old, not before.
    assert not snapshot.refresh_if_due(db, company.id, TODAY)
    clock.freeze(NOW + snapshot.REFRESH_AFTER)
    assert snapshot.refresh_if_due(db, company.id, TODAY)
    fresh, computed_at = snapshot.load(db, whole)
    assert computed_at == NOW + snapshot.REFRESH_AFTER
    assert fresh == _live(db, company) == live


def test_a_filtered_view_another_day_or_an_old_snapshot_is_computed_live(
    db: Session, company: Company
) -> None:
    clock.freeze(NOW)
    _book(db, company)
    snapshot.refresh(db, company.id, TODAY)
    make_payment(
        db, _invoice(db, make_customer(db, company), 5_000, dt.date(2026, 6, 2)), 5_000, NOW
    )
    for filters in (
        Filters(company.id, TODAY, currency="EUR"),
        Filters(company.id, TODAY - dt.timedelta(days=1)),
    ):
        board, computed_at = snapshot.load(db, filters)
        assert computed_at is None
        assert board == dashboard.load(db, filters)
    clock.freeze(NOW + snapshot.MAX_AGE + dt.timedelta(seconds=1))
    board, computed_at = snapshot.load(db, Filters(company.id, TODAY))
    assert computed_at is None
    assert board == _live(db, company)


def test_figures_survive_the_round_trip_through_json() -> None:
    board_types = {name: snapshot._PANEL_TYPES[name] for name in dashboard.PANELS}
    assert set(board_types) == set(dashboard.PANELS)
    from portal.cockpit.dso import DsoFigures

    figures = DsoFigures(TODAY, 12_345, {30: 12.5, 90: None}, None)
    assert snapshot.decode(DsoFigures, snapshot.encode(figures)) == figures
