from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from portal.company.models import Company
from portal.settings import Settings
from portal.timeline.models import TimelineEvent
from tests.factories import make_customer, make_invoice
from tests.web.helpers import open_portal


def test_link_opens_a_session_and_the_summary_shows_totals(
    client: TestClient, db: Session, settings: Settings, company: Company
) -> None:
    customer = make_customer(db, company, language="fr")
    make_invoice(db, customer, amount_minor=123_456, due_in_days=-5)
    make_invoice(db, customer, amount_minor=10_000, due_in_days=12, paid_minor=2_500)
    open_portal(client, db, settings, customer)

    page = client.get("/")
    assert page.status_code == 200
    assert "1\u202f234,56\xa0€" in page.text  # overdue amount, French formatting
    assert "1\u202f309,56\xa0€" in page.text  # total due: 1234.56 + 75.00
    assert customer.name in page.text
    actions = db.scalars(
        select(TimelineEvent.action).where(TimelineEvent.customer_id == customer.id)
    ).all()
    assert "link.opened" in actions


def test_another_customers_invoice_is_not_found(
    client: TestClient, db: Session, settings: Settings, company: Company
) -> None:
    mine = make_customer(db, company)
    theirs = make_customer(db, company)
    make_invoice(db, mine)
    other_invoice = make_invoice(db, theirs, number="SECRET-1")
    open_portal(client, db, settings, mine)

    for path in (f"/invoices/{other_invoice.id}", f"/invoices/{other_invoice.id}/pdf"):
        response = client.get(path)
        assert response.status_code == 404
        assert "SECRET-1" not in response.text
