"""Turning a bank line into payments, through the payment service: a payment request's
transfer confirmed (``payments.requests.confirm_transfer``), or a transfer recorded and
allocated (``payments.service.record_payment``: the chosen invoices first, then the
customer's oldest, the rest as credit). A receipt is owed; the timeline says which line.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy.orm import Session

from portal import clock
from portal.bank.models import BankLine, BankLinePayment, LineStatus
from portal.payments import requests as payment_requests
from portal.payments.models import PaymentMethod, PaymentRequest
from portal.payments.service import Payer, record_payment
from portal.timeline.models import Actor
from portal.timeline.service import record

SYSTEM_ACTOR = "bank"


def _received_at(line: BankLine) -> dt.datetime:
    return dt.datetime.combine(line.booked_on, dt.time(12), dt.UTC)


def _link(session: Session, line: BankLine, payment_id: int, amount_minor: int) -> None:
    session.add(BankLinePayment(line_id=line.id, payment_id=payment_id, amount_minor=amount_minor))


def _event(
    session: Session, line: BankLine, customer_id: int, rule: str, actor: Actor, actor_id: str | None, **details: object
) -> None:
    record(
        session,
        company_id=line.company_id,
        customer_id=customer_id,
        actor=actor,
        actor_id=actor_id,
        action="bank_line.matched",
        subject_type="bank_line",
        subject_id=line.id,
        details={
            "rule": rule,
            "amount_minor": line.amount_minor,
            "currency": line.currency,
            "booked_on": line.booked_on.isoformat(),
            "entry_reference": line.entry_reference,
            **details,
        },
    )


def _done(line: BankLine, rule: str, customer_id: int | None, user_id: int | None) -> None:
    line.status = LineStatus.MATCHED
    line.matched_by = rule
    line.customer_id = customer_id
    line.decided_by_user_id = user_id
    line.decided_at = clock.now()


def confirm_request(
    session: Session,
    line: BankLine,
    request: PaymentRequest,
    rule: str,
    *,
    today: dt.date,
    actor: Actor = Actor.SYSTEM,
    user_id: int | None = None,
) -> int:
    """The line is the money of ``request``: confirmed with the line's amount."""
    actor_id = str(user_id) if user_id is not None else SYSTEM_ACTOR
    payment = payment_requests.confirm_transfer(
        session,
        request,
        amount_minor=line.amount_minor,
        received_on=line.booked_on,
        today=max(today, line.booked_on),
        actor=actor,
        actor_id=actor_id,
    )
    _link(session, line, payment.id, line.amount_minor)
    _done(line, rule, request.customer_id, user_id)
    _event(session, line, request.customer_id, rule, actor, actor_id, payment=payment.id)
    return payment.id


def link_existing(session: Session, line: BankLine, payment_id: int, customer_id: int, rule: str) -> None:
    """The transfer was confirmed by hand before the statement came: nothing new to record."""
    _link(session, line, payment_id, line.amount_minor)
    _done(line, rule, customer_id, None)
    _event(session, line, customer_id, rule, Actor.SYSTEM, SYSTEM_ACTOR, payment=payment_id, already_recorded=True)


def record_parts(
    session: Session,
    line: BankLine,
    parts: Sequence[tuple[int, int, Sequence[int]]],
    rule: str,
    *,
    actor: Actor = Actor.SYSTEM,
    user_id: int | None = None,
) -> list[int]:
    """Record ``(customer id, amount, invoice ids)`` parts of the line as payments."""
    actor_id = str(user_id) if user_id is not None else SYSTEM_ACTOR
    payments = []
    for number, (customer_id, amount_minor, invoice_ids) in enumerate(parts, start=1):
        reference = f"line:{line.id}" if len(parts) == 1 else f"line:{line.id}:{number}"
        result = record_payment(
            session,
            Payer(customer_id, line.company_id),
            amount_minor=amount_minor,
            currency=line.currency,
            method=PaymentMethod.TRANSFER,
            provider="bank",
            provider_reference=reference,
            received_at=_received_at(line),
            invoice_ids=invoice_ids,
            actor=actor,
            actor_id=actor_id,
            receipt=True,
        )
        _link(session, line, result.id, amount_minor)
        _event(session, line, customer_id, rule, actor, actor_id, payment=result.id, part_minor=amount_minor)
        payments.append(result.id)
    customers = {customer_id for customer_id, _a, _i in parts}
    _done(line, rule, customers.pop() if len(customers) == 1 else None, user_id)
    return payments
