"""Card payments end to end: the portal, the real Stripe SDK against localstripe, signed
webhooks applied exactly once, allocation, receipts through a real SMTP server."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import stripe
from sqlalchemy import func, select

from portal import clock
from portal.customers.models import Contact, Customer
from portal.invoices.models import Invoice, InvoiceStatus
from portal.payments.models import (
    Payment,
    PaymentAllocation,
    PaymentRequest,
    PaymentRequestStatus,
    WebhookEvent,
)
from portal.payments.stripe_gateway import idempotency_key
from portal.timeline.models import TimelineEvent
from tests.mail_sink import text_body
from tests.payments_live import PaymentWorld

DEADLINE_SECONDS = 15.0


def wait_until(predicate: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def make_debtor(
    world: PaymentWorld, amounts: list[int], *, email: str | None = None
) -> tuple[Customer, list[Invoice]]:
    tag = uuid.uuid4().hex[:8]
    with world.session() as db:
        customer = Customer(
            company_id=world.company_id,
            reference=f"CARD-{tag}",
            name=f"Card debtor {tag}",
            language="en",
            timezone="Europe/Paris",
            link_version=1,
            created_at=clock.now(),
        )
        customer.contacts.append(
            Contact(name="Ada", email=email or f"{tag}@debtor.example", is_primary=True)
        )
        db.add(customer)
        db.flush()
        invoices = []
        today = clock.now().date()
        for n, amount in enumerate(amounts):
            invoice = Invoice(
                company_id=world.company_id,
                customer_id=customer.id,
                number=f"F-{tag}-{n + 1}",
                issue_date=today,
                due_date=today.replace(day=1),
                currency="EUR",
                amount_minor=amount,
                paid_minor=0,
                status=InvoiceStatus.OPEN,
                created_at=clock.now(),
            )
            invoice.due_date = invoice.due_date.fromordinal(invoice.due_date.toordinal() - 30 + n)
            db.add(invoice)
            invoices.append(invoice)
        db.flush()
    return customer, invoices


def start_card_payment(client: Any, invoices: list[Invoice], amount: str | None = None) -> int:
    data: dict[str, Any] = {"invoice": [str(i.id) for i in invoices]}
    if amount is not None:
        data["amount"] = amount
    response = client.post("/pay/card", data=data)
    assert response.status_code == 303, response.text
    match = re.fullmatch(r"/pay/card/(\d+)", response.headers["location"])
    assert match, response.headers["location"]
    return int(match.group(1))


def created_intent(world: PaymentWorld, portal: Any, request_id: int) -> str:
    """The PaymentIntent the card page creates for the request (as the debtor's browser
    opening it would); webhooks only count for intents Relance created."""
    assert portal.get(f"/pay/card/{request_id}").status_code == 200
    intent_id = request_row(world, request_id).provider_reference
    assert intent_id
    return intent_id


def request_row(world: PaymentWorld, request_id: int) -> PaymentRequest:
    with world.session() as db:
        row = db.get(PaymentRequest, request_id)
        assert row is not None
        return row


def invoice_rows(world: PaymentWorld, invoices: list[Invoice]) -> list[Invoice]:
    with world.session() as db:
        return [db.get(Invoice, i.id) for i in invoices]  # type: ignore[misc]


def payments_of(world: PaymentWorld, customer: Customer) -> list[Payment]:
    with world.session() as db:
        rows = list(db.scalars(select(Payment).where(Payment.customer_id == customer.id)))
        for row in rows:
            _ = row.allocations
        return rows


def pay_as_stripe_js(
    world: PaymentWorld, intent_id: str, payment_method: str = "pm_card_visa"
) -> Any:
    """What Stripe.js does in the browser once the debtor submits the card form."""
    client = world.stripe_client
    client.v1.payment_intents.update(intent_id, params={"payment_method": payment_method})
    return client.v1.payment_intents.confirm(intent_id)


def succeeded_event(
    intent_id: str, request_id: int, amount: int, *, event_id: str | None = None
) -> dict[str, Any]:
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": int(time.time()),
        "livemode": False,
        "data": {
            "object": {
                "id": intent_id,
                "object": "payment_intent",
                "amount": amount,
                "amount_received": amount,
                "currency": "eur",
                "status": "succeeded",
                "metadata": {"payment_request": str(request_id)},
            }
        },
    }


def test_paying_two_invoices_by_card_marks_both_paid_through_the_webhook(
    world: PaymentWorld,
) -> None:
    customer, invoices = make_debtor(world, [12_000, 8_050, 30_000])
    portal = world.portal(customer)
    request_id = start_card_payment(portal, invoices[:2])

    page = portal.get(f"/pay/card/{request_id}")
    assert page.status_code == 200
    assert "€200.50" in page.text  # the total, before paying
    csp = page.headers["content-security-policy"]
    assert world.stripe.api_base in csp
    assert "script-src 'self'" in csp
    intent_id = request_row(world, request_id).provider_reference
    assert intent_id
    assert intent_id.startswith("pi_")
    assert f'data-client-secret="{request_row(world, request_id).client_secret}"' in page.text

    assert pay_as_stripe_js(world, intent_id).status == "succeeded"

    wait_until(
        lambda: all(i.status is InvoiceStatus.PAID for i in invoice_rows(world, invoices[:2])),
        "both invoices paid",
    )
    third = invoice_rows(world, invoices)[2]
    assert third.status is InvoiceStatus.OPEN
    assert third.paid_minor == 0
    (payment,) = payments_of(world, customer)
    assert payment.amount_minor == 20_050
    assert payment.provider_reference == intent_id
    assert {a.invoice_id: a.amount_minor for a in payment.allocations} == {
        invoices[0].id: 12_000,
        invoices[1].id: 8_050,
    }
    assert request_row(world, request_id).status is PaymentRequestStatus.CONFIRMED
    with world.session() as db:
        actions = list(
            db.scalars(select(TimelineEvent.action).where(TimelineEvent.customer_id == customer.id))
        )
    assert "payment_request.created" in actions
    assert "payment.recorded" in actions

    contact = f"{customer.reference.split('-')[1]}@debtor.example"
    receipt = wait_until(
        lambda: [m for m in world.inbox.messages if m["To"] == contact], "the receipt"
    )
    assert len(receipt) == 1
    body = text_body(receipt[0])
    assert invoices[0].number in body
    assert invoices[1].number in body
    assert "€200.50" in body

    done = portal.get(f"/pay/card/{request_id}")
    assert "Payment received" in done.text


def test_double_submit_refresh_and_back_button_reuse_one_payment_intent(
    world: PaymentWorld,
) -> None:
    customer, invoices = make_debtor(world, [5_000, 7_000])
    portal = world.portal(customer)
    first = start_card_payment(portal, invoices)
    again = start_card_payment(portal, list(reversed(invoices)))
    assert first == again
    portal.get(f"/pay/card/{first}")
    intent_id = request_row(world, first).provider_reference
    portal.get(f"/pay/card/{first}")  # refresh
    start_card_payment(portal, invoices)  # back button, submit again
    portal.get(f"/pay/card/{first}")
    row = request_row(world, first)
    assert row.provider_reference == intent_id
    with world.session() as db:
        assert (
            db.scalar(
                select(func.count())
                .select_from(PaymentRequest)
                .where(PaymentRequest.customer_id == customer.id)
            )
            == 1
        )
    # The key comes from what is paid: same request and attempt, same key.
    assert idempotency_key(row) == idempotency_key(request_row(world, first))
    assert idempotency_key(row).startswith(f"relance-pr{first}-a1-")


def test_the_same_webhook_delivered_ten_times_some_concurrently_records_one_payment(
    world: PaymentWorld,
) -> None:
    customer, invoices = make_debtor(world, [9_900])
    portal = world.portal(customer)
    request_id = start_card_payment(portal, invoices)
    portal.get(f"/pay/card/{request_id}")
    intent_id = request_row(world, request_id).provider_reference
    assert intent_id
    event = succeeded_event(intent_id, request_id, 9_900)

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(lambda _: world.post_event(event).status_code, range(6)))
    statuses += [world.post_event(event).status_code for _ in range(4)]
    assert statuses == [200] * 10

    payments = payments_of(world, customer)
    assert len(payments) == 1
    assert payments[0].amount_minor == 9_900
    with world.session() as db:
        assert (
            db.scalar(
                select(func.count())
                .select_from(WebhookEvent)
                .where(WebhookEvent.event_id == event["id"])
            )
            == 1
        )
    (invoice,) = invoice_rows(world, invoices)
    assert invoice.paid_minor == 9_900
    assert invoice.status is InvoiceStatus.PAID


@pytest.mark.parametrize("tamper", ["wrong secret", "stale timestamp", "body changed", "no header"])
def test_a_bad_signature_or_stale_timestamp_gets_400_and_records_nothing(
    world: PaymentWorld, tamper: str
) -> None:
    import httpx2 as httpx

    from tests.payments_live import stripe_signature

    customer, invoices = make_debtor(world, [4_000])
    portal = world.portal(customer)
    request_id = start_card_payment(portal, invoices)
    event = succeeded_event(f"pi_{uuid.uuid4().hex[:20]}", request_id, 4_000)
    body = __import__("json").dumps(event).encode()
    secret = "whsec_relance_test_secret"
    headers = {"Content-Type": "application/json"}
    if tamper == "wrong secret":
        headers["Stripe-Signature"] = stripe_signature(body, "whsec_someone_else")
    elif tamper == "stale timestamp":
        headers["Stripe-Signature"] = stripe_signature(body, secret, int(time.time()) - 3600)
    elif tamper == "body changed":
        headers["Stripe-Signature"] = stripe_signature(body, secret)
        body = body.replace(b"4000", b"9000")
    response = httpx.post(
        f"{world.url}/webhooks/stripe", content=body, headers=headers, trust_env=False
    )
    assert response.status_code == 400
    assert payments_of(world, customer) == []
    with world.session() as db:
        assert (
            db.scalar(
                select(func.count())
                .select_from(WebhookEvent)
                .where(WebhookEvent.event_id == event["id"])
            )
            == 0
        )


def test_two_payments_racing_for_one_invoice_never_over_allocate(world: PaymentWorld) -> None:
    customer, invoices = make_debtor(world, [10_000])
    portal = world.portal(customer)
    # Two requests for the one invoice (all of it, and part of it), each with its intent.
    full = start_card_payment(portal, invoices)
    part = start_card_payment(portal, invoices, amount="90.00")
    assert full != part
    events = [
        succeeded_event(created_intent(world, portal, full), full, 10_000),
        succeeded_event(created_intent(world, portal, part), part, 9_000),
    ]
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(lambda e: world.post_event(e).json()["outcome"], events))
    assert outcomes == ["applied", "applied"]
    payments = payments_of(world, customer)
    assert len(payments) == 2
    (invoice,) = invoice_rows(world, invoices)
    assert invoice.paid_minor == 10_000
    assert invoice.status is InvoiceStatus.PAID
    allocated = sum(a.amount_minor for p in payments for a in p.allocations)
    assert allocated == 10_000
    assert sorted(p.credit_minor for p in payments) == [0, 9_000]  # the excess is credit
    home = portal.get("/")
    assert home.status_code == 200


def test_a_partial_payment_leaves_the_right_remaining_amount(world: PaymentWorld) -> None:
    customer, invoices = make_debtor(world, [25_000, 10_000])
    portal = world.portal(customer)
    request_id = start_card_payment(portal, invoices, amount="300,00")
    page = portal.get(f"/pay/card/{request_id}")
    assert page.status_code == 200
    row = request_row(world, request_id)
    assert row.amount_minor == 30_000
    assert row.provider_reference
    pay_as_stripe_js(world, row.provider_reference)
    wait_until(lambda: payments_of(world, customer), "the partial payment")
    first, second = invoice_rows(world, invoices)
    assert first.status is InvoiceStatus.PAID
    assert second.status is InvoiceStatus.OPEN
    assert second.remaining_minor == 5_000


def test_partial_amounts_outside_policy_are_refused_with_a_message(world: PaymentWorld) -> None:
    customer, invoices = make_debtor(world, [25_000])
    portal = world.portal(customer)
    for amount, message in [
        ("5.00", "below the minimum"),
        ("300.00", "more than what remains"),
        ("abc", "Enter the amount to pay"),
        ("-3", "Enter the amount to pay"),
    ]:
        response = portal.post(
            "/pay/card", data={"invoice": [str(invoices[0].id)], "amount": amount}
        )
        assert response.status_code == 400
        assert message in response.text
    with world.session() as db:
        assert (
            db.scalar(
                select(func.count())
                .select_from(PaymentRequest)
                .where(PaymentRequest.customer_id == customer.id)
            )
            == 0
        )


def test_a_declined_card_shows_why_and_the_same_payment_can_be_tried_again(
    world: PaymentWorld,
) -> None:
    customer, invoices = make_debtor(world, [6_000])
    portal = world.portal(customer)
    request_id = start_card_payment(portal, invoices)
    portal.get(f"/pay/card/{request_id}")
    intent_id = request_row(world, request_id).provider_reference
    assert intent_id
    with pytest.raises(stripe.CardError):
        pay_as_stripe_js(world, intent_id, "pm_card_chargeCustomerFail")
    page = portal.get(f"/pay/card/{request_id}")
    assert "declined" in page.text
    assert "Nothing was charged" in page.text
    assert 'id="card-form"' in page.text  # the form is there again, same PaymentIntent

    def failure_recorded() -> bool:
        with world.session() as db:
            return bool(
                db.scalar(
                    select(func.count())
                    .select_from(TimelineEvent)
                    .where(
                        TimelineEvent.customer_id == customer.id,
                        TimelineEvent.action == "payment.failed",
                    )
                )
            )

    wait_until(failure_recorded, "the payment_failed event")
    assert payments_of(world, customer) == []
    # Stripe takes a second confirmation of the same PaymentIntent (localstripe refuses
    # one after a decline): its success event is what the app then receives.
    assert world.post_event(succeeded_event(intent_id, request_id, 6_000)).status_code == 200
    assert len(payments_of(world, customer)) == 1
    assert request_row(world, request_id).provider_reference == intent_id


def test_a_refund_or_a_lost_chargeback_reopens_the_balance(world: PaymentWorld) -> None:
    customer, invoices = make_debtor(world, [10_000, 5_000])
    portal = world.portal(customer)
    request_id = start_card_payment(portal, invoices)
    intent_id = created_intent(world, portal, request_id)
    assert world.post_event(succeeded_event(intent_id, request_id, 15_000)).status_code == 200
    refund = {
        "id": f"evt_{uuid.uuid4().hex[:20]}",
        "type": "charge.refunded",
        "data": {
            "object": {
                "id": "ch_1",
                "object": "charge",
                "payment_intent": intent_id,
                "amount_refunded": 4_000,
                "refunds": {
                    "data": [
                        {
                            "id": f"re_{uuid.uuid4().hex[:10]}",
                            "amount": 4_000,
                            "status": "succeeded",
                        }
                    ]
                },
            }
        },
    }
    assert world.post_event(refund).status_code == 200
    assert (
        world.post_event({**refund, "id": f"evt_{uuid.uuid4().hex[:20]}"}).status_code == 200
    )  # same refund again
    first, second = invoice_rows(world, invoices)
    # The invoice due last reopens first.
    assert first.status is InvoiceStatus.PAID
    assert second.status is InvoiceStatus.OPEN
    assert second.remaining_minor == 4_000
    chargeback = {
        "id": f"evt_{uuid.uuid4().hex[:20]}",
        "type": "charge.dispute.closed",
        "data": {
            "object": {
                "id": f"dp_{uuid.uuid4().hex[:10]}",
                "object": "dispute",
                "payment_intent": intent_id,
                "amount": 11_000,
                "status": "lost",
            }
        },
    }
    assert world.post_event(chargeback).status_code == 200
    first, second = invoice_rows(world, invoices)
    assert first.remaining_minor == 10_000
    assert second.remaining_minor == 5_000
    (payment,) = payments_of(world, customer)
    assert payment.reversed_minor == 15_000
    assert payment.allocations == []
    with world.session() as db:
        actions = list(
            db.scalars(select(TimelineEvent.action).where(TimelineEvent.customer_id == customer.id))
        )
    assert actions.count("payment.refunded") == 1
    assert actions.count("payment.charged_back") == 1


def test_a_refund_arriving_before_its_payment_is_asked_again_later(world: PaymentWorld) -> None:
    customer, invoices = make_debtor(world, [3_000])
    portal = world.portal(customer)
    request_id = start_card_payment(portal, invoices)
    portal.get(f"/pay/card/{request_id}")
    intent_id = request_row(world, request_id).provider_reference
    refund = {
        "id": f"evt_{uuid.uuid4().hex[:20]}",
        "type": "charge.refunded",
        "data": {"object": {"id": "ch_2", "payment_intent": intent_id, "amount_refunded": 3_000}},
    }
    assert world.post_event(refund).status_code == 409  # Stripe will deliver it again
    assert world.post_event(succeeded_event(str(intent_id), request_id, 3_000)).status_code == 200
    assert world.post_event(refund).status_code == 200
    (invoice,) = invoice_rows(world, invoices)
    assert invoice.status is InvoiceStatus.OPEN
    assert invoice.remaining_minor == 3_000


def test_unknown_event_types_are_acknowledged_and_ignored(world: PaymentWorld) -> None:
    event = {
        "id": f"evt_{uuid.uuid4().hex[:20]}",
        "type": "customer.created",
        "data": {"object": {"id": "cus_1"}},
    }
    response = world.post_event(event)
    assert response.status_code == 200
    assert response.json()["outcome"] == "ignored"
    with world.session() as db:
        stored = db.scalars(select(WebhookEvent).where(WebhookEvent.event_id == event["id"])).one()
        assert stored.outcome == "ignored"


def test_allocation_sums_hold_after_all_of_the_above(world: PaymentWorld) -> None:
    with world.session() as db:
        for payment in db.scalars(select(Payment)):
            allocated = sum(a.amount_minor for a in payment.allocations)
            assert allocated + payment.credit_minor + payment.reversed_minor == payment.amount_minor
            assert payment.credit_minor >= 0
            assert allocated >= 0
        for invoice in db.scalars(select(Invoice)):
            total = db.scalar(
                select(func.coalesce(func.sum(PaymentAllocation.amount_minor), 0)).where(
                    PaymentAllocation.invoice_id == invoice.id
                )
            )
            assert total == invoice.paid_minor <= invoice.amount_minor


def test_one_payment_intent_under_two_event_ids_is_recorded_once(world: PaymentWorld) -> None:
    customer, invoices = make_debtor(world, [7_700])
    portal = world.portal(customer)
    request_id = start_card_payment(portal, invoices)
    intent_id = created_intent(world, portal, request_id)
    first = world.post_event(succeeded_event(intent_id, request_id, 7_700))
    second = world.post_event(succeeded_event(intent_id, request_id, 7_700))
    assert first.json()["outcome"] == "applied"
    assert second.status_code == 200
    assert second.json()["outcome"] == "duplicate"
    assert len(payments_of(world, customer)) == 1
