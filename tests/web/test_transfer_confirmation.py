"""Confirming declared transfers in the back office: recorded and allocated like a card payment."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from portal import clock
from portal.company.models import Company
from portal.invoices.models import InvoiceStatus
from portal.payments.models import Payment, PaymentRequestStatus
from portal.payments.requests import (
    PaymentRequestError,
    confirm_transfer,
    declare_transfer,
    pending_invoice_ids,
    prepare_transfer,
    reference_of,
)
from portal.payments.transfer import format_creditor_reference
from portal.timeline.models import TimelineEvent
from portal.users import service as users
from portal.users.models import Role
from portal.users.service import create_user
from tests.factories import make_customer, make_invoice

PASSWORD = "correct horse battery staple"
TODAY = dt.date(2026, 11, 23)


@pytest.fixture(autouse=True)
def _setup() -> Iterator[None]:
    clock.freeze(dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC))
    previous = users.set_password_hasher(
        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    yield
    users.set_password_hasher(previous)


def _declared(db: Session, company: Company, amounts: list[int]) -> tuple[object, list[object]]:
    customer = make_customer(db, company)
    invoices = [
        make_invoice(db, customer, amount_minor=a, due_in_days=-10 + n)
        for n, a in enumerate(amounts)
    ]
    request = prepare_transfer(db, customer, None, [i.id for i in invoices])
    declare_transfer(db, request, TODAY - dt.timedelta(days=1), request.amount_minor, TODAY, 10)
    db.commit()
    return request, invoices


def _log_in(client: TestClient, db: Session, role: Role) -> None:
    client.app.state.login_failure_delay = 0  # type: ignore[attr-defined]
    client.headers["Accept-Language"] = "en"
    email = f"{role.value}-{id(client)}@relance.example"
    create_user(db, email, role, PASSWORD)
    db.commit()
    response = client.post("/admin/login", data={"email": email, "password": PASSWORD})
    assert response.status_code == 303


def test_confirming_records_allocates_and_ends_payment_pending(
    db: Session, company: Company
) -> None:
    request, invoices = _declared(db, company, [10_000, 5_000])
    assert pending_invoice_ids(db, request.customer_id, TODAY) == {i.id for i in invoices}  # type: ignore[attr-defined]
    payment = confirm_transfer(
        db,
        request,
        amount_minor=12_000,
        received_on=TODAY,
        today=TODAY,
        actor_id="7",  # type: ignore[arg-type]
    )
    stored = db.get(Payment, payment.id)
    assert stored is not None
    assert stored.provider == "bank"
    assert stored.provider_reference == reference_of(request)  # type: ignore[arg-type]
    first, second = invoices
    assert first.status is InvoiceStatus.PAID  # type: ignore[attr-defined]
    assert second.remaining_minor == 3_000  # type: ignore[attr-defined]
    assert request.status is PaymentRequestStatus.CONFIRMED  # type: ignore[attr-defined]
    assert pending_invoice_ids(db, request.customer_id, TODAY) == set()  # type: ignore[attr-defined]
    actions = list(
        db.scalars(
            select(TimelineEvent.action)
            .where(TimelineEvent.customer_id == request.customer_id)  # type: ignore[attr-defined]
            .order_by(TimelineEvent.id)
        )
    )
    assert actions[-2:] == ["payment.recorded", "transfer.confirmed"]
    with pytest.raises(PaymentRequestError) as refused:
        confirm_transfer(db, request, amount_minor=12_000, received_on=TODAY, today=TODAY)  # type: ignore[arg-type]
    assert refused.value.key == PaymentRequestError.NOT_CONFIRMABLE


def test_an_overpaid_transfer_leaves_credit(db: Session, company: Company) -> None:
    request, invoices = _declared(db, company, [4_000])
    payment = confirm_transfer(db, request, amount_minor=5_000, received_on=TODAY, today=TODAY)  # type: ignore[arg-type]
    assert invoices[0].status is InvoiceStatus.PAID  # type: ignore[attr-defined]
    assert payment.credit_minor == 1_000


def test_credit_manager_confirms_from_the_back_office(
    client: TestClient, db: Session, company: Company
) -> None:
    request, invoices = _declared(db, company, [10_000])
    _log_in(client, db, Role.CREDIT_MANAGER)
    page = client.get("/admin/transfers")
    assert page.status_code == 200
    # Grouped by four for reading, as on the portal.
    assert format_creditor_reference(reference_of(request)) in page.text  # type: ignore[arg-type]
    url = f"/admin/transfers/{request.id}/confirm"  # type: ignore[attr-defined]
    for data, message in [
        ({"amount": "abc", "received_on": TODAY.isoformat()}, "Enter the amount received"),
        ({"amount": "0", "received_on": TODAY.isoformat()}, "must be more than zero"),
        ({"amount": "100", "received_on": "yesterday"}, "Enter the date the money arrived"),
        (
            {"amount": "100", "received_on": (TODAY + dt.timedelta(days=2)).isoformat()},
            "cannot be in the future",
        ),
    ]:
        refused = client.post(url, data=data)
        assert refused.status_code == 400
        assert message in refused.text
    assert db.scalar(select(func.count()).select_from(Payment)) == 0
    done = client.post(url, data={"amount": "100,00", "received_on": TODAY.isoformat()})
    assert done.status_code == 303
    assert done.headers["location"] == "/admin/transfers?done=confirmed"
    db.expire_all()
    assert invoices[0].status is InvoiceStatus.PAID  # type: ignore[attr-defined]
    again = client.post(url, data={"amount": "100,00", "received_on": TODAY.isoformat()})
    assert again.status_code == 400
    assert "already confirmed" in again.text
    assert db.scalar(select(func.count()).select_from(Payment)) == 1
    assert reference_of(request) not in client.get("/admin/transfers").text  # type: ignore[arg-type]


def test_a_viewer_sees_the_list_but_cannot_confirm(
    client: TestClient, db: Session, company: Company
) -> None:
    request, _invoices = _declared(db, company, [10_000])
    _log_in(client, db, Role.VIEWER)
    page = client.get("/admin/transfers")
    assert page.status_code == 200
    assert "Confirm the transfer" not in page.text
    refused = client.post(
        f"/admin/transfers/{request.id}/confirm",
        data={"amount": "100", "received_on": TODAY.isoformat()},
    )  # type: ignore[attr-defined]
    assert refused.status_code == 403
    assert db.scalar(select(func.count()).select_from(Payment)) == 0


def test_a_debtor_session_cannot_confirm(client: TestClient, db: Session, company: Company) -> None:
    request, _invoices = _declared(db, company, [10_000])
    response = client.post(
        f"/admin/transfers/{request.id}/confirm",
        data={"amount": "100", "received_on": TODAY.isoformat()},
    )  # type: ignore[attr-defined]
    assert response.status_code == 303
    assert response.headers["location"].startswith("/admin/login")
    assert db.scalar(select(func.count()).select_from(Payment)) == 0
