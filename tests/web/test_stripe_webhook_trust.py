"""Stripe webhooks trust only what Relance created: its PaymentIntents, for the amount and
currency of the request they were created for. Validly signed bodies of another shape get
400, never a 500. Real app, real localstripe, real signed deliveries."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import select

from portal.customers.models import Customer
from portal.invoices.models import InvoiceStatus
from portal.payments.models import PaymentRequestStatus, WebhookEvent
from portal.timeline.models import TimelineEvent
from tests.payments_live import PaymentWorld
from tests.web.test_card_payments import (
    created_intent,
    invoice_rows,
    make_debtor,
    pay_as_stripe_js,
    payments_of,
    request_row,
    start_card_payment,
    succeeded_event,
    wait_until,
)


def card_request(world: PaymentWorld, amounts: list[int], pay: int = 1) -> tuple[Any, ...]:
    """A debtor with invoices, a card request for the first ``pay`` of them, and its
    PaymentIntent created by the card page (as a debtor's browser would)."""
    customer, invoices = make_debtor(world, amounts)
    portal = world.portal(customer)
    request_id = start_card_payment(portal, invoices[:pay])
    return customer, invoices, request_id, created_intent(world, portal, request_id)


def stored(world: PaymentWorld, event_id: str) -> str | None:
    with world.session() as db:
        return db.scalar(select(WebhookEvent.outcome).where(WebhookEvent.event_id == event_id))


def timeline_actions(world: PaymentWorld, customer: Customer) -> list[str]:
    with world.session() as db:
        return list(
            db.scalars(select(TimelineEvent.action).where(TimelineEvent.customer_id == customer.id))
        )


def test_a_larger_amount_than_the_payment_intent_records_nothing(world: PaymentWorld) -> None:
    customer, invoices, request_id, intent_id = card_request(world, [10_000, 5_000])
    larger = succeeded_event(intent_id, request_id, 15_000)
    response = world.post_event(larger)
    assert response.status_code == 200
    assert response.json()["outcome"] == "mismatch"
    assert stored(world, larger["id"]) == "mismatch"
    assert payments_of(world, customer) == []
    assert [i.status for i in invoice_rows(world, invoices)] == [InvoiceStatus.OPEN] * 2
    assert request_row(world, request_id).status is PaymentRequestStatus.OPEN

    other_currency = succeeded_event(intent_id, request_id, 10_000)
    other_currency["data"]["object"]["currency"] = "usd"
    assert world.post_event(other_currency).json()["outcome"] == "mismatch"
    assert payments_of(world, customer) == []

    # The PaymentIntent's own amount, paid for real, is what gets recorded.
    assert pay_as_stripe_js(world, intent_id).status == "succeeded"
    wait_until(lambda: payments_of(world, customer), "the genuine payment")
    (payment,) = payments_of(world, customer)
    assert payment.amount_minor == 10_000
    first, second = invoice_rows(world, invoices)
    assert first.status is InvoiceStatus.PAID
    assert second.status is InvoiceStatus.OPEN
    assert second.paid_minor == 0


def test_an_unknown_payment_intent_naming_another_customers_request_is_ignored(
    world: PaymentWorld,
) -> None:
    victim, invoices, request_id, _intent_id = card_request(world, [8_000])
    for kind in ("payment_intent.succeeded", "payment_intent.payment_failed"):
        forged = succeeded_event(f"pi_{uuid.uuid4().hex[:20]}", request_id, 8_000)
        forged["type"] = kind
        response = world.post_event(forged)
        assert response.status_code == 200
        assert response.json()["outcome"] == "unmatched"
        assert stored(world, forged["id"]) == "unmatched"
    assert payments_of(world, victim) == []
    (invoice,) = invoice_rows(world, invoices)
    assert invoice.status is InvoiceStatus.OPEN
    assert "payment.failed" not in timeline_actions(world, victim)
    assert request_row(world, request_id).status is PaymentRequestStatus.OPEN


def test_a_confirmed_request_is_never_paid_a_second_time(world: PaymentWorld) -> None:
    customer, _invoices, request_id, intent_id = card_request(world, [6_500])
    assert world.post_event(succeeded_event(intent_id, request_id, 6_500)).status_code == 200
    assert request_row(world, request_id).status is PaymentRequestStatus.CONFIRMED
    again = succeeded_event(f"pi_{uuid.uuid4().hex[:20]}", request_id, 6_500)
    assert world.post_event(again).json()["outcome"] == "unmatched"
    replay = world.post_event(succeeded_event(intent_id, request_id, 6_500))
    assert replay.json()["outcome"] == "duplicate"
    (payment,) = payments_of(world, customer)
    assert payment.amount_minor == 6_500


def test_a_refund_or_chargeback_in_another_currency_reverses_nothing(
    world: PaymentWorld,
) -> None:
    customer, invoices, request_id, intent_id = card_request(world, [5_000])
    assert world.post_event(succeeded_event(intent_id, request_id, 5_000)).status_code == 200
    refund = {
        "id": f"evt_{uuid.uuid4().hex[:20]}",
        "type": "charge.refunded",
        "data": {
            "object": {
                "id": "ch_usd",
                "payment_intent": intent_id,
                "currency": "usd",
                "refunds": {"data": [{"id": f"re_{uuid.uuid4().hex[:10]}", "amount": 5_000}]},
            }
        },
    }
    chargeback = {
        "id": f"evt_{uuid.uuid4().hex[:20]}",
        "type": "charge.dispute.closed",
        "data": {
            "object": {
                "id": f"dp_{uuid.uuid4().hex[:10]}",
                "payment_intent": intent_id,
                "currency": "usd",
                "amount": 5_000,
                "status": "lost",
            }
        },
    }
    for event in (refund, chargeback):
        response = world.post_event(event)
        assert response.status_code == 200
        assert response.json()["outcome"] == "mismatch"
    (payment,) = payments_of(world, customer)
    assert payment.reversed_minor == 0
    (invoice,) = invoice_rows(world, invoices)
    assert invoice.status is InvoiceStatus.PAID


def _signed_post(world: PaymentWorld, body: bytes) -> Any:
    import httpx2 as httpx

    from tests.payments_live import WEBHOOK_SECRET, stripe_signature

    return httpx.post(
        f"{world.url}/webhooks/stripe",
        content=body,
        headers={
            "Content-Type": "application/json",
            "Stripe-Signature": stripe_signature(body, WEBHOOK_SECRET),
        },
        trust_env=False,
        timeout=30,
    )


def _malformed_events(intent_id: str, request_id: int) -> dict[str, Any]:
    good = succeeded_event(intent_id, request_id, 4_000)
    intent = good["data"]["object"]

    def event(type_: str, obj: Any, **extra: Any) -> dict[str, Any]:
        return {**good, "id": f"evt_{uuid.uuid4().hex[:20]}", "type": type_, "data": obj, **extra}

    refund = {"object": {"id": "ch_x", "payment_intent": intent_id, "refunds": {"data": [{}]}}}
    return {
        "data as a list": event("payment_intent.succeeded", [intent]),
        "no data": {k: v for k, v in event("payment_intent.succeeded", {}).items() if k != "data"},
        "object without id": event(
            "payment_intent.succeeded", {"object": {k: v for k, v in intent.items() if k != "id"}}
        ),
        "type not a string": event("payment_intent.succeeded", {"object": intent}, type=["x"]),
        "amount as text": event(
            "payment_intent.succeeded", {"object": {**intent, "amount_received": "4000"}}
        ),
        "bigint out of range": event(
            "payment_intent.succeeded", {"object": {**intent, "amount_received": 2**70}}
        ),
        "created out of range": event(
            "payment_intent.succeeded", {"object": {**intent, "created": 10**20}}
        ),
        "an id longer than its column": event(
            "payment_intent.succeeded", {"object": {**intent, "id": "pi_" + "x" * 500}}
        ),
        "a refund without id": event("charge.refunded", refund),
        "refunds as a string": event(
            "charge.refunded", {"object": {"payment_intent": intent_id, "refunds": "all"}}
        ),
        "a lost dispute of 2**70": event(
            "charge.dispute.closed",
            {
                "object": {
                    "id": "dp_x",
                    "payment_intent": intent_id,
                    "status": "lost",
                    "amount": 2**70,
                }
            },
        ),
        "an error as a list": event(
            "payment_intent.payment_failed", {"object": {**intent, "last_payment_error": [1]}}
        ),
    }


def test_malformed_but_signed_bodies_get_400_with_security_headers_and_store_nothing(
    world: PaymentWorld,
) -> None:
    customer, invoices, request_id, intent_id = card_request(world, [4_000])
    # A payment recorded first, so refunds and disputes reach their handlers.
    assert world.post_event(succeeded_event(intent_id, request_id, 4_000)).status_code == 200
    for name, event in _malformed_events(intent_id, request_id).items():
        response = _signed_post(world, json.dumps(event).encode())
        assert response.status_code == 400, (name, response.text)
        assert "Traceback" not in response.text
        assert response.headers["x-content-type-options"] == "nosniff", name
        assert "default-src 'self'" in response.headers["content-security-policy"], name
        assert response.headers["referrer-policy"] == "no-referrer", name
        assert stored(world, str(event.get("id"))) is None, name
    deep = b"[" * 100_000 + b"]" * 100_000
    for body in (deep, b'{"id": 1}', b"[]"):
        response = _signed_post(world, body)
        assert response.status_code == 400
        assert response.headers["x-content-type-options"] == "nosniff"
    (payment,) = payments_of(world, customer)
    assert payment.reversed_minor == 0
    (invoice,) = invoice_rows(world, invoices)
    assert invoice.status is InvoiceStatus.PAID
