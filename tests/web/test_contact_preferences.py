"""Contacts' channel preferences from the providers: an SMS "STOP" (the provider's inbound
webhook, signed) opts the number out of texts, a delivery status notification (RFC 3464)
flags a bounced address; the next channel is used, and letters still go by letter."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from portal.company.models import Company
from portal.customers.models import Contact, Customer
from portal.invoices.models import InvoiceStatus
from portal.reminders import planning
from portal.reminders.models import Channel, MessageStatus, ReminderMessage
from portal.reminders.outbox import deliver_due
from portal.reminders.policy import load_policy
from portal.reminders.preferences import parse_dsn
from portal.reminders.worker import calendar_for
from portal.settings import Settings, SmsSettings
from portal.timeline.models import TimelineEvent
from portal.web.app import create_app
from portal.web.inbound import twilio_signature
from tests.factories import make_customer, make_invoice
from tests.reminders_helpers import at, book, context, reminder_settings

TOKEN = "twilio-auth-token"
DSN_SECRET = "dsn-secret-for-tests"
PHONE = "+33611223344"


@pytest.fixture
def s(settings: Settings, tmp_path: Path) -> Settings:
    return dataclasses.replace(
        reminder_settings(settings, tmp_path),
        sms=SmsSettings(
            provider="twilio", account_sid="AC1", auth_token=TOKEN, sender="+33100000000"
        ),
        dsn_secret=DSN_SECRET,
    )


@pytest.fixture
def provider(
    s: Settings, db: Session, company: Company, session_factory: sessionmaker[Session]
) -> Iterator[TestClient]:
    db.commit()
    with TestClient(
        create_app(s, session_factory=session_factory), follow_redirects=False
    ) as client:
        yield client


@pytest.fixture
def customer(db: Session, company: Company) -> Customer:
    at("2026-03-10 10:00")
    customer = make_customer(db, company, email="billing@dupont.example")
    customer.contacts[0].phone = PHONE
    db.commit()
    return customer


def _deliver(
    db: Session, company: Company, s: Settings, factory: sessionmaker[Session]
) -> ReminderMessage:
    db.commit()
    planning.run(
        db, company.id, book(s), calendar_for(s), policy=load_policy(db, company.id, s.reminders)
    )
    db.commit()
    deliver_due(factory, context(s, any_time=True), "prefs")
    db.expire_all()
    message = db.scalars(select(ReminderMessage).order_by(ReminderMessage.id.desc())).first()
    assert message is not None
    return message


def _sent_by(db: Session, message: ReminderMessage) -> str:
    event = db.scalar(
        select(TimelineEvent).where(
            TimelineEvent.action == "reminder.sent", TimelineEvent.subject_id == str(message.id)
        )
    )
    assert event is not None
    return str(event.details["sent_by"])


def test_stop_by_text_opts_the_number_out_and_the_reminder_goes_by_email(
    provider: TestClient,
    db: Session,
    company: Company,
    customer: Customer,
    s: Settings,
    session_factory: sessionmaker[Session],
) -> None:
    url = "http://testserver/webhooks/sms/inbound"
    form = {"From": PHONE, "Body": "Stop", "MessageSid": "SM1"}
    forged = provider.post(url, data=form, headers={"X-Twilio-Signature": "bad"})
    assert forged.status_code == 403
    hello = {"From": PHONE, "Body": "Hello", "MessageSid": "SM0"}
    provider.post(
        url, data=hello, headers={"X-Twilio-Signature": twilio_signature(TOKEN, url, hello)}
    )
    db.expire_all()
    assert db.get(Contact, customer.contacts[0].id).accepts_sms  # type: ignore[union-attr]
    answer = provider.post(
        url, data=form, headers={"X-Twilio-Signature": twilio_signature(TOKEN, url, form)}
    )
    assert answer.status_code == 200
    db.expire_all()
    contact = db.get(Contact, customer.contacts[0].id)
    assert contact is not None
    assert not contact.accepts_sms
    make_invoice(db, customer, due_in_days=-8)  # the SMS step of the standard scenario
    message = _deliver(db, company, s, session_factory)
    assert (message.channel, message.status) == (Channel.SMS, MessageStatus.SENT)
    assert message.recipient == "billing@dupont.example"
    assert _sent_by(db, message) == "email"


def _dsn(recipient: str, message_id: str, action: str = "failed", status: str = "5.1.1") -> bytes:
    return (
        "From: MAILER-DAEMON@mx.example\r\n"
        "To: relances@relance.example\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n'
        "\r\n--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: {action}\r\nStatus: {status}\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n"
        "\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {message_id}\r\nSubject: Relance\r\n"
        "\r\n--B--\r\n"
    ).encode()


def test_a_delivery_status_notification_parses_failed_recipients_only() -> None:
    [bounce] = parse_dsn(_dsn("Billing@Dupont.example", "<reminder-42.2026-03-10@testserver>"))
    assert (bounce.recipient, bounce.status, bounce.message_id) == (
        "billing@dupont.example",
        "5.1.1",
        42,
    )
    assert parse_dsn(_dsn("a@b.example", "<x@y>", action="delayed", status="4.4.7")) == []
    assert parse_dsn(b"Subject: hello\r\n\r\nnot a report") == []


def test_a_bounced_address_is_flagged_and_the_next_reminder_goes_by_text(
    provider: TestClient,
    db: Session,
    company: Company,
    customer: Customer,
    s: Settings,
    session_factory: sessionmaker[Session],
) -> None:
    settled = make_invoice(db, customer, due_in_days=-1)
    first = _deliver(db, company, s, session_factory)
    assert (first.channel, first.status, first.recipient) == (
        Channel.EMAIL,
        MessageStatus.SENT,
        "billing@dupont.example",
    )
    dsn = _dsn("billing@dupont.example", f"<reminder-{first.id}.{first.cycle}@testserver>")
    assert provider.post("/webhooks/email/dsn", content=dsn).status_code == 401
    answer = provider.post(
        "/webhooks/email/dsn", content=dsn, headers={"Authorization": f"Bearer {DSN_SECRET}"}
    )
    assert answer.status_code == 200
    db.expire_all()
    contact = db.get(Contact, customer.contacts[0].id)
    assert contact is not None
    assert contact.email_bounced_at is not None
    db.refresh(first)
    assert first.status is MessageStatus.BOUNCED
    # The overdue email of another invoice: the address bounced, a text goes instead.
    at("2026-03-20 10:00")
    db.refresh(settled)
    settled.status = InvoiceStatus.CANCELLED
    make_invoice(db, customer, due_in_days=-1)
    second = _deliver(db, company, s, session_factory)
    assert second.channel is Channel.EMAIL
    assert second.recipient == PHONE


def test_legal_notices_still_go_by_letter_whatever_the_preferences(
    db: Session,
    company: Company,
    customer: Customer,
    s: Settings,
    session_factory: sessionmaker[Session],
) -> None:
    for contact in customer.contacts:
        contact.accepts_letters = False
        contact.accepts_email = False
        contact.accepts_sms = False
    make_invoice(db, customer, due_in_days=-31)
    letter = _deliver(db, company, s, session_factory)
    assert (letter.channel, letter.status) == (Channel.LETTER, MessageStatus.SENT)
