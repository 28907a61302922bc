"""Writing to the timeline, and keeping it append-only."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, event, insert, select
from sqlalchemy.orm import Session, UOWTransaction

from portal import clock
from portal.db import insert_rows
from portal.ordered_writes import OrderedWrites
from portal.timeline.models import Actor, TimelineEvent
from portal.webhooks.events import capture, rows_for_timeline

_timeline = cast(Table, TimelineEvent.__table__)


class TimelineIsAppendOnly(RuntimeError):
    pass


def record(
    session: Session,
    *,
    company_id: int,
    action: str,
    actor: Actor,
    actor_id: str | None = None,
    customer_id: int | None = None,
    subject_type: str | None = None,
    subject_id: str | int | None = None,
    details: dict[str, Any] | None = None,
) -> TimelineEvent:
    """Add an event to the session; it commits with the change it describes."""
    row = event_row(
        company_id=company_id,
        action=action,
        actor=actor,
        actor_id=actor_id,
        customer_id=customer_id,
        subject_type=subject_type,
        details=details,
    )
    entry = TimelineEvent(**row, subject_id=None if subject_id is None else str(subject_id))
    session.add(entry)
    capture(session, [{**row, "subject_id": entry.subject_id}])
    return entry


def append(
    session: Session,
    *,
    company_id: int,
    action: str,
    actor: Actor,
    actor_id: str | None = None,
    customer_id: int | None = None,
    subject_type: str | None = None,
    subject_id: str | int | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Like ``record``, as one INSERT right away: for hot paths (webhooks, payments)
    where the ORM's bookkeeping would cost more than the statement."""
    row = event_row(
        company_id=company_id,
        action=action,
        actor=actor,
        actor_id=actor_id,
        customer_id=customer_id,
        subject_type=subject_type,
        details=details,
    )
    full = {**row, "subject_id": None if subject_id is None else str(subject_id)}
    session.execute(_APPEND, full)
    capture(session, [full])


def event_row(
    *,
    company_id: int,
    action: str,
    actor: Actor,
    actor_id: str | None = None,
    customer_id: int | None = None,
    subject_type: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A timeline row without its ``subject_id``, for a caller that inserts it along with
    its subject (portal.payments.writes)."""
    return {
        "company_id": company_id,
        "customer_id": customer_id,
        "occurred_at": clock.now(),
        "actor": actor,
        "actor_id": actor_id,
        "action": action,
        "subject_type": subject_type,
        "details": details or {},
    }


def record_many(
    session: Session, events: list[dict[str, Any]], *, writes: OrderedWrites | None = None
) -> None:
    """Many events at once (imports: COPY on PostgreSQL): each dict holds ``record``'s
    keyword arguments (company_id, action, actor, and optionally actor_id, customer_id,
    subject_type, subject_id, details). ``writes``: written among those, in order."""
    if not events:
        return
    rows = _rows(events)
    if writes is None:
        insert_rows(session, _timeline, rows, binary=True)
        capture(session, rows)
        return
    writes.insert_rows(_timeline, rows, binary=True)
    if rows_for_timeline(rows):  # outgoing events: stored after, the connection free
        writes.wait()
        capture(session, rows)


def _rows(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    now = clock.now()
    return [
        {
            "company_id": event["company_id"],
            "customer_id": event.get("customer_id"),
            "occurred_at": now,
            "actor": event["actor"],
            "actor_id": None if event.get("actor_id") is None else str(event["actor_id"]),
            "action": event["action"],
            "subject_type": event.get("subject_type"),
            "subject_id": None if event.get("subject_id") is None else str(event["subject_id"]),
            "details": event.get("details") or {},
        }
        for event in events
    ]


# Built once: a Core statement executed with parameters skips the per-call construction.
_APPEND = insert(_timeline)


def customer_timeline(session: Session, customer_id: int, limit: int = 200) -> list[TimelineEvent]:
    query = (
        select(TimelineEvent)
        .where(TimelineEvent.customer_id == customer_id)
        .order_by(TimelineEvent.occurred_at.desc(), TimelineEvent.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


@event.listens_for(Session, "before_flush")
def _refuse_rewriting_history(session: Session, _ctx: UOWTransaction, _instances: Any) -> None:
    for obj in (*session.dirty, *session.deleted):
        if isinstance(obj, TimelineEvent) and (obj in session.deleted or session.is_modified(obj)):
            raise TimelineIsAppendOnly("timeline events cannot be changed or deleted")
