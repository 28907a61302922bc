"""Turning a bank line into payments, through the payment service: a payment request's
transfer confirmed (``payments.requests.confirm_transfer``), or a transfer recorded and
allocated (``payments.service.record_payment``: the chosen invoices first, then the
customer's oldest, the rest as credit). A receipt is owed; the timeline says which line.

What concerns the lines themselves (their status, the payments they became, their
timeline events) is collected in ``LineWrites`` and written at the end in a few
statements, so a statement of thousands of lines costs one payment write per payment.
A statement's new lines are written there too, once, with their outcome (not stored
first and updated after).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.orm import Session

from portal import clock
from portal.bank.models import BankLine, BankLinePayment, LineStatus
from portal.ordered_writes import OrderedWrites, ordered_writes
from portal.payments import requests as payment_requests
from portal.payments.models import PaymentMethod, PaymentRequest
from portal.payments.service import OpenInvoice, Payer, record_payment
from portal.timeline.models import Actor
from portal.timeline.service import record_many

SYSTEM_ACTOR = "bank"
_lines = cast(Table, BankLine.__table__)
_links = cast(Table, BankLinePayment.__table__)


@dataclass(frozen=True)
class LineRef:
    """What recording needs of a line (no ORM object: thousands are handled at once)."""

    id: int
    company_id: int
    booked_on: dt.date
    amount_minor: int
    currency: str
    entry_reference: str

    @classmethod
    def of(cls, line: BankLine) -> LineRef:
        return cls(
            line.id,
            line.company_id,
            line.booked_on,
            line.amount_minor,
            line.currency,
            line.entry_reference,
        )


@dataclass
class LineWrites:
    links: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    lines: list[dict[str, Any]] = field(default_factory=list)

    def done(
        self,
        line: LineRef,
        status: LineStatus,
        *,
        rule: str | None = None,
        customer_id: int | None = None,
        user_id: int | None = None,
        suggestions: list[dict[str, Any]] | None = None,
    ) -> None:
        self.lines.append(
            {
                "id": line.id,
                "status": status,
                "matched_by": rule,
                "customer_id": customer_id,
                "suggestions": suggestions or [],
                "decided_by_user_id": user_id,
                "decided_at": clock.now()
                if user_id is not None or status is LineStatus.MATCHED
                else None,
            }
        )

    def event(
        self,
        line: LineRef,
        action: str,
        customer_id: int | None,
        actor: Actor,
        actor_id: str | None,
        **details: object,
    ) -> None:
        self.events.append(
            {
                "company_id": line.company_id,
                "customer_id": customer_id,
                "actor": actor,
                "actor_id": actor_id,
                "action": action,
                "subject_type": "bank_line",
                "subject_id": line.id,
                "details": {
                    "amount_minor": line.amount_minor,
                    "currency": line.currency,
                    "booked_on": line.booked_on.isoformat(),
                    "entry_reference": line.entry_reference,
                    **details,
                },
            }
        )

    def write(self, session: Session, new: Sequence[dict[str, Any]] | None = None) -> None:
        """Write what was noted. ``new``: the rows of lines not written yet (ids drawn),
        inserted once with their outcome; without it the lines noted are updated."""
        with ordered_writes(session, background=False) as writes:
            self.write_lines(writes, new)
            self.write_links_and_events(writes)

    def write_lines(
        self, writes: OrderedWrites, new: Sequence[dict[str, Any]] | None = None
    ) -> None:
        """The lines' part of ``write``."""
        if new is None:
            writes.update_many(_lines, self.lines)
        else:
            outcome = {row["id"]: row for row in self.lines}
            rows = [{**row, **outcome.get(row["id"], {})} for row in new]
            writes.insert_with_ids(_lines, [row.pop("id") for row in rows], rows, binary=True)
        self.lines = []

    def write_links_and_events(self, writes: OrderedWrites) -> None:
        """The rest of ``write``: what the lines were recorded as, and their timeline."""
        writes.insert_rows(_links, self.links, binary=True)
        record_many(writes.session, self.events, writes=writes)
        self.links, self.events = [], []


def _actor_id(user_id: int | None) -> str:
    return str(user_id) if user_id is not None else SYSTEM_ACTOR


