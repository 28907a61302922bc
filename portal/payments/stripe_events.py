"""Applying Stripe's webhook events, each exactly once.

``apply_event`` runs inside the caller's transaction: it stores the event id under a
unique constraint first, so a replay (or a concurrent twin) either sees the stored id or
fails on the constraint and changes nothing. Events that refer to a payment not recorded
yet (a refund delivered before the success) raise ``NotYetApplicable``: the endpoint
answers with an error so Stripe delivers the event again later.

Only what Relance created is trusted, whatever the signature: a PaymentIntent is ours when
its id is the one stored on a card payment request (Relance stores it when it creates the
intent), and its amount and currency must be the request's. Anything else is logged and
stored as ``unmatched`` or ``mismatch``, and changes nothing. Fields are read through
``stripe_fields``: a body of another shape raises ``MalformedEvent`` (400, nothing stored).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal import clock
from portal.customers.models import Customer
from portal.payments.models import (
    Payment,
    PaymentMethod,
    PaymentRequest,
    PaymentRequestStatus,
    ReversalKind,
    WebhookEvent,
)
from portal.payments.service import (
    Payer,
    find_payment,
    record_payment,
    reverse_payment,
)
from portal.payments.stripe_claims import (
    APPLIED,
    PROVIDER,
    claim_and_confirm,
    claim_event_id,
)
from portal.payments.stripe_fields import (
    MAX_ID_LENGTH,
    MalformedEvent,
    amount,
    event_head,
    event_object,
    ident,
    listing,
    mapping,
    optional_ident,
    text,
    timestamp,
)
from portal.timeline.models import Actor
from portal.timeline.service import record

__all__ = ["MalformedEvent", "NotYetApplicable", "Outcome", "apply_event"]

log = logging.getLogger(__name__)


IGNORED = "ignored"  # an event type Relance does not act on
UNMATCHED = "unmatched"  # about an object Relance did not create
DUPLICATE = "duplicate"  # this event id was applied before
MISMATCH = "mismatch"  # our PaymentIntent, but not the amount or currency Relance asked for


class NotYetApplicable(Exception):
    """The event needs something that has not arrived yet; ask Stripe to retry."""


@dataclass(frozen=True)
class Outcome:
    result: str
    payment_id: int | None = None  # a payment recorded by this event (gets a receipt)


# Handlers that claim the event id themselves, in the statement that reads what they need.
SELF_CLAIMING = {"payment_intent.succeeded"}


def apply_event(session: Session, event: dict[str, Any]) -> Outcome:
    """Apply one verified event; the caller commits (and treats IntegrityError as a replay)."""
    event_id, event_type = event_head(event)
    handler = HANDLERS.get(event_type)
    obj = event_object(event) if handler else {}
    if event_type not in SELF_CLAIMING and not claim_event_id(
        session, event_id, event_type, clock.now()
    ):
        return Outcome(DUPLICATE)
    outcome = handler(session, obj, event_id) if handler else Outcome(IGNORED)
    if outcome.result == DUPLICATE:
        return outcome
    if outcome.result != APPLIED:
        session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.provider == PROVIDER, WebhookEvent.event_id == event_id)
            .values(outcome=outcome.result)
        )
    return outcome


def _request_for_intent(
    session: Session, intent_id: str, event_type: str
) -> tuple[PaymentRequest, Customer] | None:
    """The card request whose stored PaymentIntent this is, with its customer (one query).

    The intent's metadata is never used to find a request: anyone able to create a
    PaymentIntent on the account could write any request id there."""
    row = session.execute(
        select(PaymentRequest, Customer)
        .join(Customer, Customer.id == PaymentRequest.customer_id)
        .where(
            PaymentRequest.provider_reference == intent_id,
            PaymentRequest.method == PaymentMethod.CARD,
        )
    ).first()
    if row is None:
        log.warning("ignored %s for %r: not a PaymentIntent Relance created", event_type, intent_id)
        return None
    return row[0], row[1]


def _customer(session: Session, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id)
    assert customer is not None
    return customer


def _intent_succeeded(session: Session, intent: dict[str, Any], event_id: str) -> Outcome:
    intent_id = ident(intent, "id")
    received = amount(intent, "amount_received", required=False)
    paid = received if received is not None else amount(intent, "amount")
    if paid is None:  # amount() raised already: a required amount is never None
        raise MalformedEvent("amount is missing")
    currency = text(intent, "currency", 3).upper()
    received_at = timestamp(intent, "created")
    claimed, confirmed = claim_and_confirm(
        session, event_id, intent_id, paid, currency, clock.now()
    )
    if not claimed:
        return Outcome(DUPLICATE)
    if confirmed is None:
        found = _request_for_intent(session, intent_id, "payment_intent.succeeded")
        if found is None:
            return Outcome(UNMATCHED)
        request = found[0]
        # Relance created this intent for the request's amount: another amount is not
        # what the debtor chose to pay, whatever the event says.
        log.error(
            "ignored payment_intent.succeeded for %r: %s %r, the request asked %s %s",
            intent_id,
            paid,
            currency,
            request.amount_minor,
            request.currency,
        )
        return Outcome(MISMATCH)
    # The same PaymentIntent under another event id is refused by the unique
    # (provider, provider_reference) of payments: the caller treats it as a replay (and
    # the transaction, confirmation included, rolls back).
    payment = record_payment(
        session,
        Payer(confirmed.customer_id, confirmed.company_id),
        amount_minor=paid,
        currency=currency,
        method=PaymentMethod.CARD,
        provider=PROVIDER,
        provider_reference=intent_id,
        received_at=received_at,
        invoice_ids=sorted(confirmed.invoice_ids),
        actor=Actor.PROVIDER,
        actor_id=event_id,
        payment_request_id=confirmed.request_id,
        receipt=True,
        locked=confirmed.locked,
    )
    return Outcome(APPLIED, payment.id)


def _intent_failed(session: Session, intent: dict[str, Any], event_id: str) -> Outcome:
    intent_id = ident(intent, "id")
    error = mapping(intent, "last_payment_error")
    code = text(error, "decline_code") or text(error, "code") or "failed"
    found = _request_for_intent(session, intent_id, "payment_intent.payment_failed")
    if found is None:
        return Outcome(UNMATCHED)
    request, customer = found
    if request.status is PaymentRequestStatus.OPEN:
        request.failure_code = code
    record(
        session,
        company_id=customer.company_id,
        customer_id=request.customer_id,
        actor=Actor.PROVIDER,
        actor_id=event_id,
        action="payment.failed",
        subject_type="payment_request",
        subject_id=request.id,
        details={
            "reference": intent_id,
            "code": code,
            "amount_minor": request.amount_minor,
            "currency": request.currency,
        },
    )
    return Outcome(APPLIED)


def _intent_processing(session: Session, intent: dict[str, Any], event_id: str) -> Outcome:
    intent_id = ident(intent, "id")
    found = _request_for_intent(session, intent_id, "payment_intent.processing")
    if found is None:
        return Outcome(UNMATCHED)
    request, customer = found
    record(
        session,
        company_id=customer.company_id,
        customer_id=request.customer_id,
        actor=Actor.PROVIDER,
        actor_id=event_id,
        action="payment.processing",
        subject_type="payment_request",
        subject_id=request.id,
        details={"reference": intent_id},
    )
    return Outcome(APPLIED)


def _payment_of(session: Session, intent_id: str | None) -> Payment | None:
    if intent_id is None:
        return None
    payment = find_payment(session, PROVIDER, intent_id)
    if (
        payment is None
        and session.scalars(
            select(PaymentRequest.id).where(PaymentRequest.provider_reference == intent_id)
        ).first()
    ):
        # Ours, but its success has not been applied yet.
        raise NotYetApplicable(intent_id)
    return payment


def _same_currency(obj: dict[str, Any], payment: Payment, what: str) -> bool:
    """A refund or dispute is in its payment's currency (when the event says which)."""
    currency = text(obj, "currency", 3).upper()
    if currency and currency != payment.currency:
        log.error(
            "ignored %s of payment %s: in %r, the payment is in %s",
            what,
            payment.id,
            currency,
            payment.currency,
        )
        return False
    return True


