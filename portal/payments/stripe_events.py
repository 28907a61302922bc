"""Applying Stripe's webhook events, each exactly once.

``apply_event`` runs inside the caller's transaction: it stores the event id under a
unique constraint first, so a replay (or a concurrent twin) either sees the stored id or
fails on the constraint and changes nothing. Events that refer to a payment not recorded
yet (a refund delivered before the success) raise ``NotYetApplicable``: the endpoint
answers with an error so Stripe delivers the event again later.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from portal import clock
from portal.customers.models import Customer
from portal.db import conflict_insert
from portal.payments.models import (
    Payment,
    PaymentMethod,
    PaymentRequest,
    PaymentRequestStatus,
    ReversalKind,
    WebhookEvent,
)
from portal.payments.service import find_payment, record_payment, reverse_payment
from portal.timeline.models import Actor
from portal.timeline.service import record

PROVIDER = "stripe"

APPLIED = "applied"
IGNORED = "ignored"  # an event type Relance does not act on
UNMATCHED = "unmatched"  # about an object Relance did not create
DUPLICATE = "duplicate"  # this event id was applied before


class NotYetApplicable(Exception):
    """The event needs something that has not arrived yet; ask Stripe to retry."""


@dataclass(frozen=True)
class Outcome:
    result: str
    payment_id: int | None = None  # a payment recorded by this event (gets a receipt)


_events = cast(Table, WebhookEvent.__table__)
_requests = cast(Table, PaymentRequest.__table__)
# Built once: Core statements executed with parameters skip the per-call construction.
_CLAIM = {
    dialect: conflict_insert(dialect, _events)
    .on_conflict_do_nothing(index_elements=["provider", "event_id"])
    .returning(_events.c.id)
    for dialect in ("postgresql", "sqlite")
}
_CONFIRM_REQUEST = (
    update(_requests)
    .where(_requests.c.id == bindparam("request"))
    .values(
        status=bindparam("status"),
        confirmed_at=bindparam("confirmed_at"),
        failure_code=bindparam("failure_code"),
    )
)


def _claim_event_id(session: Session, event_id: str, event_type: str) -> bool:
    """Store the event id; False if it was already there (a replay).

    One INSERT ... ON CONFLICT DO NOTHING: a concurrent twin waits on the unique index
    until the first commits, then inserts nothing and is treated as a replay.
    """
    claimed = session.scalar(
        _CLAIM[session.get_bind().dialect.name],
        {
            "provider": PROVIDER,
            "event_id": event_id,
            "event_type": event_type[:64],
            "outcome": APPLIED,
            "received_at": clock.now(),
        },
    )
    return claimed is not None


def apply_event(session: Session, event: dict[str, Any]) -> Outcome:
    """Apply one verified event; the caller commits (and treats IntegrityError as a replay)."""
    event_id = str(event["id"])
    event_type = str(event.get("type", ""))
    if not _claim_event_id(session, event_id, event_type):
        return Outcome(DUPLICATE)
    obj = (event.get("data") or {}).get("object") or {}
    handler = HANDLERS.get(event_type)
    outcome = handler(session, obj, event_id) if handler else Outcome(IGNORED)
    if outcome.result != APPLIED:
        session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.provider == PROVIDER, WebhookEvent.event_id == event_id)
            .values(outcome=outcome.result)
        )
    return outcome


def _metadata(obj: dict[str, Any]) -> dict[str, Any]:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, dict) else {}


def _request_for_intent(
    session: Session, intent: dict[str, Any]
) -> tuple[PaymentRequest, Customer] | None:
    """The card request a PaymentIntent pays, with its customer (one query)."""
    row = session.execute(
        select(PaymentRequest, Customer)
        .join(Customer, Customer.id == PaymentRequest.customer_id)
        .where(PaymentRequest.provider_reference == intent.get("id"))
    ).first()
    if row is not None:
        return row[0], row[1]
    # An earlier attempt's intent: the request it was made for is in its metadata.
    raw = str(_metadata(intent).get("payment_request", ""))
    if raw.isdigit():
        row = session.execute(
            select(PaymentRequest, Customer)
            .join(Customer, Customer.id == PaymentRequest.customer_id)
            .where(PaymentRequest.id == int(raw), PaymentRequest.method == PaymentMethod.CARD)
        ).first()
        if row is not None:
            return row[0], row[1]
    return None


def _customer(session: Session, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id)
    assert customer is not None
    return customer


def _intent_succeeded(session: Session, intent: dict[str, Any], event_id: str) -> Outcome:
    intent_id = str(intent.get("id", ""))
    found = _request_for_intent(session, intent)
    if found is None:
        return Outcome(UNMATCHED)
    request, customer = found
    # The same PaymentIntent under another event id is refused by the unique
    # (provider, provider_reference) of payments: the caller treats it as a replay.
    amount = int(intent.get("amount_received") or intent.get("amount") or 0)
    currency = str(intent.get("currency", "")).upper()
    if amount <= 0 or currency != request.currency:
        return Outcome(UNMATCHED)
    created = intent.get("created")
    received_at = (
        dt.datetime.fromtimestamp(int(created), dt.UTC) if isinstance(created, int) else None
    )
    payment = record_payment(
        session,
        customer,
        amount_minor=amount,
        currency=currency,
        method=PaymentMethod.CARD,
        provider=PROVIDER,
        provider_reference=intent_id,
        received_at=received_at,
        invoice_ids=sorted(request.invoice_ids),
        actor=Actor.PROVIDER,
        actor_id=event_id,
        payment_request_id=request.id,
        receipt=True,
    )
    session.execute(
        _CONFIRM_REQUEST,
        {
            "request": request.id,
            "status": PaymentRequestStatus.CONFIRMED,
            "confirmed_at": clock.now(),
            "failure_code": None,
        },
    )
    return Outcome(APPLIED, payment.id)


def _intent_failed(session: Session, intent: dict[str, Any], event_id: str) -> Outcome:
    found = _request_for_intent(session, intent)
    if found is None:
        return Outcome(UNMATCHED)
    request, customer = found
    error = intent.get("last_payment_error") or {}
    code = str(error.get("decline_code") or error.get("code") or "failed")[:64]
    current = request.provider_reference == intent.get("id")
    if current and request.status is PaymentRequestStatus.OPEN:
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
            "reference": intent.get("id"),
            "code": code,
            "amount_minor": request.amount_minor,
            "currency": request.currency,
        },
    )
    return Outcome(APPLIED)


def _intent_processing(session: Session, intent: dict[str, Any], event_id: str) -> Outcome:
    found = _request_for_intent(session, intent)
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
        details={"reference": intent.get("id")},
    )
    return Outcome(APPLIED)


def _payment_of(session: Session, intent_id: Any) -> Payment | None:
    if not isinstance(intent_id, str) or not intent_id:
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


def _charge_refunded(session: Session, charge: dict[str, Any], event_id: str) -> Outcome:
    payment = _payment_of(session, charge.get("payment_intent"))
    if payment is None:
        return Outcome(UNMATCHED)
    refunds = (charge.get("refunds") or {}).get("data") or []
    listed = [r for r in refunds if isinstance(r, dict) and r.get("status") in ("succeeded", None)]
    if listed:
        for refund in listed:
            reverse_payment(
                session,
                payment,
                kind=ReversalKind.REFUND,
                provider_reference=str(refund["id"]),
                amount_minor=int(refund.get("amount", 0)),
                actor_id=event_id,
            )
    else:
        # No refund list: the cumulative amount refunded says what is new.
        total = int(charge.get("amount_refunded") or 0)
        new = total - payment.reversed_minor
        if new > 0:
            reverse_payment(
                session,
                payment,
                kind=ReversalKind.REFUND,
                provider_reference=f"{charge.get('id')}:{total}",
                amount_minor=new,
                actor_id=event_id,
            )
    return Outcome(APPLIED)


def _dispute_event(session: Session, dispute: dict[str, Any], event_id: str) -> Outcome:
    payment = _payment_of(session, dispute.get("payment_intent"))
    if payment is None:
        return Outcome(UNMATCHED)
    status = str(dispute.get("status", ""))
    if status == "lost":
        reverse_payment(
            session,
            payment,
            kind=ReversalKind.CHARGEBACK,
            provider_reference=str(dispute.get("id")),
            amount_minor=int(dispute.get("amount") or 0),
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
            "reference": dispute.get("id"),
            "status": status,
            "amount_minor": dispute.get("amount"),
            "reason": dispute.get("reason"),
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
