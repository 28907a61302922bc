"""What the localstripe harness proves: the official SDK against localstripe on loopback.

Besides the paths Relance relies on (customers, PaymentIntents, test cards, 3-D Secure,
declines, signed webhooks), some tests pin down where localstripe differs from Stripe,
so a change of behaviour in a new localstripe version shows up here first.
See docs/stripe-testing.md.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import stripe

from tests.stripe_server import (
    LocalStripe,
    localstripe_server,
    stripe_client,
    webhook_receiver,
)

CARD_VISA = "4242424242424242"
CARD_3DS_REQUIRED = "4000002760003184"
CARD_DECLINED = "4000000000000002"  # declined on attach only, in localstripe
CARD_CHARGE_DECLINED = "4000000000000341"  # attaches, then every charge is declined


@pytest.fixture(scope="module")
def localstripe() -> Iterator[LocalStripe]:
    with localstripe_server() as server:
        yield server


@pytest.fixture
def stripe_api(localstripe: LocalStripe) -> stripe.StripeClient:
    return stripe_client(localstripe)


def card(client: stripe.StripeClient, number: str) -> stripe.PaymentMethod:
    return client.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        }
    )


def intent(client: stripe.StripeClient, **params: object) -> stripe.PaymentIntent:
    return client.v1.payment_intents.create(params={"amount": 4200, "currency": "eur", **params})


def test_server_is_on_loopback_and_the_sdk_is_pointed_at_it(localstripe: LocalStripe) -> None:
    assert localstripe.api_base.startswith("http://127.0.0.1:")

    customers = stripe_client(localstripe).v1.customers.list(params={"limit": 1})

    assert customers.object == "list"


def test_customer_round_trip(stripe_api: stripe.StripeClient) -> None:
    customer = stripe_api.v1.customers.create(
        params={
            "email": "compta@exemple.fr",
            "name": "Société Exemple",
            "metadata": {"relance_customer": "42"},
        }
    )

    assert customer.id.startswith("cus_")
    fetched = stripe_api.v1.customers.retrieve(customer.id)
    assert (fetched.email, fetched.name) == ("compta@exemple.fr", "Société Exemple")
    assert fetched.metadata.to_dict() == {"relance_customer": "42"}


def test_payment_intent_keeps_amount_currency_metadata_and_customer(
    stripe_api: stripe.StripeClient,
) -> None:
    customer = stripe_api.v1.customers.create(params={"email": "payeur@exemple.fr"})

    created = intent(
        stripe_api,
        customer=customer.id,
        metadata={"invoice": "F-2026-0042", "reminder": "r-7"},
        payment_method_types=["card"],
    )

    assert created.id.startswith("pi_")
    assert created.status == "requires_payment_method"
    assert created.client_secret.startswith(created.id + "_secret_")
    fetched = stripe_api.v1.payment_intents.retrieve(created.id)
    assert (fetched.amount, fetched.currency, fetched.customer) == (4200, "eur", customer.id)
    assert fetched.metadata.to_dict() == {"invoice": "F-2026-0042", "reminder": "r-7"}


def test_localstripe_ignores_idempotency_keys(stripe_api: stripe.StripeClient) -> None:
    """Real Stripe answers a repeated create with the same Idempotency-Key with the first
    PaymentIntent; localstripe creates a second one. Retry-safety of our code cannot be
    tested against localstripe: only that we send the key."""
    key = f"relance-test-{uuid.uuid4()}"
    params = {"amount": 4200, "currency": "eur", "metadata": {"invoice": "F-1"}}

    first = stripe_api.v1.payment_intents.create(params=params, options={"idempotency_key": key})
    again = stripe_api.v1.payment_intents.create(params=params, options={"idempotency_key": key})

    assert first.id != again.id  # Stripe: first.id == again.id


@pytest.mark.parametrize("payment_method", ["pm_card_visa", "card number 4242424242424242"])
def test_visa_payment_succeeds(stripe_api: stripe.StripeClient, payment_method: str) -> None:
    if payment_method.startswith("card number"):
        payment_method = card(stripe_api, CARD_VISA).id
    created = intent(stripe_api, payment_method=payment_method, metadata={"invoice": "F-7"})
    assert created.status == "requires_confirmation"

    confirmed = stripe_api.v1.payment_intents.confirm(created.id)

    assert confirmed.status == "succeeded"
    assert stripe_api.v1.payment_intents.retrieve(created.id).status == "succeeded"


def test_create_with_confirm_true_succeeds_in_one_call(stripe_api: stripe.StripeClient) -> None:
    created = intent(stripe_api, payment_method="pm_card_visa", confirm=True)

    assert created.status == "succeeded"


def test_confirm_cannot_take_the_payment_method_but_update_can(
    stripe_api: stripe.StripeClient,
) -> None:
    """Stripe's usual ``confirm(id, payment_method=...)`` is a 500 "Not implemented"."""
    created = intent(stripe_api)

    with pytest.raises(stripe.APIError, match="Not implemented"):
        stripe_api.v1.payment_intents.confirm(created.id, params={"payment_method": "pm_card_visa"})

    stripe_api.v1.payment_intents.update(created.id, params={"payment_method": "pm_card_visa"})
    assert stripe_api.v1.payment_intents.confirm(created.id).status == "succeeded"


