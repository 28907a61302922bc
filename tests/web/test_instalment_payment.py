"""Paying a payment plan's instalment from the portal, like an invoice."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from portal import clock
from portal.cases import service as cases
from portal.company.models import Company
from portal.payments.models import PaymentRequest
from portal.payments.requests import confirm_transfer
from portal.settings import Settings
from tests.factories import make_customer, make_invoice
from tests.web.helpers import open_portal


def test_the_next_instalment_is_paid_by_transfer_and_the_plan_moves_on(
    client: TestClient, db: Session, settings: Settings, company: Company
) -> None:
    today = clock.now().date()
    customer = make_customer(db, company, language="en")
    invoice = make_invoice(db, customer, amount_minor=30_000, due_in_days=-10)
    case = cases.propose_plan(
        db,
        customer,
        None,
        [invoice.id],
        first_date=today + dt.timedelta(days=7),
        today=today,
        policy=settings.cases,
        company_currency="EUR",
        agreement=cases.AgreementInfo("127.0.0.1", "test"),
        count=3,
    )
    db.commit()
    first = cases.next_instalment(db, customer.id, case.id)
    assert first is not None
    assert first.seq == 1
    open_portal(client, db, settings, customer)

    page = client.get(f"/cases/{case.id}")
    assert "Pay this instalment by bank transfer" in page.text
    form = dict(re.findall(r'name="(plan|amount)" value="([^"]+)"', page.text))
    assert form == {"plan": str(case.id), "amount": "100.00"}
    started = client.post(
        "/pay/transfer",
        data={"plan": form["plan"], "amount": form["amount"], "invoice": [str(invoice.id)]},
    )
    assert started.status_code == 303, started.text
    request_id = int(started.headers["location"].rsplit("/", 1)[1])
    request = db.get(PaymentRequest, request_id)
    assert request is not None
    assert request.amount_minor == first.amount_minor == 10_000

    confirm_transfer(db, request, amount_minor=10_000, received_on=today, today=today, actor_id="1")
    db.commit()
    second = cases.next_instalment(db, customer.id, case.id)
    assert second is not None
    assert second.seq == 2
    assert invoice.remaining_minor == 20_000


def test_an_instalment_amount_is_accepted_only_for_that_plan(
    client: TestClient, db: Session, settings: Settings, company: Company
) -> None:
    """Without the plan, the same small amount is a partial payment under the usual policy."""
    customer = make_customer(db, company, language="en")
    invoice = make_invoice(db, customer, amount_minor=30_000, due_in_days=-10)
    db.commit()
    open_portal(client, db, settings, customer)
    refused = client.post(
        "/pay/transfer", data={"plan": "999999", "amount": "5.00", "invoice": [str(invoice.id)]}
    )
    assert refused.status_code == 400
    assert "below the minimum" in refused.text
