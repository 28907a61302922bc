"""Writing a recorded payment in as few round trips as the backend allows.

A payment is four writes: the payment row, its allocations, the invoices' new paid amounts
and the timeline event. On PostgreSQL they go as one statement (data-modifying CTEs, the
payment's id passed along by ``RETURNING``); on SQLite, whose round trips cost nothing,
as four. Either way they run in the caller's transaction, after the invoices were locked.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    String,
    Table,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal,
    select,
    true,
    update,
)
from sqlalchemy import (
    cast as sql_cast,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from portal.db import UTCDateTime
from portal.invoices.models import Invoice, InvoiceStatus
from portal.payments.models import Payment, PaymentAllocation
from portal.timeline.models import TimelineEvent
from portal.webhooks import events
from portal.webhooks.models import OutgoingEvent, WebhookEndpoint

_payments = cast(Table, Payment.__table__)
_allocations = cast(Table, PaymentAllocation.__table__)
_invoices = cast(Table, Invoice.__table__)
_timeline = cast(Table, TimelineEvent.__table__)
_outbox = cast(Table, OutgoingEvent.__table__)
_endpoints = cast(Table, WebhookEndpoint.__table__)


@dataclass(frozen=True)
class InvoicePaid:
    """An invoice's share of the payment, and what the invoice becomes."""

    invoice_id: int
    amount_minor: int  # allocated by this payment
    paid_minor: int  # the invoice's new total paid
    status: InvoiceStatus  # the invoice's new status
    settled: bool  # paid in full: its transfer is no longer pending
    number: str = ""  # the invoice's number, for the invoice.paid event


def write_payment(
    session: Session,
    payment: dict[str, Any],
    shares: Sequence[InvoicePaid],
    timeline_event: dict[str, Any],
) -> int:
    """Insert ``payment`` (a payments row), its allocations, the invoices' new amounts,
    ``timeline_event`` (a timeline row whose ``subject_id`` becomes the payment's id) and
    the outgoing events they announce (payment.succeeded, invoice.paid); return the
    payment's id."""
    announced = announced_events(payment, shares, timeline_event)
    if session.get_bind().dialect.name == "postgresql":
        statement = _one_statement(bool(shares), tuple(payment), tuple(timeline_event))
        params = _params(payment, shares, timeline_event)
        params.update(_event_params(announced))
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
                    "changed_at": payment["created_at"],
                }
                for s in shares
            ],
        )
    session.execute(insert(_timeline), {**timeline_event, "subject_id": str(payment_id)})
    for row in announced:
        row["subject_id"] = row["subject_id"] or str(payment_id)
    events.store(session, announced)
    return payment_id


def announced_events(
    payment: dict[str, Any], shares: Sequence[InvoicePaid], timeline_event: dict[str, Any]
) -> list[dict[str, Any]]:
    """payment.succeeded, then invoice.paid for each invoice it settles (subject_id None:
    the new payment's id)."""
    company_id = timeline_event["company_id"]
    customer_id = payment["customer_id"]
    rows = events.rows_for_timeline([{**timeline_event, "subject_id": None}])
    for share in shares:
        if share.settled:
            rows.append(
                events.event_row(
                    company_id,
                    "invoice.paid",
                    customer_id=customer_id,
                    subject_type="invoice",
                    subject_id=share.invoice_id,
                    data={
                        "number": share.number,
                        "paid_minor": share.paid_minor,
                        "currency": payment["currency"],
                        "payment_reference": payment["provider_reference"],
                    },
                )
            )
    return rows


_EVENT_FIELDS = ("event_id", "type", "occurred_at", "subject_type", "subject_id", "data")


def _event_params(announced: list[dict[str, Any]]) -> dict[str, Any]:
    params: dict[str, Any] = {
        f"e_{name}": [row[name] for row in announced] for name in _EVENT_FIELDS
    }
    params["e_data"] = [json.dumps(row["data"]) for row in announced]
    params["e_company"] = announced[0]["company_id"] if announced else 0
    params["e_customer"] = announced[0]["customer_id"] if announced else None
    return params


_UPDATE_INVOICE = (
    update(_invoices)
    .where(_invoices.c.id == bindparam("invoice"))
    .values(
        paid_minor=bindparam("paid"),
        status=bindparam("status"),
        updated_at=bindparam("changed_at", type_=UTCDateTime()),
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
    params["changed_at"] = payment["created_at"]
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


def _outbox_cte(new: Any) -> Any:
    """The announced events as one more CTE: kept only while an endpoint is enabled."""
    rows = (
        func.unnest(
            bindparam("e_event_id", type_=ARRAY(String)),
            bindparam("e_type", type_=ARRAY(String)),
            bindparam("e_occurred_at", type_=ARRAY(DateTime(timezone=True))),
            bindparam("e_subject_type", type_=ARRAY(String)),
            bindparam("e_subject_id", type_=ARRAY(String)),
            bindparam("e_data", type_=ARRAY(String)),
        )
        .table_valued("event_id", "type", "occurred_at", "subject_type", "subject_id", "data")
        .render_derived(name="announced")
    )
    listening = exists(
        select(literal(1)).where(
            _endpoints.c.company_id == bindparam("e_company", type_=BigInteger),
            _endpoints.c.enabled == true(),
        )
    )
    return (
        insert(_outbox)
        .from_select(
            ["company_id", *events.COLUMNS[1:]],
            select(
                bindparam("e_company", type_=BigInteger),
                rows.c.event_id,
                rows.c.type,
                rows.c.occurred_at,
                bindparam("e_customer", type_=BigInteger),
                rows.c.subject_type,
                func.coalesce(rows.c.subject_id, sql_cast(new.c.id, String)),
                sql_cast(rows.c.data, JSON),
            )
            .select_from(new.join(rows, true()))
            .where(listening),
        )
        .cte("new_outgoing_events")
    )


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
    query = select(new.c.id).add_cte(event).add_cte(_outbox_cte(new))
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
            updated_at=bindparam("changed_at", type_=UTCDateTime()),
            transfer_pending_until=case(
                (shares.c.settled, None), else_=_invoices.c.transfer_pending_until
            ),
        )
        .cte("paid_invoices")
    )
    return query.add_cte(allocated).add_cte(paid)