@pytest.mark.parametrize(
    ("success", "status", "error_code"),
    [
        (True, "succeeded", None),
        (False, "requires_payment_method", "payment_intent_authentication_failure"),
    ],
)
def test_3ds_card_requires_action_until_authenticated(
    stripe_api: stripe.StripeClient,
    localstripe: LocalStripe,
    success: bool,
    status: str,
    error_code: str | None,
) -> None:
    created = intent(stripe_api, payment_method=card(stripe_api, CARD_3DS_REQUIRED).id)

    confirmed = stripe_api.v1.payment_intents.confirm(created.id)

    assert confirmed.status == "requires_action"
    assert confirmed.next_action is not None
    assert confirmed.next_action.type == "use_stripe_sdk"

    localstripe.authenticate(created.id, created.client_secret, success=success)

    after = stripe_api.v1.payment_intents.retrieve(created.id)
    assert after.status == status
    code = after.last_payment_error.code if after.last_payment_error else None
    assert code == error_code


@pytest.mark.parametrize("payment_method", ["pm_card_chargeCustomerFail", CARD_CHARGE_DECLINED])
def test_charge_decline_raises_card_error_and_needs_a_new_method(
    stripe_api: stripe.StripeClient, payment_method: str
) -> None:
    if payment_method == CARD_CHARGE_DECLINED:
        payment_method = card(stripe_api, CARD_CHARGE_DECLINED).id
    created = intent(stripe_api, payment_method=payment_method)

    with pytest.raises(stripe.CardError) as declined:
        stripe_api.v1.payment_intents.confirm(created.id)

    assert declined.value.code == "card_declined"
    assert declined.value.http_status == 402
    after = stripe_api.v1.payment_intents.retrieve(created.id)
    assert after.status == "requires_payment_method"
    assert after.last_payment_error is not None
    assert after.last_payment_error.code == "card_declined"


def test_generic_decline_card_only_declines_when_attached(
    stripe_api: stripe.StripeClient,
) -> None:
    """4000000000000002 (and ``pm_card_visa_chargeDeclined``) decline in Stripe on attach
    and on charge; localstripe declines the attach but lets the charge succeed. Use
    4000000000000341 / ``pm_card_chargeCustomerFail`` for a declined payment."""
    customer = stripe_api.v1.customers.create(params={"email": "refus@exemple.fr"})
    declined_card = card(stripe_api, CARD_DECLINED)

    with pytest.raises(stripe.CardError) as declined:
        stripe_api.v1.payment_methods.attach(declined_card.id, params={"customer": customer.id})
    assert declined.value.code == "card_declined"

    charged = intent(stripe_api, payment_method=declined_card.id, confirm=True)
    assert charged.status == "succeeded"  # Stripe: CardError, requires_payment_method


@pytest.mark.parametrize(
    "param",
    [
        {"automatic_payment_methods": {"enabled": True}},
        {"description": "Facture F-1"},
        {"receipt_email": "payeur@exemple.fr"},
        {"statement_descriptor": "RELANCE F-1"},
        {"setup_future_usage": "off_session"},
    ],
    ids=lambda param: next(iter(param)),
)
def test_payment_intent_params_localstripe_rejects(
    stripe_api: stripe.StripeClient, param: dict[str, object]
) -> None:
    name = next(iter(param))

    with pytest.raises(stripe.InvalidRequestError, match=f"Unexpected {name}"):
        intent(stripe_api, **param)


