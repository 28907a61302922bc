"""Recording a send's outcome: the row this worker still holds, and its timeline event.

One short transaction per message, right after its send, so a worker killed between two
messages leaves at most the message in flight unrecorded (outbox.py). On PostgreSQL it is
a single statement (update, timeline row, webhook event, in CTEs) committed without
waiting for the disk; elsewhere the same through the ORM-free Core statements.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Table, Update, bindparam, text, update
from sqlalchemy.orm import Session

from portal import clock
from portal.reminders.models import MessageStatus, ReminderMessage
from portal.reminders.sending import Delivery, Outcome
from portal.settings import Settings
from portal.timeline.models import Actor
from portal.timeline.service import append
from portal.webhooks.events import rows_for_timeline

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 6 * 3600
_MESSAGES = cast(Table, ReminderMessage.__table__)


def _decide(
    settings: Settings, delivery: Delivery, outcome: Outcome, now: dt.datetime
) -> tuple[str, dict[str, Any], dict[str, object]]:
    """(timeline action, new column values, event details) for this outcome."""
    attempts = delivery.attempt
    values: dict[str, Any] = {"claimed_until": None}
    if outcome.ok:
        values.update(
            status=MessageStatus.SENT.value,
            sent_at=now,
            external_id=outcome.external_id[:255],
            last_error=None,
        )
        return (
            "reminder.sent",
            values,
            {
                "to": delivery.recipient,
                "sent_by": str(delivery.channel),
                "external_id": outcome.external_id,
                "attempt": attempts,
            },
        )
    values["last_error"] = outcome.error[:500]
    if outcome.permanent:
        values["status"] = MessageStatus.BOUNCED.value
        return "reminder.bounced", values, {"to": delivery.recipient, "error": outcome.error[:300]}
    if attempts >= settings.reminders.max_attempts:
        values["status"] = MessageStatus.FAILED.value
        return "reminder.failed", values, {"error": outcome.error[:300], "attempts": attempts}
    base = settings.reminders.retry_base_seconds
    next_attempt_at = now + dt.timedelta(
        seconds=min(base * 2 ** (attempts - 1), MAX_BACKOFF_SECONDS)
    )
    values.update(status=MessageStatus.PENDING.value, next_attempt_at=next_attempt_at)
    return (
        "reminder.retry",
        values,
        {
            "error": outcome.error[:300],
            "attempt": attempts,
            "next_attempt_at": next_attempt_at.isoformat(),
        },
    )


def record_outcome(
    session: Session, settings: Settings, worker_id: str, delivery: Delivery, outcome: Outcome
) -> str:
    """Record what happened, unless another worker took the row over meanwhile. Returns
    the timeline action ("reminder.sent", ".retry", ".failed", ".bounced"), "deferred"
    for a message put back unattempted, or "" when the row was taken over."""
    # No lock taken first: the first statement is the UPDATE, which takes SQLite's.
    now = clock.now()
    held = {"held_id": delivery.message_id, "held_by": worker_id}
    if outcome.deferred:
        session.execute(_put_back(), {**held, "next_attempt_at": now})
        return "deferred"
    action, values, details = _decide(settings, delivery, outcome, now)
    details = {"step": delivery.step, "channel": delivery.planned_channel, **details}
    if session.get_bind().dialect.name == "postgresql":
        recorded = _record_postgresql(session, worker_id, delivery, action, values, details, now)
    else:
        changed = session.execute(_update(tuple(sorted(values))), {**held, **values})
        recorded = cast(CursorResult[Any], changed).rowcount > 0
        if recorded:
            append(
                session,
                company_id=delivery.company_id,
                customer_id=delivery.customer_id,
                actor=Actor.SYSTEM,
                actor_id="reminders",
                action=action,
                subject_type="reminder_message",
                subject_id=delivery.message_id,
                details=details,
            )
    if not recorded:
        log.warning("reminder %s was taken over by another worker", delivery.message_id)
        return ""
    return action


def _held() -> ColumnElement[bool]:
    """The row as this worker still holds it (the statements below are built once)."""
    m = _MESSAGES.c
    return (
        (m.id == bindparam("held_id"))
        & (m.status == MessageStatus.SENDING.value)
        & (m.claimed_by == bindparam("held_by"))
    )


@functools.cache
def _put_back() -> Update:
    return (
        update(_MESSAGES)
        .where(_held())
        .values(
            status=MessageStatus.PENDING.value,
            claimed_until=None,
            next_attempt_at=bindparam("next_attempt_at"),
            attempts=_MESSAGES.c.attempts - 1,
        )
    )


@functools.cache
def _update(columns: tuple[str, ...]) -> Update:
    return update(_MESSAGES).where(_held()).values({c: bindparam(c) for c in columns})


def _record_postgresql(
    session: Session,
    worker_id: str,
    delivery: Delivery,
    action: str,
    values: dict[str, Any],
    details: dict[str, object],
    now: dt.datetime,
) -> bool:
    """Update, timeline row and webhook event in one statement (one round trip); the
    commit does not wait for the disk (``synchronous_commit`` off for this transaction):
    a worker killed after it keeps it, only a database crash in the next fraction of a
    second could forget it, and the message would go again with the same Message-ID."""
    columns = ("status", "claimed_until", "sent_at", "external_id", "last_error")
    assignments = [f"{c} = :{c}" for c in columns if c in values]
    if "next_attempt_at" in values:
        assignments.append("next_attempt_at = :next_attempt_at")
    timeline = {
        "company_id": delivery.company_id,
        "customer_id": delivery.customer_id,
        "occurred_at": now,
        "actor": str(Actor.SYSTEM),
        "actor_id": "reminders",
        "action": action,
        "subject_type": "reminder_message",
        "subject_id": str(delivery.message_id),
        "details": details,
    }
    hooks = rows_for_timeline([timeline])
    hook_sql = ""
    params: dict[str, Any] = {
        **values,
        "id": delivery.message_id,
        "worker": worker_id,
        **{f"t_{k}": v for k, v in timeline.items()},
    }
    params["t_details"] = json.dumps(details)
    if hooks:
        hook = hooks[0]
        params.update({f"h_{k}": v for k, v in hook.items()})
        params["h_data"] = json.dumps(hook["data"])
        hook_sql = (
            ", hook AS (INSERT INTO outgoing_events (company_id, event_id, type, occurred_at, "
            "customer_id, subject_type, subject_id, data) SELECT :h_company_id, :h_event_id, "
            ":h_type, :h_occurred_at, :h_customer_id, :h_subject_type, :h_subject_id, "
            "CAST(:h_data AS JSON) FROM done WHERE EXISTS (SELECT 1 FROM webhook_endpoints e "
            "WHERE e.company_id = :h_company_id AND e.enabled))"
        )
    statement = text(
        f"WITH done AS (UPDATE reminder_messages SET {', '.join(assignments)} "  # noqa: S608
        "WHERE id = :id AND status = 'sending' AND claimed_by = :worker RETURNING id), "
        "timeline AS (INSERT INTO timeline_events (company_id, customer_id, occurred_at, actor, "
        "actor_id, action, subject_type, subject_id, details) SELECT :t_company_id, "
        ":t_customer_id, :t_occurred_at, :t_actor, :t_actor_id, :t_action, :t_subject_type, "
        f":t_subject_id, CAST(:t_details AS JSON) FROM done){hook_sql} "
        "SELECT count(*), set_config('synchronous_commit', 'off', true) FROM done"
    )
    return bool(session.execute(statement, params).scalar())
