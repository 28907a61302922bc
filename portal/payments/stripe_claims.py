"""The statements a Stripe webhook runs first: claiming the event id and, for a
``payment_intent.succeeded``, confirming the card request it pays.

Claiming is ``INSERT ... ON CONFLICT DO NOTHING`` under the unique (provider, event_id):
a concurrent twin waits on the unique index until the first commits, then inserts nothing
and is treated as a replay. A request is confirmed only when it is the card request whose
stored PaymentIntent this is, for the amount and currency Relance asked for. On
PostgreSQL the claim, the confirmation and the lock of the customer's open invoices are
one statement (data-modifying CTEs: nothing is confirmed for a replay); on SQLite two.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, exists, select, true, update
from sqlalchemy.orm import Session

from portal.customers.models import Customer
from portal.db import conflict_insert
from portal.invoices.models import Invoice, InvoiceStatus
from portal.payments.models import PaymentMethod, PaymentRequest, PaymentRequestStatus, WebhookEvent
from portal.payments.service import OpenInvoice

PROVIDER = "stripe"
APPLIED = "applied"


@dataclass(frozen=True)
class Confirmed:
    """The card request a succeeded PaymentIntent paid, now confirmed."""

    request_id: int
    customer_id: int
    company_id: int
    invoice_ids: list[int]
    # The customer's open invoices in the currency, locked (None: not read yet).
    locked: list[OpenInvoice] | None


_events = cast(Table, WebhookEvent.__table__)
_requests = cast(Table, PaymentRequest.__table__)
# Built once: Core statements executed with parameters skip the per-call construction.
_CLAIM = {
    dialect: conflict_insert(dialect, _events)
    .on_conflict_do_nothing(index_elements=["provider", "event_id"])
    .returning(_events.c.id)
    for dialect in ("postgresql", "sqlite")
}
_customers = cast(Table, Customer.__table__)
_CONFIRM_PAID_REQUEST = (
    update(_requests)
    .where(
        _requests.c.provider_reference == bindparam("intent"),
        _requests.c.method == PaymentMethod.CARD,
        _requests.c.amount_minor == bindparam("paid"),
        _requests.c.currency == bindparam("asked_currency"),
    )
    .values(
        status=PaymentRequestStatus.CONFIRMED,
        confirmed_at=bindparam("now"),
        failure_code=None,
    )
    .returning(
        _requests.c.id,
        _requests.c.customer_id,
        _requests.c.invoice_ids,
        select(_customers.c.company_id)
        .where(_customers.c.id == _requests.c.customer_id)
        .scalar_subquery()
        .label("company_id"),
    )
)
# PostgreSQL: the claim and the confirmation as one statement, the UPDATE only when the
# claim inserted the event id. No row back: a replay; a row of NULLs: no request matched.
_CLAIMED = (
    conflict_insert("postgresql", _events)
    .values(
        {
            name: bindparam(f"claim_{name}", type_=_events.c[name].type)
            for name in ("provider", "event_id", "event_type", "outcome", "received_at")
        }
    )
    .on_conflict_do_nothing(index_elements=["provider", "event_id"])
    .returning(_events.c.id)
    .cte("claimed")
)
_CONFIRMED = _CONFIRM_PAID_REQUEST.where(exists(select(_CLAIMED.c.id))).cte("confirmed")
# ... and the customer's open invoices in the request's currency, locked for allocation
# (one row per invoice, the request repeated on each).
_invoices = cast(Table, Invoice.__table__)
_LOCKED = (
    select(
        _invoices.c.id,
        _invoices.c.number,
        _invoices.c.amount_minor,
        _invoices.c.paid_minor,
        _invoices.c.due_date,
    )
    .where(
        _invoices.c.customer_id == select(_CONFIRMED.c.customer_id).scalar_subquery(),
        _invoices.c.currency == bindparam("asked_currency"),
        _invoices.c.status == InvoiceStatus.OPEN,
    )
    .with_for_update()
    .cte("locked")
)
_CLAIM_AND_CONFIRM = (
    select(
        _CONFIRMED.c.id,
        _CONFIRMED.c.customer_id,
        _CONFIRMED.c.invoice_ids,
        _CONFIRMED.c.company_id,
        _LOCKED.c.id.label("invoice_id"),
        _LOCKED.c.number.label("invoice_number"),
        _LOCKED.c.amount_minor.label("invoice_amount_minor"),
        _LOCKED.c.paid_minor.label("invoice_paid_minor"),
    )
    .select_from(_CLAIMED.outerjoin(_CONFIRMED, true()).outerjoin(_LOCKED, true()))
    .order_by(_LOCKED.c.due_date, _LOCKED.c.id)
)


def claim_event_id(session: Session, event_id: str, event_type: str, now: dt.datetime) -> bool:
    """Store the event id; False if it was already there (a replay)."""
    claimed = session.scalar(
        _CLAIM[session.get_bind().dialect.name], _claim(event_id, event_type, now)
    )
    return claimed is not None


def _claim(event_id: str, event_type: str, now: dt.datetime) -> dict[str, Any]:
    return {
        "provider": PROVIDER,
        "event_id": event_id,
        "event_type": event_type[:64],
        "outcome": APPLIED,
        "received_at": now,
    }


def claim_and_confirm(
    session: Session, event_id: str, intent_id: str, paid: int, currency: str, now: dt.datetime
) -> tuple[bool, Confirmed | None]:
    """Claim a ``payment_intent.succeeded`` and confirm its request: (claimed, confirmed).

    Not claimed: a replay, nothing changed. Claimed but not confirmed: no card request of
    Relance's matches this intent, amount and currency."""
    asked = {"intent": intent_id, "paid": paid, "asked_currency": currency, "now": now}
    claim = _claim(event_id, "payment_intent.succeeded", now)
    if session.get_bind().dialect.name != "postgresql":
        if session.scalar(_CLAIM["sqlite"], claim) is None:
            return False, None
        row = session.execute(_CONFIRM_PAID_REQUEST, asked).first()
        if row is None:
            return True, None
        return True, Confirmed(row.id, row.customer_id, row.company_id, row.invoice_ids, None)
    params = {**asked, **{f"claim_{name}": value for name, value in claim.items()}}
    rows = session.execute(_CLAIM_AND_CONFIRM, params).all()
    if not rows:
        return False, None
    first = rows[0]
    if first.id is None:
        return True, None
    locked = [
        OpenInvoice(r.invoice_id, r.invoice_number, r.invoice_amount_minor, r.invoice_paid_minor)
        for r in rows
        if r.invoice_id is not None
    ]
    return True, Confirmed(first.id, first.customer_id, first.company_id, first.invoice_ids, locked)
