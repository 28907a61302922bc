"""Delivery in batches: one SMTP session for a batch, and one refused recipient in the
middle of it is recorded on its own (a retry for 4xx, a bounce for 5xx) while the others
are sent."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from portal import clock
from portal.company.models import Company
from portal.payments.models import PaymentMethod
from portal.payments.service import record_payment
from portal.reminders import planning
from portal.reminders.models import MessageStatus, ReminderMessage
from portal.reminders.outbox import claim, deliver_round, lease, prerender, record_outcome
from portal.reminders.sending import DEFERRED
from portal.reminders.status import outbox_status, retry_failed
from portal.reminders.worker import calendar_for
from portal.settings import Settings
from portal.timeline.models import TimelineEvent
from tests.factories import make_customer, make_invoice
from tests.mail_sink import free_port
from tests.reminders_helpers import at, book, context, reminder_settings

REFUSED = "refuse-me@example.com"


class RefusingOne:
    """Accepts every recipient but one; notes the SMTP sessions and what arrived."""

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.peers: set[Any] = set()
        self.delivered: list[str] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        self.peers.add(session.peer)
        if address == REFUSED:
            return self.reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.delivered.extend(envelope.rcpt_tos)
        return "250 OK"


@pytest.mark.parametrize(
    ("reply", "status", "action"),
    [
        ("450 4.2.1 Mailbox busy, try later", MessageStatus.PENDING, "reminder.retry"),
        ("550 5.1.1 No such user", MessageStatus.BOUNCED, "reminder.bounced"),
    ],
)
def test_one_refused_recipient_in_a_batch_is_recorded_alone_and_the_others_are_sent(
    db: Session,
    company: Company,
    settings: Settings,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    reply: str,
    status: MessageStatus,
    action: str,
) -> None:
    handler = RefusingOne(reply)
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        s = reminder_settings(settings, tmp_path, port)
        at("2026-03-10 10:00")
        emails = [f"ap{i}@example.com" for i in range(3)] + [REFUSED] + ["ap9@example.com"]
        for email in emails:
            make_invoice(db, make_customer(db, company, email=email), due_in_days=-2)
        db.commit()
        planning.run(db, company.id, book(s), calendar_for(s))
        db.commit()
        result = deliver_round(session_factory, context(s), "batch-test", limit=50)
    finally:
        controller.stop()
    db.expire_all()
    by_recipient = {m.recipient: m for m in db.scalars(select(ReminderMessage))}
    refused = by_recipient.pop(REFUSED)
    assert refused.status is status
    assert reply[:3] in (refused.last_error or "")
    assert {m.status for m in by_recipient.values()} == {MessageStatus.SENT}
    assert sorted(handler.delivered) == sorted(by_recipient)  # the others arrived, once each
    assert len(handler.peers) == 1  # one SMTP session for the whole batch
    assert (result.claimed, result.sent) == (5, 4)
    assert (result.retried, result.failed) == (
        (1, 0) if status is MessageStatus.PENDING else (0, 1)
    )
    events = Counter(
        db.scalars(
            select(TimelineEvent.action).where(TimelineEvent.subject_type == "reminder_message")
        )
    )
    assert events["reminder.sent"] == 4
    assert events[action] == 1
    if status is MessageStatus.PENDING:
        assert refused.attempts == 1
        assert refused.next_attempt_at > clock.now()


def test_the_outbox_status_tells_a_stalled_queue_and_retry_failed_requeues(
    db: Session, company: Company, settings: Settings, tmp_path: Path
) -> None:
    s = reminder_settings(settings, tmp_path)
    now = at("2026-03-10 10:00")
    for _ in range(3):
        make_invoice(db, make_customer(db, company), due_in_days=-2)
    db.commit()
    planning.run(db, company.id, book(s), calendar_for(s), any_time=True)
    db.commit()
    status = outbox_status(db, company.id, now)
    assert (status.waiting, status.due, status.failed) == (3, 3, 0)
    assert status.last_sent_at is None
    assert not status.stalled(now, 900)  # due for no time yet
    later = now + dt.timedelta(seconds=901)
    assert outbox_status(db, company.id, later).stalled(later, 900)  # nothing left meanwhile
    first, *_ = db.scalars(select(ReminderMessage).order_by(ReminderMessage.id))
    first.status, first.sent_at = MessageStatus.SENT, later
    second = db.scalars(select(ReminderMessage).order_by(ReminderMessage.id)).all()[1]
    second.status, second.attempts = MessageStatus.FAILED, 5
    db.flush()
    status = outbox_status(db, company.id, later)
    assert not status.stalled(later, 900)  # something left within the window
    assert (status.waiting, status.failed, status.last_sent_at) == (1, 1, later)
    assert retry_failed(db, company.id, user_id=1, now=later) == 1
    db.expire_all()
    assert (second.status, second.attempts) == (MessageStatus.PENDING, 0)
    assert "reminder.requeued" in set(db.scalars(select(TimelineEvent.action)))


def test_a_message_not_attempted_within_the_lease_goes_back_without_counting_an_attempt(
    db: Session, company: Company, settings: Settings, tmp_path: Path
) -> None:
    s = reminder_settings(settings, tmp_path)
    at("2026-03-10 10:00")
    make_invoice(db, make_customer(db, company), due_in_days=-2)
    db.commit()
    planning.run(db, company.id, book(s), calendar_for(s))
    db.commit()
    (delivery,) = claim(db, context(s), "lease-test")
    db.commit()
    assert db.scalars(select(ReminderMessage.attempts)).one() == 1
    record_outcome(db, s, "another-worker", delivery, DEFERRED)  # not its row: nothing changes
    db.commit()
    db.expire_all()
    assert db.scalars(select(ReminderMessage.attempts)).one() == 1
    assert record_outcome(db, s, "lease-test", delivery, DEFERRED) == "deferred"
    db.commit()
    db.expire_all()
    message = db.scalars(select(ReminderMessage)).one()
    assert (message.status, message.attempts, message.claimed_until) == (
        MessageStatus.PENDING,
        0,
        None,
    )
    assert message.next_attempt_at <= clock.now()


def test_a_batch_rendered_ahead_of_its_claim_is_checked_again_and_a_payment_meanwhile_wins(
    db: Session, company: Company, settings: Settings, tmp_path: Path
) -> None:
    """SQLite claims in steps (lease, render from a read, claim under the write lock): a
    text rendered ahead is sent only when the claim, reading again, builds the same."""
    s = reminder_settings(settings, tmp_path)
    at("2026-03-10 10:00")
    quiet, paying = make_customer(db, company), make_customer(db, company)
    make_invoice(db, quiet, due_in_days=-2)
    settled = make_invoice(db, paying, due_in_days=-2)
    kept = make_invoice(db, paying, due_in_days=-3)
    db.commit()
    planning.run(db, company.id, book(s), calendar_for(s))
    db.commit()
    numbers = settled.number, kept.number
    customer_ids = quiet.id, paying.id
    ctx = context(s)
    ids = lease(db, ctx, "steps")
    db.commit()
    assert len(ids) == 2
    assert lease(db, ctx, "another") == []  # leased: no other worker takes them
    db.commit()
    ahead = prerender(db, ctx, ids)
    db.rollback()
    of = dict(db.execute(select(ReminderMessage.customer_id, ReminderMessage.id)).all())
    assert numbers[0] in ahead[of[customer_ids[1]]].text
    record_payment(
        db,
        paying,
        amount_minor=settled.remaining_minor,
        currency=settled.currency,
        method=PaymentMethod.TRANSFER,
        provider="test",
        provider_reference="meanwhile",
        invoice_ids=[settled.id],
    )
    db.commit()
    db.expunge_all()
    assert claim(db, ctx, "another", leased=ids, rendered=ahead) == []  # not its rows
    deliveries = {d.customer_id: d for d in claim(db, ctx, "steps", leased=ids, rendered=ahead)}
    db.commit()
    quiet_id, paying_id = customer_ids
    assert set(deliveries) == {quiet_id, paying_id}
    assert deliveries[quiet_id].text is ahead[of[quiet_id]].text  # nothing changed: as rendered
    assert numbers[1] in deliveries[paying_id].text
    assert numbers[0] not in deliveries[paying_id].text
    assert db.scalars(select(ReminderMessage.attempts)).all() == [1, 1]
