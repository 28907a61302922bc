"""The checks a message passes at send time besides its invoices: the company's freeze,
quiet periods and cap (portal.reminders.policy), and whether a promise was broken since
the customer's last message (the message then says so)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.cases.models import Case
from portal.customers.models import Customer
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


def over_cap(session: Session, message: ReminderMessage, policy: Policy, now: dt.datetime) -> bool:
    """Would this message take the customer past the cap? Sent and in-flight messages
    count; the customer's row is locked first on PostgreSQL so two workers claiming two
    messages of one customer check one after the other."""
    if message.channel is Channel.TASK:
        return False
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            select(Customer.id).where(Customer.id == message.customer_id).with_for_update()
        )
    counted = counted_messages(
        session, [message.customer_id], now, pending=False, excluding=message.id
    )
    return counted.get(message.customer_id, 0) >= policy.monthly_cap


def promise_broken_since_last_message(session: Session, customer_id: int) -> dt.date | None:
    """The promised date of a promise broken after the customer's last message, if any."""
    last_sent = session.scalar(
        select(func.max(ReminderMessage.sent_at)).where(
            ReminderMessage.customer_id == customer_id,
            ReminderMessage.status == MessageStatus.SENT,
            ReminderMessage.channel != Channel.TASK,
        )
    )
    query = (
        select(TimelineEvent.subject_id)
        .where(
            TimelineEvent.customer_id == customer_id,
            TimelineEvent.action == "promise.broken",
            TimelineEvent.subject_type == "case",
        )
        .order_by(TimelineEvent.occurred_at.desc(), TimelineEvent.id.desc())
        .limit(1)
    )
    if last_sent is not None:
        query = query.where(TimelineEvent.occurred_at > last_sent)
    case_id = session.scalar(query)
    case = session.get(Case, int(case_id)) if case_id else None
    return case.promised_date if case is not None and case.customer_id == customer_id else None
