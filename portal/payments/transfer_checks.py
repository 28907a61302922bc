"""Confirming a declared bank transfer: the checks and what the timeline says, shared by
confirming one transfer (``payments.requests``) and a statement's many (``payments.bulk``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from portal.payments.models import PaymentMethod, PaymentRequestStatus


class PaymentRequestError(Exception):
    """A payment request cannot be made or changed as asked; ``key`` says why."""

    EMPTY_SELECTION = "empty_selection"
    UNKNOWN_INVOICE = "unknown_invoice"  # not open, not the customer's, or outside the link
    MIXED_CURRENCIES = "mixed_currencies"
    NOTHING_TO_PAY = "nothing_to_pay"
    NOT_DECLARABLE = "not_declarable"
    PAID_ON_IN_FUTURE = "paid_on_in_future"
    PAID_ON_TOO_OLD = "paid_on_too_old"
    AMOUNT_NOT_POSITIVE = "amount_not_positive"
    PARTIAL_NOT_ALLOWED = "partial_not_allowed"
    AMOUNT_BELOW_MINIMUM = "amount_below_minimum"
    AMOUNT_ABOVE_DUE = "amount_above_due"
    NOT_CONFIRMABLE = "not_confirmable"
    RECEIVED_IN_FUTURE = "received_in_future"

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def check_confirmable(
    method: PaymentMethod,
    status: PaymentRequestStatus,
    amount_minor: int,
    received_on: dt.date,
    today: dt.date,
) -> None:
    """Raise PaymentRequestError unless a transfer request in this state may be confirmed
    with this amount received on that day."""
    if method is not PaymentMethod.TRANSFER or status not in (
        PaymentRequestStatus.OPEN,
        PaymentRequestStatus.DECLARED,
    ):
        raise PaymentRequestError(PaymentRequestError.NOT_CONFIRMABLE)
    if amount_minor <= 0:
        raise PaymentRequestError(PaymentRequestError.AMOUNT_NOT_POSITIVE)
    if received_on > today:
        raise PaymentRequestError(PaymentRequestError.RECEIVED_IN_FUTURE)


def confirmed_details(
    amount_minor: int, currency: str, received_on: dt.date, reference: str, payment_id: int
) -> dict[str, object]:
    """What the transfer.confirmed timeline event says."""
    return {
        "amount_minor": amount_minor,
        "currency": currency,
        "received_on": received_on.isoformat(),
        "reference": reference,
        "payment": payment_id,
    }


def pending_until(
    invoice_id: int, still_declared: Iterable[tuple[Sequence[int], dt.date | None]]
) -> dt.date | None:
    """Until when an invoice stays "payment pending": the latest grace date of the
    declarations still open (``(invoice ids, grace until)``) that cover it; None if none."""
    covering = [
        grace for invoice_ids, grace in still_declared if invoice_id in invoice_ids and grace
    ]
    return max(covering) if covering else None
