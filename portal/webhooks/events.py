"""Which changes are announced, and writing them to the outbox in the change's transaction.

Every change the timeline records goes through ``timeline.service`` (``record``,
``append``, ``record_many``) or ``payments.writes``; those call ``capture`` with the
timeline rows they write, so an event is stored exactly when its change commits. An event
is stored only while the company has an enabled endpoint (one ``INSERT … SELECT … WHERE
EXISTS``); which endpoints get it is decided later, when the worker fans it out.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Iterable, Mapping
from typing import Any, cast

from sqlalchemy import JSON, Table, bindparam, exists, insert, literal, select, true
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session

from portal import clock
from portal.db import insert_many
from portal.webhooks.models import OutgoingEvent, WebhookEndpoint

# The events an endpoint may choose, in the order the back office lists them.
EVENT_TYPES = (
    "invoice.paid",
    "payment.succeeded",
    "payment.refunded",
    "transfer.declared",
    "dispute.opened",
    "dispute.decided",
    "plan.proposed",
    "plan.accepted",
    "plan.broken",
    "promise.made",
    "promise.broken",
    "reminder.sent",
    "reminder.failed",
    "link.opened",
)

# Timeline action -> the event it announces (invoice.paid comes from payments.writes).
ACTION_EVENTS: Mapping[str, str] = {
    "payment.recorded": "payment.succeeded",
    "payment.refunded": "payment.refunded",
    "transfer.declared": "transfer.declared",
    "dispute.opened": "dispute.opened",
    "dispute.resolved": "dispute.decided",
    "dispute.rejected": "dispute.decided",
    "plan.proposed": "plan.proposed",
    "plan.accepted": "plan.accepted",
    "plan.broken": "plan.broken",
    "promise.made": "promise.made",
    "promise.broken": "promise.broken",
    "reminder.sent": "reminder.sent",
    "reminder.failed": "reminder.failed",
    "link.opened": "link.opened",
}

_events = cast(Table, OutgoingEvent.__table__)
_endpoints = cast(Table, WebhookEndpoint.__table__)
COLUMNS = (
    "company_id",
    "event_id",
    "type",
    "occurred_at",
    "customer_id",
    "subject_type",
    "subject_id",
    "data",
)


def new_event_id() -> str:
    return "evt_" + secrets.token_hex(16)


def event_row(
    company_id: int,
    event_type: str,
    *,
    customer_id: int | None,
    subject_type: str | None,
    subject_id: str | int | None,
    data: Mapping[str, Any],
) -> dict[str, Any]:
    return {
        "company_id": company_id,
        "event_id": new_event_id(),
        "type": event_type,
        "occurred_at": clock.now(),
        "customer_id": customer_id,
        "subject_type": subject_type,
        "subject_id": None if subject_id is None else str(subject_id),
        "data": dict(data),
    }


def rows_for_timeline(timeline_rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The outbox rows that these timeline rows announce (none for most actions)."""
    rows = []
    for row in timeline_rows:
        event_type = ACTION_EVENTS.get(row["action"])
        if event_type is None:
            continue
        data = {"action": row["action"], **(row.get("details") or {})}
        rows.append(
            event_row(
                row["company_id"],
                event_type,
                customer_id=row.get("customer_id"),
                subject_type=row.get("subject_type"),
                subject_id=row.get("subject_id"),
                data=data,
            )
        )
    return rows


def _subscribed() -> Any:
    return exists(
        select(literal(1)).where(
            _endpoints.c.company_id == bindparam("company_id"), _endpoints.c.enabled == true()
        )
    )


def _capture_statement(cast_values: bool) -> Any:
    """One INSERT … SELECT per event, kept only while an endpoint is enabled. PostgreSQL
    needs each value cast to know its type in a SELECT list; SQLite must not cast (its
    CAST to DATETIME would turn a timestamp into a number)."""
    values = []
    for name in COLUMNS:
        column_type = _events.c[name].type
        value = bindparam(name, type_=JSON() if name == "data" else column_type)
        values.append(sql_cast(value, column_type) if cast_values else value)
    return insert(_events).from_select(list(COLUMNS), select(*values).where(_subscribed()))


@functools.cache
def _capture(dialect: str) -> Any:
    # Built on first use, once every table is known: a foreign key column takes its type
    # from the table it refers to, which a statement built at import might not see yet.
    return _capture_statement(dialect == "postgresql")


def store(session: Session, rows: list[dict[str, Any]]) -> None:
    """Write these outbox rows in the session's transaction (if any endpoint listens)."""
    if rows:
        session.execute(_capture(session.get_bind().dialect.name), rows)


def listening_companies(session: Session, company_ids: Iterable[int]) -> set[int]:
    """Those of these companies with an enabled endpoint (whose events are stored)."""
    return set(
        session.scalars(
            select(_endpoints.c.company_id).where(
                _endpoints.c.company_id.in_(sorted(set(company_ids))),
                _endpoints.c.enabled == true(),
            )
        )
    )


def store_many(session: Session, rows: list[dict[str, Any]]) -> None:
    """Like ``store``, for a statement's thousands of rows: which companies listen is asked
    once, and their rows are sent in one go (COPY on PostgreSQL)."""
    if not rows:
        return
    listening = listening_companies(session, {row["company_id"] for row in rows})
    insert_many(session, _events, stored_rows(rows, listening))


def stored_rows(rows: Iterable[Mapping[str, Any]], listening: set[int]) -> list[dict[str, Any]]:
    """The outbox rows of ``rows`` to write: those of the ``listening`` companies."""
    return [{name: row[name] for name in COLUMNS} for row in rows if row["company_id"] in listening]


def capture(session: Session, timeline_rows: Iterable[Mapping[str, Any]]) -> None:
    """Store the events these timeline rows announce, in the same transaction."""
    store(session, rows_for_timeline(timeline_rows))