def _charge_refunded(session: Session, charge: dict[str, Any], event_id: str) -> Outcome:
    refunds = listing(mapping(charge, "refunds"), "data")
    listed = [
        (ident(refund, "id"), amount(refund, "amount") or 0)
        for refund in refunds
        if text(refund, "status") in ("succeeded", "")
    ]
    total = amount(charge, "amount_refunded", required=False) or 0
    charge_id = optional_ident(charge, "id")
    payment = _payment_of(session, optional_ident(charge, "payment_intent"))
    if payment is None:
        return Outcome(UNMATCHED)
    if not _same_currency(charge, payment, "charge.refunded"):
        return Outcome(MISMATCH)
    if listed:
        for refund_id, refunded in listed:
            if refunded > 0:
                reverse_payment(
                    session,
                    payment,
                    kind=ReversalKind.REFUND,
                    provider_reference=refund_id,
                    amount_minor=refunded,
                    actor_id=event_id,
                )
    else:
        # No refund list: the cumulative amount refunded says what is new.
        new = total - payment.reversed_minor
        if new > 0:
            reverse_payment(
                session,
                payment,
                kind=ReversalKind.REFUND,
                provider_reference=f"{charge_id}:{total}"[:MAX_ID_LENGTH],
                amount_minor=new,
                actor_id=event_id,
            )
    return Outcome(APPLIED)


def _dispute_event(session: Session, dispute: dict[str, Any], event_id: str) -> Outcome:
    dispute_id = ident(dispute, "id")
    status = text(dispute, "status")
    disputed = amount(dispute, "amount", required=status == "lost")
    reason = text(dispute, "reason")
    payment = _payment_of(session, optional_ident(dispute, "payment_intent"))
    if payment is None:
        return Outcome(UNMATCHED)
    if not _same_currency(dispute, payment, "charge.dispute"):
        return Outcome(MISMATCH)
    if status == "lost":
        if disputed:
            reverse_payment(
                session,
                payment,
                kind=ReversalKind.CHARGEBACK,
                provider_reference=dispute_id,
                amount_minor=disputed,
                actor_id=event_id,
            )
        return Outcome(APPLIED)
    record(
        session,
        company_id=_customer(session, payment.customer_id).company_id,
        customer_id=payment.customer_id,
        actor=Actor.PROVIDER,
        actor_id=event_id,
        action="payment.chargeback_won" if status == "won" else "payment.chargeback_opened",
        subject_type="payment",
        subject_id=payment.id,
        details={
            "reference": dispute_id,
            "status": status,
            "amount_minor": disputed,
            "reason": reason,
        },
    )
    return Outcome(APPLIED)


HANDLERS = {
    "payment_intent.succeeded": _intent_succeeded,
    "payment_intent.payment_failed": _intent_failed,
    "payment_intent.processing": _intent_processing,
    "charge.refunded": _charge_refunded,
    "charge.dispute.created": _dispute_event,
    "charge.dispute.closed": _dispute_event,
}
