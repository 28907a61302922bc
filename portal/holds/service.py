"""Placing and releasing reminder holds, and the one rule that says an invoice is held."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import ColumnElement, and_, exists, or_, select, update
from sqlalchemy.orm import Session

from portal import clock
from portal.holds.models import HoldKind, ReminderHold
from portal.invoices.models import Invoice


def place_hold(
    session: Session,
    *,
    customer_id: int,
    invoice_ids: Iterable[int],
    kind: HoldKind,
    subject_type: str,
    subject_id: int | str,
    until: dt.date | None = None,
) -> list[ReminderHold]:
    """Hold the reminders of these invoices for a case (until a date, or until released)."""
    now = clock.now()
    holds = [
        ReminderHold(
            customer_id=customer_id,
            invoice_id=invoice_id,
            kind=kind,
            subject_type=subject_type,
            subject_id=str(subject_id),
            until=until,
            created_at=now,
        )
        for invoice_id in sorted(set(invoice_ids))
    ]
    session.add_all(holds)
    session.flush()
    return holds


def release_holds(session: Session, *, subject_type: str, subject_id: int | str) -> int:
    """Release every active hold a case placed; returns how many were released."""
    result = session.execute(
        update(ReminderHold)
        .where(
            ReminderHold.subject_type == subject_type,
            ReminderHold.subject_id == str(subject_id),
            ReminderHold.released_at.is_(None),
        )
        .values(released_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def active_hold_exists(today: dt.date) -> ColumnElement[bool]:
    """SQL condition, correlated to ``Invoice``: some hold pauses this invoice today."""
    return exists(
        select(ReminderHold.id).where(
            ReminderHold.invoice_id == Invoice.id,
            ReminderHold.released_at.is_(None),
            or_(ReminderHold.until.is_(None), ReminderHold.until >= today),
        )
    )


def reminders_paused(today: dt.date) -> ColumnElement[bool]:
    """SQL condition on ``Invoice``: no reminder may mention it today.

    A declared transfer in its grace period, a manual pause of the invoice, or an active
    hold (dispute, plan, promise). The customer's own pause is checked on ``Customer``.
    """
    return or_(
        and_(Invoice.transfer_pending_until.is_not(None), Invoice.transfer_pending_until >= today),
        and_(Invoice.reminders_paused_until.is_not(None), Invoice.reminders_paused_until >= today),
        active_hold_exists(today),
    )


def held_invoice_ids(session: Session, invoice_ids: Iterable[int], today: dt.date) -> set[int]:
    """Which of these invoices are paused today (for checks in Python)."""
    ids = sorted(set(invoice_ids))
    if not ids:
        return set()
    return set(
        session.scalars(select(Invoice.id).where(Invoice.id.in_(ids), reminders_paused(today)))
    )
