"""Every decision the back office's case page offers, through the API: the same services,
the same emails to the debtor, the same timeline events and outgoing webhooks; refusals as
problems (422 on the field, 409 when the case is not waiting for it)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from portal import clock
from portal.cases import service as cases
from portal.cases.models import Case, CaseStatus
from portal.cases.service import AgreementInfo
from portal.company.models import Company
from portal.customers.models import Customer
from portal.invoices.models import Invoice
from portal.mail.sender import OutgoingEmail
from portal.payments.models import Payment
from portal.payments.requests import declare_transfer, prepare_transfer
from portal.settings import CaseSettings
from portal.timeline.models import TimelineEvent
from portal.users.models import User
from portal.webhooks.endpoints import create_endpoint
from portal.webhooks.events import EVENT_TYPES
from portal.webhooks.models import OutgoingEvent
from tests.factories import make_customer, make_invoice

PREFIX = "/api/v1"
NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
TODAY = NOW.date()
AGREED = AgreementInfo("203.0.113.7", "test")
POLICY = CaseSettings(plan_max_instalments=3, promise_max_days=30, promise_grace_days=0)


@pytest.fixture
def customer(db: Session, company: Company, api_admin: User) -> Customer:
    clock.freeze(NOW)
    customer = make_customer(db, company, email="ana@client.example")
    create_endpoint(
        db,
        company.id,
        url="http://127.0.0.1:9/hooks",
        events=EVENT_TYPES,
        description="ERP",
        user_id=api_admin.id,
        allowed=("127.0.0.0/8",),
    )
    db.commit()
    return customer


@pytest.fixture
def sent(api: TestClient) -> list[OutgoingEmail]:
    mails: list[OutgoingEmail] = []
    api.app.state.mailer.send = mails.append  # type: ignore[attr-defined]
    return mails


def _plan_under_review(db: Session, customer: Customer) -> Case:
    invoice = make_invoice(db, customer, amount_minor=60_000)
    case = cases.propose_plan(
        db,
        customer,
        None,
        [invoice.id],
        first_date=TODAY + dt.timedelta(days=7),
        today=TODAY,
        policy=POLICY,
        company_currency="EUR",
        agreement=AGREED,
        count=6,  # more than the policy's 3: a person decides
    )
    db.commit()
    assert case.status is CaseStatus.REVIEW
    return case


def _events(db: Session) -> list[str]:
    return list(db.scalars(select(OutgoingEvent.type).order_by(OutgoingEvent.id)))


def _pointers(answer: object) -> list[str]:
    assert answer.status_code == 422, answer.text  # type: ignore[attr-defined]
    return [e["pointer"] for e in answer.json()["errors"]]  # type: ignore[attr-defined]


def test_a_plan_is_countered_and_another_accepted(
    api: TestClient, db: Session, customer: Customer, sent: list[OutgoingEmail]
) -> None:
    countered = _plan_under_review(db, customer)
    url = f"{PREFIX}/cases/{countered.id}/counter-proposal"
    first = (TODAY + dt.timedelta(days=10)).isoformat()
    both = api.post(url, json={"first_date": first, "count": 3, "monthly_minor": 20_000})
    assert _pointers(both) == ["#/count"]
    past = api.post(url, json={"first_date": "2026-01-01", "count": 3})
    assert _pointers(past) == ["#/first_date"]
    offered = api.post(url, json={"first_date": first, "count": 3, "note": "Three months?"})
    assert offered.status_code == 200, offered.text
    assert offered.json()["status"] == "countered"
    assert [m.to for m in sent] == ["ana@client.example"]
    # The counter-proposal waits for the debtor: the company cannot accept it itself.
    accept = api.post(f"{PREFIX}/cases/{countered.id}/decision", json={"decision": "accept"})
    assert accept.status_code == 409
    assert accept.headers["content-type"] == "application/problem+json"

    # Another session replaced the first plan's instalments (SQLite reuses their ids).
    customer_id = customer.id
    db.expunge_all()
    fresh = db.get(Customer, customer_id)
    assert fresh is not None
    accepted = _plan_under_review(db, fresh)
    answer = api.post(f"{PREFIX}/cases/{accepted.id}/decision", json={"decision": "accept"})
    assert answer.json()["status"] == "active"
    assert len(sent) == 2
    assert "plan.accepted" in _events(db)
    actions = set(db.scalars(select(TimelineEvent.action)))
    assert {"plan.countered", "plan.accepted"} <= actions


def test_a_dispute_is_resolved_by_a_credit_on_its_invoice(
    api: TestClient, db: Session, customer: Customer, sent: list[OutgoingEmail]
) -> None:
    invoice = make_invoice(db, customer, amount_minor=12_000, number="F-D1")
    other = make_invoice(db, customer, number="F-OTHER")
    case = cases.open_dispute(
        db, customer, None, [invoice.id], reason="wrong_amount", message="The price was 80."
    )
    db.commit()
    url = f"{PREFIX}/cases/{case.id}/resolution"
    outside = api.post(url, json={"outcome": "credit", "invoice_number": other.number})
    assert _pointers(outside) == ["#/invoice_number"]
    too_much = api.post(
        url, json={"outcome": "credit", "invoice_number": "F-D1", "amount_minor": 12_001}
    )
    assert _pointers(too_much) == ["#/amount_minor"]
    assert _pointers(api.post(url, json={"outcome": "reject"})) == ["#/note"]
    credited = api.post(
        url,
        json={"outcome": "credit", "invoice_number": "F-D1", "amount_minor": 4_000, "note": "OK"},
    )
    assert credited.status_code == 200, credited.text
    assert (credited.json()["status"], credited.json()["resolution"]) == ("resolved", "credit")
    db.refresh(invoice)
    assert invoice.amount_minor == 8_000
    assert "dispute.decided" in _events(db)
    assert "invoice.credited" in set(db.scalars(select(TimelineEvent.action)))
    assert [m.to for m in sent] == ["ana@client.example"]
    again = api.post(url, json={"outcome": "cancel", "invoice_number": "F-D1"})
    assert again.status_code == 409
    db.refresh(invoice)
    assert invoice.amount_minor == 8_000


@pytest.mark.parametrize("outcome", ["cancel", "adjust"])
def test_a_dispute_cancels_or_adjusts_its_invoice(
    api: TestClient, db: Session, customer: Customer, outcome: str
) -> None:
    invoice = make_invoice(db, customer, amount_minor=12_000, number="F-D2")
    case = cases.open_dispute(db, customer, None, [invoice.id], reason="wrong_amount", message="x")
    db.commit()
    answer = api.post(
        f"{PREFIX}/cases/{case.id}/resolution",
        json={"outcome": outcome, "invoice_number": "F-D2", "amount_minor": 9_000},
    )
    assert answer.status_code == 200, answer.text
    db.refresh(invoice)
    expected = {"cancel": ("cancelled", 12_000), "adjust": ("open", 9_000)}[outcome]
    assert (invoice.status.value, invoice.amount_minor) == expected


def test_replies_reach_the_debtor_and_a_broken_promise_is_closed(
    api: TestClient, db: Session, customer: Customer, sent: list[OutgoingEmail]
) -> None:
    invoice = make_invoice(db, customer)
    case = cases.promise_to_pay(
        db,
        customer,
        None,
        [invoice.id],
        promised_date=TODAY,
        today=TODAY,
        policy=POLICY,
        agreement=AGREED,
    )
    db.commit()
    assert _pointers(api.post(f"{PREFIX}/cases/{case.id}/messages", json={"message": ""})) == [
        "#/message"
    ]
    once = {"Idempotency-Key": "reply-1"}
    replied = api.post(
        f"{PREFIX}/cases/{case.id}/messages", json={"message": "Thank you."}, headers=once
    )
    assert replied.status_code == 200, replied.text
    retried = api.post(
        f"{PREFIX}/cases/{case.id}/messages", json={"message": "Thank you."}, headers=once
    )
    assert (retried.text, retried.headers["Idempotent-Replayed"]) == (replied.text, "true")
    assert [m.body for m in cases.thread(db, case.id)] == ["Thank you."]
    assert len(sent) == 1
    close = f"{PREFIX}/cases/{case.id}/close"
    assert api.post(close, json={"note": "Called."}).status_code == 409  # not broken yet
    cases.check_commitments(db, TODAY + dt.timedelta(days=1), POLICY)
    db.commit()
    assert "promise.broken" in _events(db)
    closed = api.post(close, json={"note": "Called, pays Friday."})
    assert closed.json()["status"] == "closed"
    assert len(sent) == 1  # closing tells the debtor nothing, as in the back office


def test_a_declared_transfer_is_listed_and_confirmed(
    api: TestClient, db: Session, customer: Customer
) -> None:
    invoice = make_invoice(db, customer, amount_minor=30_000, number="F-T1")
    request = prepare_transfer(db, customer, None, [invoice.id])
    declare_transfer(db, request, TODAY, request.amount_minor, TODAY, 10)
    db.commit()
    waiting = api.get(f"{PREFIX}/transfers").json()["data"]
    assert [(t["id"], t["invoice_numbers"]) for t in waiting] == [(request.id, ["F-T1"])]
    url = f"{PREFIX}/transfers/{request.id}/confirm"
    future = api.post(url, json={"amount_minor": 30_000, "received_on": "2026-12-25"})
    assert _pointers(future) == ["#/received_on"]
    confirmed = api.post(url, json={"amount_minor": 30_000, "received_on": TODAY.isoformat()})
    assert confirmed.status_code == 200, confirmed.text
    body = confirmed.json()
    assert body["payment"]["allocations"] == [{"invoice_number": "F-T1", "amount_minor": 30_000}]
    assert body["transfer"]["status"] == "confirmed"
    assert (
        api.post(url, json={"amount_minor": 30_000, "received_on": "2026-11-23"}).status_code == 409
    )
    assert len(db.scalars(select(Payment)).all()) == 1
    db.refresh(invoice)
    assert invoice.paid_minor == 30_000
    assert "invoice.paid" in _events(db)
    assert api.get(f"{PREFIX}/transfers").json()["data"] == []
    assert (
        api.post(
            f"{PREFIX}/transfers/{request.id + 99}/confirm",
            json={"amount_minor": 1, "received_on": "2026-11-23"},
        ).status_code
        == 404
    )


def test_decisions_are_made_only_on_the_companys_cases(api: TestClient, db: Session) -> None:
    for path, body in [
        ("counter-proposal", {"first_date": "2026-12-01", "count": 2}),
        ("resolution", {"outcome": "reject", "note": "no"}),
        ("messages", {"message": "hi"}),
        ("close", {"note": "done"}),
    ]:
        assert api.post(f"{PREFIX}/cases/999999/{path}", json=body).status_code == 404
    assert db.scalars(select(Invoice)).all() == []
