"""Card payment requests: attempts, their PaymentIntent, and what the debtor is shown."""

from __future__ import annotations

import enum

from sqlalchemy.orm import Session

from portal.payments.models import PaymentRequest, PaymentRequestStatus
from portal.payments.stripe_gateway import IntentState


class CardState(enum.StrEnum):
    """What the return page says."""

    PAID = "paid"  # the payment is recorded (the webhook was applied)
    PROCESSING = "processing"  # Stripe accepted it; waiting for the outcome or the webhook
    FAILED = "failed"  # declined or abandoned: try again
    AWAITING = "awaiting"  # nothing submitted yet


# Stripe statuses after which the money is on its way; the webhook will record it.
_IN_FLIGHT = {"processing", "succeeded", "requires_capture"}


def state_of(request: PaymentRequest, intent: IntentState | None) -> CardState:
    if request.status is PaymentRequestStatus.CONFIRMED:
        return CardState.PAID
    if intent is None:
        return CardState.FAILED if request.failure_code else CardState.AWAITING
    if intent.status in _IN_FLIGHT:
        return CardState.PROCESSING
    if intent.status == "canceled" or intent.failure_code or request.failure_code:
        return CardState.FAILED
    return CardState.AWAITING


def attach_intent(session: Session, request: PaymentRequest, intent: IntentState) -> None:
    """Remember the attempt's PaymentIntent (the same one whatever the number of calls)."""
    if request.provider_reference == intent.id:
        return
    request.provider_reference = intent.id
    request.client_secret = intent.client_secret
    session.flush()


def new_attempt(session: Session, request: PaymentRequest) -> bool:
    """After a failure, start over with a new PaymentIntent (a new idempotency key).

    Only an open request whose current attempt failed or never got an intent moves on;
    returns whether it did, so a second click changes nothing more.
    """
    if request.status is not PaymentRequestStatus.OPEN:
        return False
    if request.provider_reference is None and request.failure_code is None:
        return False
    request.attempt += 1
    request.provider_reference = None
    request.client_secret = None
    request.failure_code = None
    session.flush()
    return True
