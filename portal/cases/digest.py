"""Debtor messages: how many a debtor may post, and one email per case per window for staff.

A debtor may post ``case_messages_per_hour`` messages in one case and
``customer_messages_per_hour`` across their cases (``check_message_rate``; the case and
customer rows are locked first, so concurrent posts are counted one after the other).

The case's assignee is told of the debtor's messages at most once per
``staff_digest_minutes``: the first message after a quiet window is emailed at once;
the ones after it wait, and ``portal worker`` sends them as one digest once the window
has passed (``deliver_digests``). Each email covers the messages after
``cases.staff_notified_message_id`` and moves that column to the last one, with
``staff_notified_at``, in the transaction that claims them: a rerun, or a second worker,
finds nothing left to tell.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence

from jinja2 import Environment
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from portal import clock
from portal.cases.models import Case, CaseMessage
from portal.cases.notify import CaseEmail, send_all, staff_email
from portal.cases.service import CaseError
from portal.customers.models import Customer
from portal.mail.sender import Mailer
from portal.settings import Settings
from portal.timeline.models import Actor

log = logging.getLogger(__name__)

RATE_WINDOW = dt.timedelta(hours=1)
# What a digest quotes of each message (the whole thread is in the back office).
QUOTE_MAX = 1000
BATCH = 50


def check_message_rate(
    session: Session, case: Case, *, now: dt.datetime, per_case: int, per_customer: int
) -> None:
    """Raise CaseError(TOO_MANY_MESSAGES) if the debtor has posted their share this hour."""
    session.execute(select(Case.id).where(Case.id == case.id).with_for_update())
    session.execute(select(Customer.id).where(Customer.id == case.customer_id).with_for_update())
    recent = (
        select(func.count())
        .select_from(CaseMessage)
        .join(Case, Case.id == CaseMessage.case_id)
        .where(CaseMessage.author == Actor.DEBTOR, CaseMessage.created_at > now - RATE_WINDOW)
    )
    in_case = session.scalar(recent.where(CaseMessage.case_id == case.id)) or 0
    if in_case >= per_case:
        raise CaseError(CaseError.TOO_MANY_MESSAGES)
    for_customer = session.scalar(recent.where(Case.customer_id == case.customer_id)) or 0
    if for_customer >= per_customer:
        raise CaseError(CaseError.TOO_MANY_MESSAGES)


def mark_told(session: Session, case: Case) -> None:
    """The messages so far are told by the case's own email (a new dispute, a plan)."""
    session.flush()
    last = session.scalar(
        select(func.max(CaseMessage.id)).where(
            CaseMessage.case_id == case.id, CaseMessage.author == Actor.DEBTOR
        )
    )
    case.staff_notified_message_id = last


def claim_untold(
    session: Session, case_id: int, *, now: dt.datetime, window: dt.timedelta
) -> list[CaseMessage]:
    """The debtor's messages the assignee has not been told of, if the window since the last
    email has passed; they are marked told in this transaction. Else an empty list."""
    row = session.execute(
        select(Case.staff_notified_message_id, Case.staff_notified_at)
        .where(Case.id == case_id)
        .with_for_update()
    ).one()
    told_up_to, told_at = row
    if told_at is not None and told_at > now - window:
        return []
    messages = list(
        session.scalars(
            select(CaseMessage)
            .where(
                CaseMessage.case_id == case_id,
                CaseMessage.author == Actor.DEBTOR,
                CaseMessage.id > (told_up_to or 0),
            )
            .order_by(CaseMessage.id)
        )
    )
    if messages:
        session.execute(
            update(Case)
            .where(Case.id == case_id)
            .values(staff_notified_message_id=messages[-1].id, staff_notified_at=now)
        )
    return messages


def messages_email(
    session: Session, settings: Settings, case: Case, messages: Sequence[CaseMessage]
) -> CaseEmail | None:
    """The assignee's email listing ``messages``; None if the case has no active assignee."""
    email = staff_email(session, settings, case, "message")
    if email is None or not messages:
        return None
    quoted = [(m.created_at, m.body[:QUOTE_MAX]) for m in messages]
    return CaseEmail(
        email.to, email.language, "case_messages", {**email.context, "messages": quoted}
    )


def tell_now(session: Session, settings: Settings, case: Case) -> CaseEmail | None:
    """After a debtor's message: the email to send at once, or None (it waits for the digest)."""
    if case.assignee_id is None:
        return None
    window = dt.timedelta(minutes=settings.cases.staff_digest_minutes)
    messages = claim_untold(session, case.id, now=clock.now(), window=window)
    return messages_email(session, settings, case, messages)


def _due_cases(session: Session, now: dt.datetime, window: dt.timedelta) -> list[int]:
    untold = (
        select(CaseMessage.id)
        .where(
            CaseMessage.case_id == Case.id,
            CaseMessage.author == Actor.DEBTOR,
            CaseMessage.id > func.coalesce(Case.staff_notified_message_id, 0),
        )
        .exists()
    )
    query = (
        select(Case.id)
        .where(
            Case.assignee_id.is_not(None),
            or_(Case.staff_notified_at.is_(None), Case.staff_notified_at <= now - window),
            untold,
        )
        .order_by(Case.id)
        .limit(BATCH)
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(query))


def deliver_digests(
    session_factory: Callable[[], Session],
    templates: Environment,
    mailer: Mailer,
    settings: Settings,
) -> int:
    """Send every digest owed (a batch per transaction, mailed after its commit); returns
    how many were sent."""
    window = dt.timedelta(minutes=settings.cases.staff_digest_minutes)
    sent = 0
    while True:
        now = clock.now()
        with session_factory() as session, session.begin():
            emails = []
            for case_id in _due_cases(session, now, window):
                case = session.get(Case, case_id)
                assert case is not None
                messages = claim_untold(session, case_id, now=now, window=window)
                emails.append(messages_email(session, settings, case, messages))
            ready = [e for e in emails if e is not None]
            batch_size = len(emails)
        send_all(templates, mailer, settings, ready)
        sent += len(ready)
        if batch_size < BATCH:
            return sent
