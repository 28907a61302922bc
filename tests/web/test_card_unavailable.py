"""Card payment without Stripe: hidden when not configured, harmless when unreachable."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from portal.company.models import Company
from portal.payments.models import PaymentRequest
from portal.settings import Settings, StripeSettings
from portal.web.app import create_app
from tests.factories import make_customer, make_invoice
from tests.mail_sink import free_port
from tests.web.helpers import open_portal

PAY_BY_CARD = re.compile(r"Pay [^<]*by card")
PAY_BY_TRANSFER = re.compile(r"Pay [^<]*by bank transfer")


def test_without_stripe_keys_only_transfer_is_offered(
    client: TestClient, db: Session, settings: Settings, company: Company
) -> None:
    customer = make_customer(db, company, language="en")
    invoice = make_invoice(db, customer)
    open_portal(client, db, settings, customer)
    home = client.get("/")
    # The buttons say what they pay: "Pay €100.00 by bank transfer".
    assert PAY_BY_TRANSFER.search(home.text)
    assert not PAY_BY_CARD.search(home.text)
    refused = client.post("/pay/card", data={"invoice": [str(invoice.id)]})
    assert refused.status_code == 400
    assert "Card payment is not available" in refused.text
    assert db.scalars(select(PaymentRequest)).all() == []


@pytest.fixture
def unreachable_stripe(
    settings: Settings, session_factory: sessionmaker[Session], company: Company, db: Session
) -> Iterator[tuple[TestClient, Settings]]:
    """The app configured for a Stripe that nobody answers (a closed loopback port)."""
    stripe = StripeSettings(
        secret_key="sk_test_12345",
        publishable_key="pk_test_12345",
        webhook_secret="whsec_test",
        api_base=f"http://127.0.0.1:{free_port()}",
        automatic_payment_methods=False,
        timeout_seconds=2,
    )
    configured = dataclasses.replace(settings, stripe=stripe)
    db.commit()
    app = create_app(configured, session_factory=session_factory)
    with TestClient(
        app, follow_redirects=False, headers={"Sec-Fetch-Site": "same-origin"}
    ) as test_client:
        yield test_client, configured


def test_when_stripe_is_unreachable_the_debtor_is_told_and_nothing_is_charged(
    unreachable_stripe: tuple[TestClient, Settings], db: Session, company: Company
) -> None:
    client, configured = unreachable_stripe
    customer = make_customer(db, company, language="en")
    invoice = make_invoice(db, customer)
    open_portal(client, db, configured, customer)
    assert PAY_BY_CARD.search(client.get("/").text)
    started = client.post("/pay/card", data={"invoice": [str(invoice.id)]})
    assert started.status_code == 303
    page = client.get(started.headers["location"])
    assert page.status_code == 200
    assert "cannot be reached right now. Nothing has been charged." in page.text
    assert 'id="card-form"' not in page.text
    (request,) = db.scalars(select(PaymentRequest)).all()
    assert request.provider_reference is None
    assert request.attempt == 1