def test_checkout_sessions_are_not_supported(stripe_api: stripe.StripeClient) -> None:
    with pytest.raises(stripe.APIError) as missing:
        stripe_api.v1.checkout.sessions.create(
            params={
                "mode": "payment",
                "success_url": "http://127.0.0.1/paid",
                "line_items": [
                    {
                        "quantity": 1,
                        "price_data": {
                            "currency": "eur",
                            "unit_amount": 4200,
                            "product_data": {"name": "Facture F-1"},
                        },
                    }
                ],
            }
        )

    assert missing.value.http_status == 404


def test_events_api_lists_the_payment_intent_events(stripe_api: stripe.StripeClient) -> None:
    paid = intent(stripe_api, payment_method="pm_card_visa", confirm=True)

    events = stripe_api.v1.events.list(params={"type": "payment_intent.succeeded", "limit": 100})
    ids = [event.data.object.id for event in events.auto_paging_iter()]

    assert paid.id in ids


def test_signed_webhooks_verify_with_the_sdk(
    localstripe: LocalStripe, stripe_api: stripe.StripeClient
) -> None:
    secret = f"whsec_{uuid.uuid4().hex}"
    name = f"test-{uuid.uuid4().hex[:8]}"
    with webhook_receiver() as receiver:
        localstripe.configure_webhook(receiver.url, secret, name=name)
        try:
            paid = intent(stripe_api, payment_method="pm_card_visa", metadata={"invoice": "F-9"})
            stripe_api.v1.payment_intents.confirm(paid.id)
            failed = intent(stripe_api, payment_method="pm_card_chargeCustomerFail")
            with pytest.raises(stripe.CardError):
                stripe_api.v1.payment_intents.confirm(failed.id)

            success = receiver.wait_for_event("payment_intent.succeeded", paid.id)
            failure = receiver.wait_for_event("payment_intent.payment_failed", failed.id)
        finally:
            localstripe.disable_webhook(name)

    assert success.signature is not None
    assert success.signature.startswith("t=")
    assert success.headers["content-type"].startswith("application/json")

    event = stripe.Webhook.construct_event(success.body, success.signature, secret)
    assert event.type == "payment_intent.succeeded"
    assert event.data.object.id == paid.id
    assert event.data.object.status == "succeeded"
    assert event.data.object.metadata.to_dict() == {"invoice": "F-9"}

    failure_event = stripe_api.construct_event(failure.body, failure.signature, secret)
    assert failure_event.type == "payment_intent.payment_failed"
    assert failure_event.data.object.last_payment_error.code == "card_declined"

    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(success.body, success.signature, "whsec_wrong")

    tampered = json.loads(success.body)
    tampered["data"]["object"]["amount"] = 1
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(json.dumps(tampered), success.signature, secret)


def test_webhook_event_filter(localstripe: LocalStripe, stripe_api: stripe.StripeClient) -> None:
    secret = f"whsec_{uuid.uuid4().hex}"
    name = f"test-{uuid.uuid4().hex[:8]}"
    with webhook_receiver() as receiver:
        localstripe.configure_webhook(
            receiver.url, secret, events=["payment_intent.payment_failed"], name=name
        )
        try:
            paid = intent(stripe_api, payment_method="pm_card_visa", confirm=True)
            failed = intent(stripe_api, payment_method="pm_card_chargeCustomerFail")
            with pytest.raises(stripe.CardError):
                stripe_api.v1.payment_intents.confirm(failed.id)

            receiver.wait_for_event("payment_intent.payment_failed", failed.id)
            # localstripe sends each event one second after creating it: the success was
            # created first, so it would be due (and normally here) by now if not filtered.
        finally:
            localstripe.disable_webhook(name)

    types = {(d.json()["type"], d.json()["data"]["object"]["id"]) for d in receiver.deliveries}
    assert ("payment_intent.succeeded", paid.id) not in types
    assert {t for t, _ in types} == {"payment_intent.payment_failed"}
