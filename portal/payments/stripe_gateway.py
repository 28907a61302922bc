"""Talking to Stripe: PaymentIntents for card payments, webhook signature checks.

The official SDK through a ``StripeClient`` built from settings (its base address too, so
tests point it at a local fake of Stripe). Every create call carries an idempotency key.
Provider failures become ``GatewayUnavailable`` / ``GatewayRefused``; nothing else leaks.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import requests

from portal.payments.models import PaymentRequest
from portal.settings import StripeSettings


class GatewayUnavailable(Exception):
    """Stripe could not be reached or answered with a server error: nothing was charged."""


class GatewayRefused(Exception):
    """Stripe refused the request (invalid parameters, authentication...)."""


class InvalidWebhook(Exception):
    """A webhook whose signature, timestamp or body does not check out."""


@dataclass(frozen=True)
class IntentState:
    """What the portal needs to know of a PaymentIntent."""

    id: str
    status: str  # Stripe's: requires_payment_method, processing, succeeded, canceled...
    client_secret: str
    amount_minor: int
    currency: str
    failure_code: str | None


def idempotency_key(request: PaymentRequest) -> str:
    """Derived from what is paid: the same request and attempt always give the same key, so
    a double click, a refresh or the back button gets Stripe's first PaymentIntent back."""
    what = "|".join(
        [
            str(request.customer_id),
            ",".join(str(i) for i in sorted(request.invoice_ids)),
            str(request.amount_minor),
            request.currency,
            str(request.id),
            str(request.attempt),
        ]
    )
    digest = hashlib.sha256(what.encode()).hexdigest()[:32]
    return f"relance-pr{request.id}-a{request.attempt}-{digest}"


def _state(intent: Any) -> IntentState:
    error = getattr(intent, "last_payment_error", None)
    code = None
    if error is not None:
        code = getattr(error, "decline_code", None) or getattr(error, "code", None)
    return IntentState(
        id=intent.id,
        status=intent.status,
        client_secret=intent.client_secret,
        amount_minor=int(intent.amount),
        currency=str(intent.currency).upper(),
        failure_code=code,
    )


class StripeGateway:
    """Built only when card payments are set up, so the SDK (about 13 MB) loads with it."""

    def __init__(self, settings: StripeSettings) -> None:
        import stripe

        self.settings = settings
        http = requests.Session()
        if settings.api_base:
            # A local fake of Stripe: never through a proxy from the environment.
            http.trust_env = False
        options: dict[str, Any] = {
            "http_client": stripe.RequestsClient(session=http, timeout=settings.timeout_seconds),
            # Retries are safe (idempotency keys) and ride out brief network trouble.
            "max_network_retries": 0 if settings.api_base else 2,
        }
        if settings.api_base:
            base = settings.api_base
            options["base_addresses"] = {"api": base, "connect": base, "files": base}
        self.client = stripe.StripeClient(settings.secret_key, **options)

    def create_intent(self, request: PaymentRequest, *, customer_reference: str) -> IntentState:
        params: dict[str, Any] = {
            "amount": request.amount_minor,
            "currency": request.currency.lower(),
            "metadata": {
                "payment_request": str(request.id),
                "customer": customer_reference,
                "attempt": str(request.attempt),
            },
        }
        if self.settings.automatic_payment_methods:
            params["automatic_payment_methods"] = {"enabled": True}
        else:
            params["payment_method_types"] = ["card"]
        return self._call(
            lambda: self.client.v1.payment_intents.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key(request)},
            )
        )

    def retrieve_intent(self, intent_id: str) -> IntentState:
        return self._call(lambda: self.client.v1.payment_intents.retrieve(intent_id))

    def _call(self, call: Any) -> IntentState:
        import stripe

        try:
            return _state(call())
        except (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError) as exc:
            raise GatewayUnavailable(str(exc)) from exc
        except stripe.StripeError as exc:
            raise GatewayRefused(str(exc)) from exc

    def verify_webhook(self, payload: bytes, signature: str | None) -> dict[str, Any]:
        """The event as a plain dict, once its signature and timestamp check out."""
        if not signature:
            raise InvalidWebhook("no Stripe-Signature header")
        import stripe

        try:
            stripe.WebhookSignature.verify_header(
                payload.decode("utf-8"),
                signature,
                self.settings.webhook_secret,
                self.settings.webhook_tolerance_seconds,
            )
        except (stripe.SignatureVerificationError, UnicodeDecodeError) as exc:
            raise InvalidWebhook(str(exc)) from exc
        try:
            event = json.loads(payload)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
            raise InvalidWebhook("body is not JSON") from exc
        if not isinstance(event, dict) or not isinstance(event.get("id"), str):
            raise InvalidWebhook("not an event")
        return event
