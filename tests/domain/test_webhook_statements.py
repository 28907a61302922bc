"""A Stripe ``payment_intent.succeeded`` costs a fixed, small number of statements: each is
a round trip to the database, and the webhook endpoint spends most of its time waiting on
them (bench/webhooks.py). A change that adds one (an autoflush, a lazy load, a second
lookup) fails here before it shows in the benchmark."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from portal import clock
from portal.company.models import Company
from portal.invoices.models import Invoice, InvoiceStatus
from portal.payments import stripe_events
from portal.payments.models import (
    Payment,
    PaymentMethod,
    PaymentRequest,
    PaymentRequestStatus,
    WebhookEvent,
)
from portal.timeline.models import TimelineEvent
from tests.factories import make_customer, make_invoice

# Claim the event id, find and confirm the request (one statement on PostgreSQL); lock the
# invoices; the payment, allocations, invoices, timeline and the outgoing webhook events
# (one statement on PostgreSQL; SQLite adds one for the outgoing events).
SUCCEEDED_STATEMENTS = {"postgresql": 2, "sqlite": 8}


@pytest.fixture
def statements(db: Session) -> Iterator[list[str]]:
    seen: list[str] = []
    connection = db.connection()

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(connection, "before_cursor_execute", count)
    yield seen
    event.remove(connection, "before_cursor_execute", count)


def succeeded(intent_id: str, amount_minor: int, currency: str = "eur") -> dict[str, Any]:
    return {
        "id": f"evt_{uuid.uuid4().hex[:20]}",
        "type": "payment_intent.succeeded",
        "data": {
            "object": {
                "id": intent_id,
                "object": "payment_intent",
                "amount": amount_minor,
                "amount_received": amount_minor,
                "currency": currency,
                "created": int(clock.now().timestamp()),
            }
        },
    }


def card_request(db: Session, company: Company, amounts: list[int]) -> tuple[Any, ...]:
    customer = make_customer(db, company)
    invoices = [
        make_invoice(db, customer, amount_minor=a, due_in_days=n) for n, a in enumerate(amounts)
    ]
    intent_id = f"pi_{uuid.uuid4().hex[:20]}"
    request = PaymentRequest(
        customer_id=customer.id,
        currency="EUR",
        amount_minor=sum(amounts),
        method=PaymentMethod.CARD,
        invoice_ids=[i.id for i in invoices],
        created_at=clock.now(),
        provider_reference=intent_id,
    )
    db.add(request)
    db.flush()
    return customer, invoices, request, intent_id


def test_a_succeeded_event_costs_a_fixed_number_of_statements(
    db: Session, company: Company, statements: list[str]
) -> None:
    customer, invoices, request, intent_id = card_request(db, company, [4_000, 6_000])
    statements.clear()
    outcome = stripe_events.apply_event(db, succeeded(intent_id, 10_000))
    db.flush()  # what the commit would still send
    assert outcome.result == stripe_events.APPLIED
    assert len(statements) == SUCCEEDED_STATEMENTS[db.get_bind().dialect.name], "\n".join(
        statements
    )

    db.expire_all()
    payment = db.scalars(select(Payment).where(Payment.customer_id == customer.id)).one()
    assert payment.id == outcome.payment_id
    assert payment.payment_request_id == request.id
    assert sorted((a.invoice_id, a.amount_minor) for a in payment.allocations) == [
        (invoices[0].id, 4_000),
        (invoices[1].id, 6_000),
    ]
    for invoice in invoices:
        row = db.get(Invoice, invoice.id)
        assert row is not None
        assert row.status is InvoiceStatus.PAID
    stored = db.get(PaymentRequest, request.id)
    assert stored is not None
    assert stored.status is PaymentRequestStatus.CONFIRMED
    assert stored.confirmed_at is not None
    actions = db.scalars(
        select(TimelineEvent.action).where(TimelineEvent.customer_id == customer.id)
    ).all()
    assert "payment.recorded" in actions


def test_a_replay_costs_one_statement(db: Session, company: Company, statements: list[str]) -> None:
    _customer, _invoices, _request, intent_id = card_request(db, company, [2_500])
    delivered = succeeded(intent_id, 2_500)
    stripe_events.apply_event(db, delivered)
    db.flush()
    statements.clear()
    assert stripe_events.apply_event(db, delivered).result == stripe_events.DUPLICATE
    db.flush()
    assert len(statements) == 1, "\n".join(statements)


def test_a_mismatched_amount_changes_nothing(db: Session, company: Company) -> None:
    customer, invoices, request, intent_id = card_request(db, company, [3_000])
    delivered = succeeded(intent_id, 3_100)
    assert stripe_events.apply_event(db, delivered).result == stripe_events.MISMATCH
    db.flush()
    db.expire_all()
    assert db.scalars(select(Payment).where(Payment.customer_id == customer.id)).all() == []
    stored = db.get(PaymentRequest, request.id)
    assert stored is not None
    assert stored.status is PaymentRequestStatus.OPEN
    assert stored.confirmed_at is None
    row = db.get(Invoice, invoices[0].id)
    assert row is not None
    assert row.status is InvoiceStatus.OPEN
    outcome = db.scalar(
        select(WebhookEvent.outcome).where(WebhookEvent.event_id == delivered["id"])
    )
    assert outcome == stripe_events.MISMATCH
