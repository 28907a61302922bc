"""The cockpit's figures on hand-computed cases: aging on a date, DSO, forecast, behaviour."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from portal import clock
from portal.cases.models import Case, CaseInvoice, CaseKind, CaseStatus, Instalment
from portal.cockpit import behaviour
from portal.cockpit.aging import aging, bucket_of
from portal.cockpit.commitments import commitments
from portal.cockpit.dso import count_back_dso, dso, simple_dso
from portal.cockpit.effectiveness import effectiveness
from portal.cockpit.filters import Filters, parse
from portal.cockpit.forecast import first_week, forecast
from portal.cockpit.models import CustomerBehaviour
from portal.company.models import Company
from portal.customers.models import Customer, RiskSegment
from portal.invoices.models import Invoice, InvoiceStatus
from portal.reminders.models import Channel
from portal.reminders.worker import run_if_due
from portal.settings import Settings
from portal.timeline.models import TimelineEvent
from tests import reminders_helpers
from tests.factories import make_customer, make_invoice, make_payment, make_sent_reminder

TODAY = dt.date(2026, 6, 30)  # a Tuesday
NOW = dt.datetime(2026, 6, 30, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _today() -> None:
    clock.freeze(NOW)


def at(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(10), tzinfo=dt.UTC)


def pay(db: Session, invoice: Invoice, amount: int, day: dt.date) -> None:
    make_payment(db, invoice, amount, at(day))


def invoice(
    db: Session, customer: Customer, amount: int, issued: dt.date, due: dt.date, **kw: object
) -> Invoice:
    return make_invoice(db, customer, amount_minor=amount, issue_date=issued, due_date=due, **kw)


@pytest.fixture
def book(db: Session, company: Company) -> dict[str, Invoice]:
    """inv1 partly paid on 10 June, inv2 not yet due, inv3 paid on 20 June, inv4 in USD,
    inv5 cancelled."""
    customer = make_customer(db, company)
    d = dt.date
    inv = {
        "inv1": invoice(db, customer, 100_000, d(2026, 4, 1), d(2026, 5, 1)),
        "inv2": invoice(db, customer, 50_000, d(2026, 6, 1), d(2026, 7, 1)),
        "inv3": invoice(db, customer, 20_000, d(2026, 2, 1), d(2026, 3, 1)),
        "inv4": invoice(db, customer, 30_000, d(2026, 5, 20), d(2026, 6, 20), currency="USD"),
        "inv5": invoice(
            db, customer, 99_999, d(2026, 5, 1), d(2026, 5, 2), status=InvoiceStatus.CANCELLED
        ),
    }
    pay(db, inv["inv1"], 40_000, d(2026, 6, 10))
    pay(db, inv["inv3"], 20_000, d(2026, 6, 20))
    return inv


def _aging(db: Session, company: Company, day: dt.date) -> dict[str, tuple[int, ...]]:
    return {row.currency: row.amounts for row in aging(db, Filters(company.id, day))}


def test_aging_on_a_past_date_counts_only_the_payments_received_by_then(
    db: Session, company: Company, book: dict[str, Invoice]
) -> None:
    # 15 June: inv1 60 000 left, 45 days late; inv3 unpaid yet, 106 days late; inv2 not due.
    assert _aging(db, company, dt.date(2026, 6, 15)) == {
        "EUR": (50_000, 0, 60_000, 0, 20_000),
        "USD": (30_000, 0, 0, 0, 0),
    }
    # 31 May: inv1 30 days late (1-30), inv3 91 days (over 90), inv2 not issued yet.
    assert _aging(db, company, dt.date(2026, 5, 31)) == {
        "EUR": (0, 100_000, 0, 0, 20_000),
        "USD": (30_000, 0, 0, 0, 0),
    }
    # Today (from paid_minor): inv1 60 days late (31-60), inv3 paid, inv4 10 days late.
    rows = aging(db, Filters(company.id, TODAY))
    assert {row.currency: row.amounts for row in rows} == {
        "EUR": (50_000, 0, 60_000, 0, 0),
        "USD": (0, 30_000, 0, 0, 0),
    }
    eur = rows[0]
    assert (eur.total_minor, eur.overdue_minor, eur.overdue_count) == (110_000, 60_000, 1)
    assert _aging(db, company, TODAY) == {
        row.currency: row.amounts for row in aging(db, Filters(company.id, TODAY, currency="EUR"))
    } | {"USD": (0, 30_000, 0, 0, 0)}


def test_aging_filters_by_segment_owner_and_currency(
    db: Session, company: Company, book: dict[str, Invoice]
) -> None:
    other = make_customer(db, company, risk_segment=RiskSegment.HIGH)
    invoice(db, other, 7_000, dt.date(2026, 6, 1), dt.date(2026, 6, 25))
    high = aging(db, Filters(company.id, TODAY, segment=RiskSegment.HIGH))
    assert [(r.currency, r.amounts) for r in high] == [("EUR", (0, 7_000, 0, 0, 0))]
    assert [r.currency for r in aging(db, Filters(company.id, TODAY, currency="USD"))] == ["USD"]
    assert aging(db, Filters(company.id, TODAY, owner_id=999_999)) == []


def test_bucket_boundaries() -> None:
    due = dt.date(2026, 6, 1)
    assert [bucket_of(due + dt.timedelta(days=n), due) for n in (0, 1, 30, 31, 60, 61, 90, 91)] == [
        0,
        1,
        1,
        2,
        2,
        3,
        3,
        4,
    ]


@settings(
    max_examples=25,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(
        st.tuples(
            st.integers(1, 1_000_000),  # amount
            st.integers(-200, 60),  # due date, days from today
            st.integers(0, 100),  # share paid, percent
            st.integers(0, 120),  # paid that many days after issue
        ),
        min_size=1,
        max_size=12,
    ),
    st.integers(0, 150),
)
def test_aging_buckets_always_add_up_to_the_total_due(
    db: Session, company: Company, invoices: list[tuple[int, int, int, int]], back: int
) -> None:
    as_of = TODAY - dt.timedelta(days=back)
    savepoint = db.begin_nested()
    try:
        customer = make_customer(db, company)
        expected = 0
        for amount, due_in, share, paid_after in invoices:
            due = TODAY + dt.timedelta(days=due_in)
            issued = due - dt.timedelta(days=30)
            item = invoice(db, customer, amount, issued, due)
            paid = amount * share // 100
            paid_on = min(issued + dt.timedelta(days=paid_after), TODAY)
            if paid:
                pay(db, item, paid, paid_on)
            if issued <= as_of:
                expected += amount - (paid if paid and paid_on <= as_of else 0)
        rows = aging(db, Filters(company.id, as_of, customer_id=customer.id))
        assert sum(row.total_minor for row in rows) == expected
        assert all(sum(row.amounts) == row.total_minor for row in rows)
    finally:
        savepoint.rollback()


def test_dso_by_both_methods_and_its_trend(
    db: Session, company: Company, book: dict[str, Invoice]
) -> None:
    [eur, _usd] = dso(db, Filters(company.id, TODAY))
    assert eur.currency == "EUR"
    now = eur.now
    assert now.receivable_minor == 110_000
    # 30 days: only inv2 (50 000) invoiced -> 110 000 / 50 000 * 30.
    assert now.simple[30] == pytest.approx(66.0)
    # 90 days (2 April to 30 June): still only inv2.
    assert now.simple[90] == pytest.approx(198.0)
    # Count-back: 50 000 on day 29 (1 June), the 60 000 left are 0.6 of 1 April (day 90).
    assert now.count_back == pytest.approx(90.6)
    may = eur.trend[-1]
    assert may.day == dt.date(2026, 5, 31)
    assert may.receivable_minor == 120_000  # inv1 100 000 and inv3 20 000, nothing paid yet
    assert len(eur.trend) == 12
    # Month ends from June 2025: nothing before inv3 (1 February), inv1 from 1 April.
    assert [f.receivable_minor for f in eur.trend] == [0] * 8 + [20_000, 20_000] + [120_000] * 2
    # February: the 20 000 were invoiced on the 1st, so they take all 28 days of it.
    assert eur.trend[8].count_back == pytest.approx(28.0)


def test_dso_pure_methods() -> None:
    assert count_back_dso(150, [100, 100, 100]) == pytest.approx(1.5)
    assert count_back_dso(0, [5]) == 0.0
    assert count_back_dso(500, [100, 100]) is None  # more than the history read
    assert simple_dso(130_000, 260_000, 30) == pytest.approx(15.0)
    assert simple_dso(10, 0, 30) is None


def _case(
    db: Session, customer: Customer, kind: CaseKind, invoices: list[Invoice], **values: object
) -> Case:
    case = Case(
        company_id=customer.company_id,
        customer_id=customer.id,
        kind=kind,
        status=values.pop("status", CaseStatus.ACTIVE),
        currency="EUR",
        total_minor=sum(i.amount_minor - i.paid_minor for i in invoices),
        created_at=values.pop("created_at", at(dt.date(2026, 6, 1))),
        updated_at=NOW,
        **values,
    )
    case.invoices = [CaseInvoice(invoice_id=i.id) for i in invoices]
    db.add(case)
    db.flush()
    return case


def test_forecast_with_promises_and_plans_counts_each_invoice_once(
    db: Session, company: Company, book: dict[str, Invoice]
) -> None:
    customer = db.get(Customer, book["inv1"].customer_id)
    assert customer is not None
    db.add(
        CustomerBehaviour(
            customer_id=customer.id,
            company_id=company.id,
            avg_days_late=10,
            suggested_segment="medium",
            reasons=[],
            computed_at=NOW,
        )
    )
    promised = invoice(db, customer, 40_000, dt.date(2026, 5, 15), dt.date(2026, 6, 15))
    _case(db, customer, CaseKind.PROMISE, [promised], promised_date=dt.date(2026, 7, 20))
    planned = invoice(db, customer, 60_000, dt.date(2026, 5, 1), dt.date(2026, 6, 1))
    plan = _case(db, customer, CaseKind.PLAN, [planned], accepted_at=at(dt.date(2026, 6, 2)))
    plan.instalments = [
        Instalment(seq=1, due_date=dt.date(2026, 7, 5), amount_minor=30_000),
        Instalment(seq=2, due_date=dt.date(2026, 8, 5), amount_minor=30_000),
    ]
    db.flush()
    pay(db, planned, 10_000, dt.date(2026, 6, 3))  # covers a third of the first instalment

    [eur, usd] = forecast(db, Filters(company.id, TODAY))
    start = first_week(TODAY)
    assert start == dt.date(2026, 6, 29)
    weeks = {w.start: w.amounts for w in eur.weeks if w.total_minor}
    assert weeks == {
        # inv1 (due 1 May + 10 days: already late), and 20 000 left of the first
        # instalment (Sunday 5 July).
        dt.date(2026, 6, 29): (60_000, 20_000, 0),
        # inv2: due 1 July + 10 days = 11 July.
        dt.date(2026, 7, 6): (50_000, 0, 0),
        # The promise, 20 July (its invoice is not counted by its due date).
        dt.date(2026, 7, 20): (0, 0, 40_000),
        # The second instalment, 5 August.
        dt.date(2026, 8, 3): (0, 30_000, 0),
    }
    assert eur.total_minor == 60_000 + 50_000 + 20_000 + 30_000 + 40_000
    assert usd.weeks[0].amounts == (30_000, 0, 0)  # due 20 June, late already


def test_commitments(db: Session, company: Company, book: dict[str, Invoice]) -> None:
    customer = db.get(Customer, book["inv1"].customer_id)
    assert customer is not None
    due_this_week = invoice(db, customer, 5_000, dt.date(2026, 6, 1), dt.date(2026, 6, 10))
    _case(db, customer, CaseKind.PROMISE, [due_this_week], promised_date=dt.date(2026, 7, 3))
    for status, resolution in ((CaseStatus.COMPLETED, "completed"), (CaseStatus.CLOSED, "broken")):
        _case(
            db,
            customer,
            CaseKind.PROMISE,
            [],
            status=status,
            resolution=resolution,
            promised_date=dt.date(2026, 6, 1),
        )
    late_plan = _case(db, customer, CaseKind.PLAN, [], accepted_at=at(dt.date(2026, 5, 1)))
    late_plan.instalments = [Instalment(seq=1, due_date=dt.date(2026, 6, 1), amount_minor=1_000)]
    on_track = _case(db, customer, CaseKind.PLAN, [], accepted_at=at(dt.date(2026, 5, 1)))
    on_track.instalments = [Instalment(seq=1, due_date=dt.date(2026, 7, 1), amount_minor=1_000)]
    _case(db, customer, CaseKind.DISPUTE, [], status=CaseStatus.OPEN, reason="wrong_amount")
    _case(
        db,
        customer,
        CaseKind.DISPUTE,
        [],
        status=CaseStatus.OPEN,
        reason="not_received",
        created_at=at(dt.date(2026, 6, 27)),
    )
    db.flush()
    c = commitments(db, Filters(company.id, TODAY))
    assert c.week_start == dt.date(2026, 6, 29)
    assert c.promises_due == [("EUR", 1, 5_000)]
    assert (c.promises_kept, c.promises_broken, c.kept_percent) == (1, 1, 50)
    assert (c.plans_on_track, c.plans_late) == (1, 1)
    assert c.disputes_by_reason() == {"not_received": 1, "wrong_amount": 1}
    assert c.disputes_by_age() == {"0_7": 1, "8_30": 1, "over_30": 0}


def test_reminder_effectiveness_per_step_and_channel(
    db: Session, company: Company, book: dict[str, Invoice]
) -> None:
    customer = db.get(Customer, book["inv1"].customer_id)
    assert customer is not None
    quick = invoice(db, customer, 1_000, dt.date(2026, 4, 1), dt.date(2026, 5, 1))
    slow = invoice(db, customer, 1_000, dt.date(2026, 4, 1), dt.date(2026, 5, 1))

    make_sent_reminder(db, customer, at(dt.date(2026, 6, 1)), [quick, slow])
    # Its week is not over:
    make_sent_reminder(
        db, customer, at(dt.date(2026, 6, 26)), [slow], step="second", channel=Channel.SMS
    )
    db.flush()
    pay(db, quick, 1_000, dt.date(2026, 6, 5))
    pay(db, slow, 1_000, dt.date(2026, 6, 20))
    [row] = effectiveness(db, Filters(company.id, TODAY))
    assert (row.step, row.channel, row.reminded, row.paid_within, row.percent) == (
        "first",
        "email",
        2,
        1,
        50,
    )


def test_suggested_segments_with_their_reasons() -> None:
    late = behaviour.Figures(invoices=4, late=3, days_late=4 * 40)
    assert behaviour.suggest(late) == (RiskSegment.HIGH, [["avg_late", 40], ["late_share", 75]])
    assert behaviour.suggest(behaviour.Figures(invoices=5, broken_promises=1)) == (
        RiskSegment.MEDIUM,
        [["broken", 1]],
    )
    assert behaviour.suggest(behaviour.Figures(invoices=1)) == (
        RiskSegment.MEDIUM,
        [["little_history", 1]],
    )
    assert behaviour.suggest(behaviour.Figures(invoices=6)) == (RiskSegment.LOW, [["on_time", 100]])


def test_nightly_recompute_applies_suggestions_except_pinned_ones_and_says_so(
    db: Session, company: Company
) -> None:
    late_payer = make_customer(db, company, risk_segment=RiskSegment.LOW)
    pinned = make_customer(db, company, risk_segment=RiskSegment.LOW, risk_segment_pinned=True)
    for customer in (late_payer, pinned):
        for n in range(3):
            item = invoice(db, customer, 1_000, dt.date(2026, 3, 1), dt.date(2026, 4, 1 + n))
            pay(db, item, 1_000, dt.date(2026, 5, 20))  # about 48 days late
    assert behaviour.recompute(db, company.id, TODAY) == 1
    db.expire_all()
    assert late_payer.risk_segment is RiskSegment.HIGH
    assert pinned.risk_segment is RiskSegment.LOW
    stored = db.get(CustomerBehaviour, late_payer.id)
    assert stored is not None
    assert (stored.paid_invoices, stored.late_invoices, stored.avg_days_late) == (3, 3, 48)
    assert stored.reasons == [["avg_late", 48], ["late_share", 100]]
    [event] = db.scalars(
        select(TimelineEvent).where(
            TimelineEvent.customer_id == late_payer.id,
            TimelineEvent.action == "customer.segment_suggested",
        )
    ).all()
    assert event.details["changes"] == {"risk_segment": ["low", "high"]}
    assert late_payer.strategic is False
    # A second night with nothing new changes nothing.
    assert behaviour.recompute(db, company.id, TODAY) == 0


def test_filters_are_validated_with_messages() -> None:
    filters, errors = parse(
        1, TODAY, {"segment": "huge", "currency": "euro", "owner": "7", "as_of": "2027-01-01"}, {3}
    )
    assert set(errors) == {"segment", "currency", "owner", "as_of"}
    assert filters == Filters(1, TODAY)
    filters, errors = parse(
        1, TODAY, {"segment": "high", "currency": "usd", "owner": "3", "as_of": "2026-05-31"}, {3}
    )
    assert errors == {}
    assert filters == Filters(
        1, dt.date(2026, 5, 31), segment=RiskSegment.HIGH, currency="USD", owner_id=3
    )


def test_the_worker_recomputes_segments_with_the_days_run(
    db: Session,
    company: Company,
    settings: Settings,
    tmp_path: Path,
    session_factory: sessionmaker[Session],
) -> None:
    rs = reminders_helpers.reminder_settings(settings, tmp_path)
    late_payer = make_customer(db, company, risk_segment=RiskSegment.LOW)
    for n in range(3):
        item = invoice(db, late_payer, 1_000, dt.date(2026, 3, 1), dt.date(2026, 4, 1 + n))
        pay(db, item, 1_000, dt.date(2026, 5, 20))
    db.commit()
    clock.freeze(dt.datetime(2026, 6, 30, 8, 0, tzinfo=dt.UTC))  # after the planning hour
    assert run_if_due(session_factory, company.id, rs, reminders_helpers.book(rs)) is not None
    db.expire_all()
    assert late_payer.risk_segment is RiskSegment.HIGH
    assert db.get(CustomerBehaviour, late_payer.id) is not None
