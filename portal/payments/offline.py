"""Payments received outside Relance: a cheque, a transfer the bank import did not see, an
offset against what the company owes the customer. Recorded by a credit manager in the back
office (provider ``manual``) or by an import (provider ``import``), and allocated like card
and transfer payments through ``payments.service.record_payment``: the invoices chosen
first, then the oldest; the rest is the customer's credit.

Idempotent by reference: the same reference for the same customer and provider records
nothing new. References are stored as ``"<customer id>:<reference>"``, since a cheque
number is only unique within one customer's payments.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal import clock
from portal.changes import FieldErrors, Outcome, Problems
from portal.customers.models import Customer
from portal.i18n import gettext_ as _
from portal.invoices.editing import check_amount, check_currency
from portal.invoices.models import Invoice, InvoiceStatus
from portal.payments.models import Payment, PaymentMethod
from portal.payments.service import find_payment, record_payment
from portal.timeline.models import Actor

OFFLINE_METHODS = (
    PaymentMethod.CHEQUE,
    PaymentMethod.TRANSFER,
    PaymentMethod.OFFSET,
    PaymentMethod.OTHER,
)
REFERENCE_MAX = 100
# How far back a payment may be dated (older ones belong to the accounts, not reminders).
OLDEST_DAYS = 3 * 366

__all__ = [
    "OFFLINE_METHODS",
    "FieldErrors",
    "Outcome",
    "find_offline_payment",
    "offline_reference",
    "record_offline_payment",
]


def offline_reference(customer: Customer, reference: str) -> str:
    return f"{customer.id}:{reference.strip()}"


def find_offline_payment(
    session: Session, customer: Customer, reference: str, provider: str = "manual"
) -> Payment | None:
    return find_payment(session, provider, offline_reference(customer, reference))


def record_offline_payment(
    session: Session,
    customer: Customer,
    *,
    amount_minor: int,
    currency: str,
    method: PaymentMethod | str,
    reference: str,
    received_on: dt.date | None,
    invoice_ids: Sequence[int] = (),
    actor: Actor,
    actor_id: str | None = None,
    provider: str = "manual",
) -> tuple[Payment, Outcome]:
    """Record the payment once per (customer, provider, reference).

    ``Outcome.UNCHANGED`` when it was recorded already with the same amount and currency;
    the same reference with another amount is refused (``FieldErrors`` on ``reference``).
    Raises ``FieldErrors`` for bad input (fields ``amount``, ``currency``, ``method``,
    ``reference``, ``received_on``, ``invoice_ids``), before anything is written.
    """
    problems = Problems()
    check_amount(problems, amount_minor)
    code = check_currency(problems, currency)
    try:
        chosen_method = PaymentMethod(method)
    except ValueError:
        chosen_method = None
    if chosen_method not in OFFLINE_METHODS:
        problems.add("method", _("Choose how the payment was made."))
    reference = reference.strip()
    if not reference:
        problems.add("reference", _("Enter the reference: cheque number, transfer reference…"))
    elif len(reference) > REFERENCE_MAX:
        problems.add("reference", _("Keep it to %(max)d characters at most.", max=REFERENCE_MAX))
    today = clock.today_in(customer.timezone)
    if received_on is None:
        problems.add("received_on", _("Enter the date the payment was received."))
    elif received_on > today:
        problems.add("received_on", _("The date cannot be in the future."))
    elif (today - received_on).days > OLDEST_DAYS:
        problems.add("received_on", _("The date is too far in the past."))
    ids = sorted(set(invoice_ids))
    if ids:
        found = session.scalars(
            select(Invoice).where(Invoice.id.in_(ids), Invoice.customer_id == customer.id)
        ).all()
        if len(found) != len(ids) or any(
            i.status is not InvoiceStatus.OPEN or i.currency != code for i in found
        ):
            problems.add(
                "invoice_ids",
                _("Choose open invoices of this customer, in the payment's currency."),
            )
    problems.check()
    assert chosen_method is not None
    assert received_on is not None
    stored_reference = offline_reference(customer, reference)
    existing = find_payment(session, provider, stored_reference)
    if existing is not None:
        if existing.amount_minor != amount_minor or existing.currency != code:
            raise FieldErrors(
                {"reference": _("A payment with this reference is already recorded.")}
            )
        return existing, Outcome.UNCHANGED
    try:
        # A savepoint: a twin request that recorded the same reference first (a double
        # click, two people) makes this INSERT fail on the unique index, not the request.
        with session.begin_nested():
            result = record_payment(
                session,
                customer,
                amount_minor=amount_minor,
                currency=code,
                method=chosen_method,
                provider=provider,
                provider_reference=stored_reference,
                received_at=clock.midday_in(received_on, customer.timezone),
                invoice_ids=ids,
                actor=actor,
                actor_id=actor_id,
            )
    except IntegrityError:
        twin = find_payment(session, provider, stored_reference)
        if twin is None:
            raise
        return twin, Outcome.UNCHANGED
    payment = session.get(Payment, result.id)
    assert payment is not None
    return payment, Outcome.CREATED
