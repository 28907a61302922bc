"""The checks a message passes at send time besides its invoices: the company's freeze,
quiet periods and cap (portal.reminders.policy), and whether a promise was broken since
the customer's last message (the message then says so)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, aliased

from portal.cases.models import Case
from portal.reminders.models import Channel, MessageStatus, ReminderMessage
from portal.reminders.policy import Policy, counted_messages
from portal.reminders.schedule import BusinessCalendar
from portal.timeline.models import TimelineEvent


def after_quiet_period(
    policy: Policy, calendar: BusinessCalendar, timezone: str, now: dt.datetime
) -> dt.datetime | None:
    """When a message due now during a quiet period may leave (the first business instant
    after it), or None outside quiet periods."""
    zone = ZoneInfo(timezone)
    today = now.astimezone(zone).date()
    if not policy.is_quiet(today):
        return None
    reopens = dt.datetime.combine(policy.quiet_until(today), dt.time(0), tzinfo=zone)
    return calendar.next_send_time(reopens, timezone)


def cap_counts(
    session: Session, customer_ids: Collection[int], batch_ids: Collection[int], now: dt.datetime
) -> dict[int, int]:
    """Per customer of a batch, the messages that count towards the cap besides the batch's
    own (sent in the window, in flight): one query. On PostgreSQL the customers' rows were
    locked first (``recheck.load_batch``), so two workers claiming two messages of one
    customer count one after the other; the claim adds the batch's messages as it takes
    them (``Batch.take``)."""
    return counted_messages(session, customer_ids, now, pending=False, excluding=batch_ids)


def promises_broken(session: Session, customer_ids: Collection[int]) -> dict[int, dt.date]:
    """Per customer of a batch, the promised date of the latest promise broken after the
    customer's last message, when there is one: one query (and one for the cases, when
    any promise was broken)."""
    if not customer_ids:
        return {}
    m = aliased(ReminderMessage)
    last_sent = (
        select(func.max(m.sent_at))
        .where(
            m.customer_id == TimelineEvent.customer_id,
            m.status == MessageStatus.SENT,
            m.channel != Channel.TASK,
        )
        .scalar_subquery()
    )
    rows = session.execute(
        select(TimelineEvent.customer_id, TimelineEvent.subject_id)
        .where(
            TimelineEvent.customer_id.in_(sorted(customer_ids)),
            TimelineEvent.action == "promise.broken",
            TimelineEvent.subject_type == "case",
            or_(last_sent.is_(None), TimelineEvent.occurred_at > last_sent),
        )
        .order_by(
            TimelineEvent.customer_id, TimelineEvent.occurred_at.desc(), TimelineEvent.id.desc()
        )
    ).all()
    latest: dict[int, int] = {}  # customer -> the case of its latest broken promise
    for customer_id, subject_id in rows:
        if customer_id is not None and subject_id:
            latest.setdefault(customer_id, int(subject_id))
    if not latest:
        return {}
    cases = session.execute(
        select(Case.id, Case.customer_id, Case.promised_date).where(
            Case.id.in_(sorted(set(latest.values())))
        )
    )
    by_id = {int(case_id): (int(owner), promised) for case_id, owner, promised in cases}
    broken: dict[int, dt.date] = {}
    for customer_id, case_id in latest.items():
        owner, promised = by_id.get(case_id, (0, None))
        if owner == customer_id and promised is not None:
            broken[customer_id] = promised
    return broken
