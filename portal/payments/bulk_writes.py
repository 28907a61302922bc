"""Writing the transfers ``payments.bulk`` planned: a few statements per table, in the order
one payment after the other would have written them (the same ids, the same timeline)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from portal.invoices.models import Invoice
from portal.ordered_writes import OrderedWrites
from portal.payments.models import Payment, PaymentAllocation, PaymentRequest, PaymentRequestStatus
from portal.payments.service import RecordedPayment
from portal.payments.transfer_checks import confirmed_details
from portal.payments.writes import InvoicePaid, announced_events
from portal.timeline.models import TimelineEvent
from portal.timeline.service import event_row
from portal.webhooks import events
from portal.webhooks.models import OutgoingEvent

_payments = cast(Table, Payment.__table__)
_allocations = cast(Table, PaymentAllocation.__table__)
_invoices = cast(Table, Invoice.__table__)
_requests = cast(Table, PaymentRequest.__table__)
_timeline = cast(Table, TimelineEvent.__table__)
_outgoing = cast(Table, OutgoingEvent.__table__)


@dataclass(frozen=True)
class Recorded:
    """One planned payment: its row, its shares, its payment.recorded event."""

    payment: dict[str, Any]
    shares: list[InvoicePaid]
    event: dict[str, Any]
    credit_minor: int
    received_on: dt.date


def write_transfers(
    writes: OrderedWrites,
    ids: Sequence[int],
    recorded: Sequence[Recorded],
    invoice_rows: list[dict[str, Any]],
    now: dt.datetime,
    listening: set[int],
) -> list[RecordedPayment]:
    """Write the payments (with the ``ids`` drawn for them), their allocations, timeline
    and outgoing events (of the ``listening`` companies); set the invoices to
    ``invoice_rows`` and the requests paid to confirmed."""
    writes.insert_with_ids(_payments, ids, [r.payment for r in recorded], binary=True)
    writes.insert_rows(
        _allocations,
        [
            {"payment_id": payment_id, "invoice_id": s.invoice_id, "amount_minor": s.amount_minor}
            for payment_id, r in zip(ids, recorded, strict=True)
            for s in r.shares
        ],
        binary=True,
    )
    writes.update_many(_invoices, invoice_rows)
    timeline: list[dict[str, Any]] = []
    outgoing: list[dict[str, Any]] = []
    confirmed: list[dict[str, Any]] = []
    for payment_id, r in zip(ids, recorded, strict=True):
        timeline.append({**r.event, "subject_id": str(payment_id)})
        # Outgoing events are built only for companies someone listens to (most have none).
        announced = r.event["company_id"] in listening
        for row in announced_events(r.payment, r.shares, r.event) if announced else []:
            outgoing.append({**row, "subject_id": row["subject_id"] or str(payment_id)})
        request_id = r.payment["payment_request_id"]
        if request_id is None:
            continue
        confirmed.append(
            {"id": request_id, "status": PaymentRequestStatus.CONFIRMED, "confirmed_at": now}
        )
        event = event_row(
            company_id=r.event["company_id"],
            customer_id=r.payment["customer_id"],
            actor=r.event["actor"],
            actor_id=r.event["actor_id"],
            action="transfer.confirmed",
            subject_type="payment_request",
            details=confirmed_details(
                r.payment["amount_minor"],
                r.payment["currency"],
                r.received_on,
                r.payment["provider_reference"],
                payment_id,
            ),
        )
        timeline.append({**event, "subject_id": str(request_id)})
        if announced:
            outgoing.extend(events.rows_for_timeline([timeline[-1]]))
    writes.update_many(_requests, confirmed)
    writes.insert_rows(_timeline, timeline, binary=True)
    writes.insert_rows(_outgoing, events.stored_rows(outgoing, listening))
    _sync_held(writes.session, invoice_rows, confirmed)
    return [
        RecordedPayment(
            payment_id, r.payment["amount_minor"], r.payment["currency"], r.credit_minor
        )
        for payment_id, r in zip(ids, recorded, strict=True)
    ]


def _sync_held(
    session: Session, invoice_rows: list[dict[str, Any]], confirmed: list[dict[str, Any]]
) -> None:
    """Objects the session holds say what the rows now say, as unchanged. (The session
    holds a few objects, the rows are thousands: the held ones are looked for.)"""
    for model, rows in ((Invoice, invoice_rows), (PaymentRequest, confirmed)):
        keys = session.identity_map.keys()  # an IdentityMap, not a dict: not iterable
        held = [key for key in keys if key[0] is model]
        if not held:
            continue
        by_id = {row["id"]: row for row in rows}
        for key in held:
            row = by_id.get(key[1][0])
            obj = session.identity_map.get(key)
            if row is None or obj is None:
                continue
            for name, value in row.items():
                if name != "id":
                    set_committed_value(obj, name, value)