def confirm_request(
    session: Session,
    writes: LineWrites,
    line: LineRef,
    request: PaymentRequest,
    rule: str,
    *,
    today: dt.date,
    actor: Actor = Actor.SYSTEM,
    user_id: int | None = None,
) -> int:
    """The line is the money of ``request``: confirmed with the line's amount."""
    payment = payment_requests.confirm_transfer(
        session,
        request,
        amount_minor=line.amount_minor,
        received_on=line.booked_on,
        today=max(today, line.booked_on),
        actor=actor,
        actor_id=_actor_id(user_id),
    )
    note_confirmed(
        writes, line, payment.id, request.customer_id, rule, actor=actor, user_id=user_id
    )
    return payment.id


def note_confirmed(
    writes: LineWrites,
    line: LineRef,
    payment_id: int,
    customer_id: int,
    rule: str,
    *,
    actor: Actor = Actor.SYSTEM,
    user_id: int | None = None,
) -> None:
    """The line became ``payment_id``, the confirmed transfer of one of the customer's
    requests: the line's link, status and timeline event."""
    writes.links.append(
        {"line_id": line.id, "payment_id": payment_id, "amount_minor": line.amount_minor}
    )
    writes.done(line, LineStatus.MATCHED, rule=rule, customer_id=customer_id, user_id=user_id)
    writes.event(
        line,
        "bank_line.matched",
        customer_id,
        actor,
        _actor_id(user_id),
        rule=rule,
        payment=payment_id,
    )


def link_existing(
    writes: LineWrites, line: LineRef, payment_id: int, customer_id: int, rule: str
) -> None:
    """The transfer was confirmed by hand before the statement came: nothing new to record."""
    writes.links.append(
        {"line_id": line.id, "payment_id": payment_id, "amount_minor": line.amount_minor}
    )
    writes.done(line, LineStatus.MATCHED, rule=rule, customer_id=customer_id)
    writes.event(
        line,
        "bank_line.matched",
        customer_id,
        Actor.SYSTEM,
        SYSTEM_ACTOR,
        rule=rule,
        payment=payment_id,
        already_recorded=True,
    )


def record_parts(
    session: Session,
    writes: LineWrites,
    line: LineRef,
    parts: Sequence[tuple[int, int, Sequence[int]]],
    rule: str,
    *,
    actor: Actor = Actor.SYSTEM,
    user_id: int | None = None,
    locked: dict[int, list[OpenInvoice]] | None = None,
) -> list[int]:
    """Record ``(customer id, amount, invoice ids)`` parts of the line as payments.

    ``locked``: customers' open invoices already locked by the caller in this transaction,
    used once (taken out) for that customer's first payment.
    """
    payments = []
    for number, (customer_id, amount_minor, invoice_ids) in enumerate(parts, start=1):
        reference = part_reference(line, number, len(parts))
        result = record_payment(
            session,
            Payer(customer_id, line.company_id),
            amount_minor=amount_minor,
            currency=line.currency,
            method=PaymentMethod.TRANSFER,
            provider="bank",
            provider_reference=reference,
            received_at=dt.datetime.combine(line.booked_on, dt.time(12), dt.UTC),
            invoice_ids=invoice_ids,
            actor=actor,
            actor_id=_actor_id(user_id),
            receipt=True,
            locked=(locked or {}).pop(customer_id, None),
        )
        payments.append(result.id)
    note_parts(writes, line, parts, payments, rule, actor=actor, user_id=user_id)
    return payments


def note_parts(
    writes: LineWrites,
    line: LineRef,
    parts: Sequence[tuple[int, int, Sequence[int]]],
    payment_ids: Sequence[int],
    rule: str,
    *,
    actor: Actor = Actor.SYSTEM,
    user_id: int | None = None,
) -> None:
    """The line's ``parts`` became ``payment_ids``: the links, timeline events and status."""
    for (customer_id, amount_minor, _invoices), payment_id in zip(parts, payment_ids, strict=True):
        writes.links.append(
            {"line_id": line.id, "payment_id": payment_id, "amount_minor": amount_minor}
        )
        writes.event(
            line,
            "bank_line.matched",
            customer_id,
            actor,
            _actor_id(user_id),
            rule=rule,
            payment=payment_id,
            part_minor=amount_minor,
        )
    customers = {customer_id for customer_id, _a, _i in parts}
    writes.done(
        line,
        LineStatus.MATCHED,
        rule=rule,
        customer_id=customers.pop() if len(customers) == 1 else None,
        user_id=user_id,
    )


def part_reference(line: LineRef, number: int, parts: int) -> str:
    """The payment reference of part ``number`` (from 1) of a line split in ``parts``."""
    return f"line:{line.id}" if parts == 1 else f"line:{line.id}:{number}"
