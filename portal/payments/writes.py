"""Writing a recorded payment in as few round trips as the backend allows.

A payment is four writes: the payment row, its allocations, the invoices' new paid amounts
and the timeline event. On PostgreSQL they go as one statement (data-modifying CTEs, the
payment's id passed along by ``RETURNING``); on SQLite, whose round trips cost nothing,
as four. Either way they run in the caller's transaction, after the invoices were locked.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    String,
    Table,
    bindparam,
    case,
    func,
    insert,
    select,
    true,
    update,
)
from sqlalchemy import (
    cast as sql_cast,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from portal.invoices.models import Invoice, InvoiceStatus
from portal.payments.models import Payment, PaymentAllocation
from portal.timeline.models import TimelineEvent

_payments = cast(Table, Payment.__table__)
_allocations = cast(Table, PaymentAllocation.__table__)
_invoices = cast(Table, Invoice.__table__)
_timeline = cast(Table, TimelineEvent.__table__)


@dataclass(frozen=True)
class InvoicePaid:
    """An invoice's share of the payment, and what the invoice becomes."""

    invoice_id: int
    amount_minor: int  # allocated by this payment
    paid_minor: int  # the invoice's new total paid
    status: InvoiceStatus  # the invoice's new status
    settled: bool  # paid in full: its transfer is no longer pending


def write_payment(
    session: Session,
    payment: dict[str, Any],
    shares: Sequence[InvoicePaid],
    timeline_event: dict[str, Any],
) -> int:
    """Insert ``payment`` (a payments row), its allocations, the invoices' new amounts and
    ``timeline_event`` (a timeline row whose ``subject_id`` becomes the payment's id);
    return the payment's id."""
    if session.get_bind().dialect.name == "postgresql":
        statement = _one_statement(bool(shares), tuple(payment), tuple(timeline_event))
        params = _params(payment, shares, timeline_event)
        return int(session.execute(statement, params).scalar_one())
    inserted = session.execute(insert(_payments).returning(_payments.c.id), payment)
    payment_id = int(inserted.scalar_one())
    if shares:
        session.execute(
            insert(_allocations),
            [
                {
                    "payment_id": payment_id,
                    "invoice_id": s.invoice_id,
                    "amount_minor": s.amount_minor,
                }
                for s in shares
            ],
        )
        session.execute(
            _UPDATE_INVOICE,
            [
                {
                    "invoice": s.invoice_id,
                    "paid": s.paid_minor,
                    "status": s.status,
                    "settled": s.settled,
                }
                for s in shares
            ],
        )
    session.execute(insert(_timeline), {**timeline_event, "subject_id": str(payment_id)})
    return payment_id


_UPDATE_INVOICE = (
    update(_invoices)
    .where(_invoices.c.id == bindparam("invoice"))
    .values(
        paid_minor=bindparam("paid"),
        status=bindparam("status"),
        transfer_pending_until=case(
            (bindparam("settled", type_=Boolean), None),
            else_=_invoices.c.transfer_pending_until,
        ),
    )
)


def _params(
    payment: dict[str, Any], shares: Sequence[InvoicePaid], timeline_event: dict[str, Any]
) -> dict[str, Any]:
    params = {f"p_{name}": value for name, value in payment.items()}
    params.update({f"t_{name}": value for name, value in timeline_event.items()})
    if shares:
        params.update(
            {
                "s_invoice": [s.invoice_id for s in shares],
                "s_amount": [s.amount_minor for s in shares],
                "s_paid": [s.paid_minor for s in shares],
                "s_status": [s.status.value for s in shares],
                "s_settled": [s.settled for s in shares],
            }
        )
    return params


@functools.cache
def _one_statement(
    with_shares: bool, payment_columns: tuple[str, ...], event_columns: tuple[str, ...]
) -> Any:
    """Built once per shape: the payment row, then what refers to its id."""
    columns = payment_columns
    new = (
        insert(_payments)
        .values({name: bindparam(f"p_{name}", type_=_payments.c[name].type) for name in columns})
        .returning(_payments.c.id)
        .cte("new_payment")
    )
    timeline_values = [
        bindparam(f"t_{name}", type_=_timeline.c[name].type) for name in event_columns
    ]
    event = (
        insert(_timeline)
        .from_select(
            [*event_columns, "subject_id"],
            select(*timeline_values, sql_cast(new.c.id, String)),
        )
        .cte("new_event")
    )
    query = select(new.c.id).add_cte(event)
    if not with_shares:
        return query
    shares = (
        func.unnest(
            bindparam("s_invoice", type_=ARRAY(BigInteger)),
            bindparam("s_amount", type_=ARRAY(BigInteger)),
            bindparam("s_paid", type_=ARRAY(BigInteger)),
            bindparam("s_status", type_=ARRAY(String)),
            bindparam("s_settled", type_=ARRAY(Boolean)),
        )
        .table_valued("invoice_id", "amount_minor", "paid_minor", "status", "settled")
        .render_derived(name="share")
    )
    allocated = (
        insert(_allocations)
        .from_select(
            ["payment_id", "invoice_id", "amount_minor"],
            select(new.c.id, shares.c.invoice_id, shares.c.amount_minor).select_from(
                new.join(shares, true())
            ),
        )
        .cte("new_allocations")
    )
    paid = (
        update(_invoices)
        .where(_invoices.c.id == shares.c.invoice_id)
        .values(
            paid_minor=shares.c.paid_minor,
            status=shares.c.status,
            transfer_pending_until=case(
                (shares.c.settled, None), else_=_invoices.c.transfer_pending_until
            ),
        )
        .cte("paid_invoices")
    )
    return query.add_cte(allocated).add_cte(paid)
