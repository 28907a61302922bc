"""The dashboard at /admin: roles, filters (a GET form), CSV per panel, the customer page."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import re
from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from portal import clock
from portal.company.models import Company
from portal.customers.models import Customer, RiskSegment
from portal.timeline.models import TimelineEvent
from portal.users import service as users
from portal.users.models import Role, User
from tests.factories import make_customer, make_invoice, make_payment

PASSWORD = "correct horse battery staple"
NOW = dt.datetime(2026, 6, 30, 12, 0, tzinfo=dt.UTC)
_sequence = itertools.count(1)


@pytest.fixture(autouse=True)
def _cheap_hashing_and_frozen_clock() -> Iterator[None]:
    previous = users.set_password_hasher(
        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    clock.freeze(NOW)
    yield
    users.set_password_hasher(previous)


def log_in(client: TestClient, db: Session, role: Role, language: str = "en") -> User:
    user = users.create_user(db, f"cockpit{next(_sequence)}@relance.example", role, PASSWORD)
    db.commit()
    client.app.state.login_failure_delay = 0  # type: ignore[attr-defined]
    client.cookies.set("relance_lang", language)
    response = client.post("/admin/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 303, response.text
    return user


@pytest.fixture
def book(db: Session, company: Company) -> tuple[Customer, Customer]:
    """A high-risk customer owing 1 000 EUR 45 days late, a low-risk one 200 USD not due."""
    late = make_customer(db, company, name="Late Payer SARL", risk_segment=RiskSegment.HIGH)
    make_invoice(db, late, amount_minor=100_000, due_date=dt.date(2026, 5, 16))
    fine = make_customer(
        db, company, name="=HYPERLINK(1) SA", risk_segment=RiskSegment.LOW, reference="-C-2"
    )
    paid = make_invoice(db, fine, amount_minor=5_000, due_date=dt.date(2026, 6, 1))
    make_payment(db, paid, 5_000, dt.datetime(2026, 6, 1, 9, tzinfo=dt.UTC))
    make_invoice(db, fine, amount_minor=20_000, due_date=dt.date(2026, 7, 15), currency="USD")
    db.commit()
    return late, fine


def test_the_dashboard_is_the_back_office_home_for_every_role(
    client: TestClient, db: Session, book: tuple[Customer, Customer]
) -> None:
    assert client.get("/admin").status_code == 303  # not logged in: the login page
    log_in(client, db, Role.VIEWER)
    page = client.get("/admin")
    assert page.status_code == 200
    text = page.text
    assert "<h1>Dashboard</h1>" in text
    for title in (
        "Totals and aging",
        "Days sales outstanding (DSO)",
        "Commitments",
        "Cash forecast, 12 weeks",
        "Reminder effectiveness",
    ):
        assert title in text
    assert "€1,000.00" in text  # 31–60 days, formatted for the locale
    assert "Count-back: starting from that day" in text  # the page says how DSO is computed
    assert '<svg class="chart"' in text
    assert 'role="img"' in text
    assert "<script" not in text.split("</head>")[1]  # charts need no JavaScript
    customers = client.get("/admin/customers")
    assert "Late Payer SARL" in customers.text


def test_filters_narrow_every_panel_and_bad_values_are_explained(
    client: TestClient, db: Session, book: tuple[Customer, Customer]
) -> None:
    log_in(client, db, Role.CREDIT_MANAGER)
    low = client.get("/admin", params={"segment": "low"}).text
    assert "€1,000.00" not in low
    assert "US$200.00" in low or "$200.00" in low
    usd = client.get("/admin", params={"currency": "USD"}).text
    assert "€1,000.00" not in usd
    past = client.get("/admin", params={"as_of": "2026-05-20"}).text
    assert "€1,000.00" in past  # 4 days late then
    bad = client.get("/admin", params={"segment": "huge", "currency": "euros", "owner": "x"})
    assert bad.status_code == 400
    assert "Choose a risk segment." in bad.text
    assert "Enter a three-letter currency code such as EUR." in bad.text
    assert "Choose a credit manager." in bad.text
    client.cookies.set("relance_lang", "fr")
    french = client.get("/admin")
    assert "Tableau de bord" in french.text
    assert "1\u202f000,00\u00a0€" in french.text


def test_each_panel_exports_as_csv_with_formulas_neutralised(
    client: TestClient, db: Session, book: tuple[Customer, Customer]
) -> None:
    log_in(client, db, Role.VIEWER)
    aging = client.get("/admin/cockpit/aging.csv")
    assert aging.status_code == 200
    assert aging.headers["content-type"].startswith("text/csv")
    assert 'filename="aging-2026-06-30.csv"' in aging.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(aging.text)))
    assert rows[0] == ["currency", "not_due", "1_30", "31_60", "61_90", "over_90", "total"]
    assert rows[1] == ["EUR", "0.00", "0.00", "1000.00", "0.00", "0.00", "1000.00"]
    assert rows[2] == ["USD", "200.00", "0.00", "0.00", "0.00", "0.00", "200.00"]
    headers = {
        "dso": "currency",
        "commitments": "figure",
        "forecast": "currency",
        "effectiveness": "scenario",
    }
    for panel, first in headers.items():
        response = client.get(f"/admin/cockpit/{panel}.csv", params={"segment": "high"})
        assert response.status_code == 200, panel
        assert next(csv.reader(io.StringIO(response.text)))[0] == first
    high = list(csv.reader(io.StringIO(client.get("/admin/cockpit/aging.csv?segment=high").text)))
    assert [row[0] for row in high] == ["currency", "EUR"]
    forecast = list(csv.reader(io.StringIO(client.get("/admin/cockpit/forecast.csv").text)))
    assert forecast[1][:3] == ["EUR", "2026-06-29", "1000.00"]
    assert client.get("/admin/cockpit/nothing.csv").status_code == 404
    assert client.get("/admin/cockpit/aging.csv?as_of=never").status_code == 303


def test_csv_cells_that_look_like_formulas_get_an_apostrophe(
    client: TestClient, db: Session, company: Company
) -> None:
    from portal.reminders.models import Channel, MessageStatus, ReminderMessage

    customer = make_customer(db, company)
    invoice = make_invoice(db, customer, due_date=dt.date(2026, 5, 1))
    message = ReminderMessage(
        company_id=company.id,
        customer_id=customer.id,
        scenario="=cmd|' /C calc'!A0",
        step="@SUM(1)",
        cycle="2026-06-01",
        channel=Channel.EMAIL,
        template="t",
        status=MessageStatus.SENT,
        next_attempt_at=NOW,
        created_at=NOW,
        sent_at=dt.datetime(2026, 6, 1, tzinfo=dt.UTC),
    )
    db.add(message)
    db.flush()
    from portal.reminders.models import ReminderMessageInvoice

    db.add(
        ReminderMessageInvoice(
            message_id=message.id, invoice_id=invoice.id, step="@SUM(1)", offset_days=0
        )
    )
    db.commit()
    log_in(client, db, Role.VIEWER)
    rows = list(csv.reader(io.StringIO(client.get("/admin/cockpit/effectiveness.csv").text)))
    assert rows[1][:2] == ["'=cmd|' /C calc'!A0", "'@SUM(1)"]
    assert rows[1][3:] == ["1", "0", "0"]


def test_the_customer_page_shows_behaviour_aging_and_promises_and_a_pin(
    client: TestClient, db: Session, company: Company, book: tuple[Customer, Customer]
) -> None:
    late, _fine = book
    from portal.cockpit.behaviour import recompute

    recompute(db, company.id, NOW.date())
    db.commit()
    viewer_client = client
    log_in(viewer_client, db, Role.VIEWER)
    page = viewer_client.get(f"/admin/customers/{late.id}").text
    assert "Payment behaviour" in page
    assert "pays 45 days late on average" in page
    assert "Aging of this customer's balance in EUR" in page
    assert "No promise to pay has come due yet." in page
    assert (
        'action="/admin/customers/' not in page.split("Payment behaviour")[1].split("</section>")[0]
    )
    assert (
        viewer_client.post(
            f"/admin/customers/{late.id}/segment", data={"segment": "low"}
        ).status_code
        == 403
    )

    manager = log_in(client, db, Role.CREDIT_MANAGER)
    response = client.post(f"/admin/customers/{late.id}/segment", data={"segment": "low"})
    assert response.status_code == 303
    db.expire_all()
    assert (late.risk_segment, late.risk_segment_pinned) == (RiskSegment.LOW, True)
    assert recompute(db, company.id, NOW.date()) == 0  # pinned: the suggestion leaves it
    bad = client.post(f"/admin/customers/{late.id}/segment", data={"segment": "huge"})
    assert bad.status_code == 400
    assert "Choose a risk segment." in bad.text
    client.post(f"/admin/customers/{late.id}/segment", data={"segment": "auto"})
    db.expire_all()
    assert late.risk_segment_pinned is False
    actions = db.scalars(
        select(TimelineEvent.action).where(
            TimelineEvent.customer_id == late.id, TimelineEvent.actor_id == str(manager.id)
        )
    ).all()
    assert actions == ["customer.segment_pinned", "customer.segment_unpinned"]
    assert re.search(r"follows the suggestion", client.get(f"/admin/customers/{late.id}").text)


def test_the_page_says_how_old_figures_computed_ahead_are(
    client: TestClient, db: Session, company: Company, book: tuple[Customer, Customer]
) -> None:
    from portal.cockpit import snapshot

    log_in(client, db, Role.VIEWER)
    assert "Computed at" not in client.get("/admin").text  # no snapshot yet: computed now
    snapshot.refresh(db, company.id, NOW.date())
    db.commit()
    clock.freeze(NOW + dt.timedelta(minutes=4))
    text = client.get("/admin").text
    assert "Computed at 12:00 UTC and refreshed every 5 minutes" in text
    assert "€1,000.00" in text
    assert "Computed at" not in client.get("/admin?currency=EUR").text
