"""The outbox at a glance, for the back office, the worker's log and the health check."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from portal.reminders.models import Channel, MessageStatus, ReminderMessage
from portal.timeline.models import Actor
from portal.timeline.service import record_many

STUCK = (MessageStatus.FAILED,)


@dataclass(frozen=True)
class OutboxStatus:
    waiting: int  # pending or being sent, due or not
    due: int  # of those, due now (waiting for a worker)
    failed: int  # gave up after the last attempt
    bounced: int
    oldest_due_at: dt.datetime | None  # since when the longest-waiting due message waits
    last_sent_at: dt.datetime | None

    def stalled(self, now: dt.datetime, stall_seconds: int) -> bool:
        """Messages have been due for the whole window and nothing left in it."""
        window = now - dt.timedelta(seconds=stall_seconds)
        if self.oldest_due_at is None or self.oldest_due_at > window:
            return False
        return self.last_sent_at is None or self.last_sent_at < window


def outbox_status(session: Session, company_id: int, now: dt.datetime) -> OutboxStatus:
    m = ReminderMessage
    live = (MessageStatus.PENDING, MessageStatus.SENDING)
    counts = dict(
        session.execute(
            select(m.status, func.count())
            .where(
                m.company_id == company_id,
                m.status.in_((*live, MessageStatus.FAILED, MessageStatus.BOUNCED)),
            )
            .group_by(m.status)
        ).all()
    )
    # "Due" includes leases that ran out: a message whose worker died waits too.
    due = (m.status == MessageStatus.PENDING) & (m.next_attempt_at <= now)
    expired = (m.status == MessageStatus.SENDING) & (m.claimed_until < now)
    due_count, oldest = session.execute(
        select(func.count(), func.min(m.next_attempt_at)).where(
            m.company_id == company_id, due | expired
        )
    ).one()
    last_sent = session.scalar(
        select(func.max(m.sent_at)).where(
            m.company_id == company_id,
            m.status == MessageStatus.SENT,
            m.channel != Channel.TASK,
        )
    )
    return OutboxStatus(
        waiting=sum(int(counts.get(s, 0)) for s in live),
        due=int(due_count or 0),
        failed=int(counts.get(MessageStatus.FAILED, 0)),
        bounced=int(counts.get(MessageStatus.BOUNCED, 0)),
        oldest_due_at=oldest,
        last_sent_at=last_sent,
    )


def failed_messages(session: Session, company_id: int, limit: int = 50) -> list[ReminderMessage]:
    return list(
        session.scalars(
            select(ReminderMessage)
            .where(
                ReminderMessage.company_id == company_id,
                ReminderMessage.status == MessageStatus.FAILED,
            )
            .order_by(ReminderMessage.id.desc())
            .limit(limit)
        )
    )


def retry_failed(session: Session, company_id: int, user_id: int, now: dt.datetime) -> int:
    """Put every failed message back in the queue, with fresh attempts; one
    ``reminder.requeued`` event each. Bounced ones stay (the address refused them)."""
    rows = session.execute(
        update(ReminderMessage)
        .where(
            ReminderMessage.company_id == company_id,
            ReminderMessage.status == MessageStatus.FAILED,
        )
        .values(
            status=MessageStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            claimed_until=None,
            claimed_by=None,
        )
        .returning(ReminderMessage.id, ReminderMessage.customer_id, ReminderMessage.step)
        .execution_options(synchronize_session=False)
    ).all()
    record_many(
        session,
        [
            {
                "company_id": company_id,
                "customer_id": customer_id,
                "actor": Actor.USER,
                "actor_id": str(user_id),
                "action": "reminder.requeued",
                "subject_type": "reminder_message",
                "subject_id": message_id,
                "details": {"step": step},
            }
            for message_id, customer_id, step in rows
        ],
    )
    return len(rows)
