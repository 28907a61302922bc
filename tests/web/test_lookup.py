""" "Pay an invoice" without a link, from the portal's welcome page."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from portal.company.models import Company
from portal.customers.models import Customer
from portal.invoices.models import Invoice
from portal.timeline.models import TimelineEvent
from tests.factories import make_customer, make_invoice
from tests.web.embed_helpers import cheap_hashing, log_in, make_staff

__all__ = ["cheap_hashing"]


@pytest.fixture
def quick(client: TestClient) -> TestClient:
    client.app.state.lookup_answer_seconds = 0  # type: ignore[attr-defined]
    return client


@pytest.fixture
def debtor(db: Session, company: Company) -> tuple[Customer, Invoice, Invoice]:
    customer = make_customer(db, company, reference="C-77", postcode="75002")
    mine = make_invoice(db, customer, number="F-100", amount_minor=45_000, paid_minor=5_000)
    other = make_invoice(db, customer, number="F-101", amount_minor=9_900)
    db.commit()
    return customer, mine, other


def _events(db: Session, action: str) -> list[TimelineEvent]:
    # In the order they were recorded: without ORDER BY, PostgreSQL may answer in any order.
    query = select(TimelineEvent).where(TimelineEvent.action == action)
    return list(db.scalars(query.order_by(TimelineEvent.id)))


def test_the_welcome_page_offers_the_lookup(quick: TestClient) -> None:
    page = quick.get("/")
    assert page.status_code == 200
    assert 'action="/lookup"' in page.text
    assert 'name="host"' not in page.text


def test_number_and_amount_due_open_a_session_on_that_invoice_alone(
    quick: TestClient, db: Session, debtor: tuple[Customer, Invoice, Invoice]
) -> None:
    customer, mine, _other = debtor
    response = quick.post("/lookup", data={"invoice_number": "F-100", "amount": "400,00"})
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    assert "samesite=lax" in response.headers["set-cookie"].lower()
    assert "Partitioned" not in response.headers["set-cookie"]
    home = quick.get("/")
    assert "F-100" in home.text
    assert "F-101" not in home.text  # scoped to the invoice proven
    assert quick.get(f"/invoices/{_other.id}").status_code == 404
    (event,) = _events(db, "portal.lookup_opened")
    assert event.customer_id == customer.id
    assert event.subject_id == str(mine.id)


def test_reference_and_postcode_open_it_too(
    quick: TestClient, debtor: tuple[Customer, Invoice, Invoice]
) -> None:
    response = quick.post(
        "/lookup", data={"invoice_number": "F-101", "reference": "c-77", "postcode": "75 002"}
    )
    assert response.status_code == 303
    assert "F-101" in quick.get("/").text


def test_a_miss_has_one_answer_whatever_was_wrong(
    quick: TestClient, db: Session, debtor: tuple[Customer, Invoice, Invoice]
) -> None:
    customer, _mine, _other = debtor
    attempts = [
        {"invoice_number": "F-100", "amount": "399.99"},  # known number, wrong amount
        {"invoice_number": "F-999", "amount": "399.99"},  # unknown number
        {"invoice_number": "F-101", "reference": "C-77", "postcode": "75003"},
        {"invoice_number": "F-998", "reference": "C-77", "postcode": "75002"},
    ]
    answers = []
    for data in attempts:
        response = quick.post("/lookup", data=data)
        assert response.status_code == 400
        assert "set-cookie" not in response.headers
        body = response.text
        for value in data.values():
            body = body.replace(f'value="{value}"', 'value=""')
        answers.append(body)
    assert len(set(answers)) == 1
    failed = _events(db, "portal.lookup_failed")
    assert [e.customer_id for e in failed] == [customer.id, None, customer.id, None]


def test_the_shape_of_the_form_is_checked_with_clear_messages(quick: TestClient) -> None:
    response = quick.post("/lookup", data={"invoice_number": "", "amount": "abc"})
    assert response.status_code == 400
    assert 'id="lookup-number-error"' in response.text
    assert 'id="lookup-amount-error"' in response.text
    response = quick.post("/lookup", data={"invoice_number": "F-1", "reference": "C-1"})
    assert 'id="lookup-proof-error"' in response.text


def test_guessing_one_invoice_is_throttled_even_from_many_clients(
    quick: TestClient, db: Session, debtor: tuple[Customer, Invoice, Invoice]
) -> None:
    for guess in ("1", "2", "3", "4"):
        assert (
            quick.post("/lookup", data={"invoice_number": "F-100", "amount": guess}).status_code
            == 400
        )
    # Now even the right amount waits, and says how long.
    refused = quick.post("/lookup", data={"invoice_number": "f-100", "amount": "400"})
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 59
    assert "set-cookie" not in refused.headers
    # Another invoice is not held up by this one.
    assert (
        quick.post("/lookup", data={"invoice_number": "F-101", "amount": "99"}).status_code == 303
    )
    assert len(_events(db, "portal.lookup_throttled")) == 1


def test_one_client_guessing_across_invoices_is_throttled(
    quick: TestClient, debtor: tuple[Customer, Invoice, Invoice]
) -> None:
    for n in range(11):
        response = quick.post("/lookup", data={"invoice_number": f"G-{n}", "amount": "1"})
        assert response.status_code == 400
    assert (
        quick.post("/lookup", data={"invoice_number": "F-101", "amount": "99"}).status_code == 429
    )


def test_every_answer_waits_for_the_same_floor(
    client: TestClient,
    debtor: tuple[Customer, Invoice, Invoice],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A hit, a near miss and a miss each wait out the rest of the floor, counted from
    the request's arrival (bench/embed.py measures the real durations side by side)."""
    from portal.web import lookup as web_lookup

    waits: list[float] = []

    async def record_wait(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(web_lookup.anyio, "sleep", record_wait)
    client.app.state.lookup_answer_seconds = 30  # type: ignore[attr-defined]
    for data in (
        {"invoice_number": "F-999", "amount": "1"},
        {"invoice_number": "F-100", "amount": "1"},
        {"invoice_number": "F-100", "amount": "400"},
    ):
        client.post("/lookup", data=data)
    assert len(waits) == 3
    assert all(25 < wait <= 30 for wait in waits), waits


def test_the_company_can_switch_it_off(
    quick: TestClient, db: Session, debtor: tuple[Customer, Invoice, Invoice]
) -> None:
    log_in(quick, make_staff(db))
    assert quick.post("/admin/embed/lookup", data={}).status_code == 303
    quick.post("/admin/logout")
    quick.cookies.clear()
    assert 'action="/lookup"' not in quick.get("/").text
    response = quick.post("/lookup", data={"invoice_number": "F-100", "amount": "400"})
    assert response.status_code == 404
    assert _events(db, "embed.lookup_switched")[0].details == {"enabled": False}
