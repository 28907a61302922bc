"""Manual actions on a customer's page and the reminder limits, by role: send a reminder
now, log a call, schedule a follow-up, the cap and quiet periods, the freeze switch."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from portal.cases.models import Case, CaseKind
from portal.company.models import Company
from portal.customers.models import Customer
from portal.invoices.models import Invoice
from portal.reminders import planning
from portal.reminders.models import MessageStatus, ReminderMessage, ReminderTask, TaskKind
from portal.reminders.outbox import deliver_due
from portal.reminders.policy import load_policy
from portal.reminders.worker import calendar_for
from portal.settings import Settings
from portal.timeline.models import TimelineEvent
from portal.users.models import Role
from tests.factories import make_customer, make_invoice
from tests.reminders_helpers import at, book, context, reminder_settings
from tests.web.test_backoffice import _cheap_hashing, log_in, make_user

__all__ = ["_cheap_hashing"]  # argon2 at test-sized parameters, for every test here


@pytest.fixture(autouse=True)
def _in_english(client: TestClient) -> None:
    client.headers["Accept-Language"] = "en"  # the messages below are the English ones


@pytest.fixture
def customer(db: Session, company: Company) -> Customer:
    at("2026-03-10 10:00")
    customer = make_customer(db, company, name="Dupont SARL", language="en")
    make_invoice(db, customer, due_in_days=-12, number="F-MAN-1", amount_minor=12_345)
    db.commit()
    return customer


def _token(html: str) -> str:
    found = re.search(r'name="token" value="([0-9a-f]{16})"', html)
    assert found, html
    return found.group(1)


def test_a_manual_reminder_is_previewed_edited_and_goes_through_the_outbox_once(
    client: TestClient,
    db: Session,
    customer: Customer,
    settings: Settings,
    tmp_path: Path,
    session_factory: sessionmaker[Session],
) -> None:
    log_in(client, make_user(db, Role.CREDIT_MANAGER).email)
    page = client.get(f"/admin/customers/{customer.id}")
    assert f"/admin/customers/{customer.id}/remind" in page.text
    preview = client.get(
        f"/admin/customers/{customer.id}/remind",
        params={"channel": "email", "template": "reminder_overdue", "preview": "1"},
    )
    assert preview.status_code == 200
    assert "F-MAN-1" in preview.text
    assert "{link}" in preview.text
    form = {
        "channel": "email",
        "template": "reminder_overdue",
        "token": _token(preview.text),
        "subject": "About invoice F-MAN-1",
        "text": "Dear customer,\n\nPlease settle F-MAN-1 here: {link}\n\nThanks",
    }
    first = client.post(f"/admin/customers/{customer.id}/remind", data=form)
    again = client.post(f"/admin/customers/{customer.id}/remind", data=form)  # a double click
    assert first.status_code == again.status_code == 303
    assert first.headers["location"].endswith("?done=reminder-queued")
    [message] = db.scalars(
        select(ReminderMessage).where(ReminderMessage.customer_id == customer.id)
    )
    assert message.status is MessageStatus.PENDING
    s = reminder_settings(settings, tmp_path)
    db.commit()
    assert deliver_due(session_factory, context(s, any_time=True), "web-test") == 1
    assert deliver_due(session_factory, context(s, any_time=True), "web-test") == 0
    db.expire_all()
    db.refresh(message)
    assert message.status is MessageStatus.SENT
    assert message.subject == "About invoice F-MAN-1"
    assert re.search(
        r"Please settle F-MAN-1 here: http://testserver/l/\S+", message.body_text or ""
    )
    assert "{link}" not in (message.body_html or "")
    actions = list(
        db.scalars(
            select(TimelineEvent.action)
            .where(TimelineEvent.customer_id == customer.id)
            .order_by(TimelineEvent.id)
        )
    )
    assert actions[-3:] == ["reminder.queued", "link.issued", "reminder.sent"]
    # The scenario is not moved along by a manual message.
    db.commit()
    planned = [
        m for p in planning.plan(db, customer.company_id, book(s), calendar_for(s)) for m in p
    ]
    assert planned == []  # the minimum gap after a message, manual or not


def test_a_too_long_text_message_is_refused_next_to_the_field(
    client: TestClient, db: Session, customer: Customer
) -> None:
    log_in(client, make_user(db, Role.ADMIN).email)
    preview = client.get(
        f"/admin/customers/{customer.id}/remind",
        params={"channel": "sms", "template": "reminder_overdue", "preview": "1"},
    )
    response = client.post(
        f"/admin/customers/{customer.id}/remind",
        data={
            "channel": "sms",
            "template": "reminder_overdue",
            "token": _token(preview.text),
            "text": "x" * 200 + " {link}",
        },
    )
    assert response.status_code == 400
    assert 'id="f-text-error"' in response.text
    assert db.scalars(select(ReminderMessage)).all() == []


def test_a_manual_reminder_past_the_cap_is_refused(
    client: TestClient, db: Session, customer: Customer
) -> None:
    user = make_user(db, Role.CREDIT_MANAGER)
    log_in(client, user.email)
    client.post("/admin/reminders/policy", data={"monthly_cap": "1", "quiet_periods": ""})
    tokens = []
    for _ in range(2):
        preview = client.get(
            f"/admin/customers/{customer.id}/remind",
            params={"channel": "email", "template": "reminder_overdue", "preview": "1"},
        )
        tokens.append(_token(preview.text))
    data = {"channel": "email", "template": "reminder_overdue", "subject": "S", "text": "T {link}"}
    assert (
        client.post(
            f"/admin/customers/{customer.id}/remind", data={**data, "token": tokens[0]}
        ).status_code
        == 303
    )
    refused = client.post(
        f"/admin/customers/{customer.id}/remind", data={**data, "token": tokens[1]}
    )
    assert refused.status_code == 400
    assert "the most messages allowed in 30 days" in refused.text
    assert len(db.scalars(select(ReminderMessage)).all()) == 1


def test_a_viewer_can_neither_send_nor_log_a_call(
    client: TestClient, db: Session, customer: Customer
) -> None:
    log_in(client, make_user(db, Role.VIEWER).email)
    assert client.get(f"/admin/customers/{customer.id}/remind").status_code == 403
    posted = client.post(
        f"/admin/customers/{customer.id}/remind",
        data={
            "channel": "email",
            "template": "reminder_overdue",
            "token": "0" * 16,
            "subject": "S",
            "text": "T",
        },
    )
    assert posted.status_code == 403
    assert (
        client.post(
            f"/admin/customers/{customer.id}/call", data={"outcome": "no_answer"}
        ).status_code
        == 403
    )
    assert (
        client.post(
            "/admin/reminders/policy/freeze", data={"frozen": "1", "reason": "x"}
        ).status_code
        == 403
    )
    assert db.scalars(select(ReminderMessage)).all() == []
    assert db.scalars(select(ReminderTask)).all() == []
    assert client.get("/admin/reminders/policy").status_code == 200  # viewers read the limits


def test_a_call_logged_with_a_promise_pauses_reminders(
    client: TestClient,
    db: Session,
    customer: Customer,
    settings: Settings,
    tmp_path: Path,
) -> None:
    log_in(client, make_user(db, Role.CREDIT_MANAGER).email)
    invoice = db.scalar(select(Invoice).where(Invoice.customer_id == customer.id))
    assert invoice is not None
    missing_date = client.post(
        f"/admin/customers/{customer.id}/call",
        data={"outcome": "promise", "invoices": str(invoice.id), "note": "Will pay"},
    )
    assert missing_date.status_code == 400
    assert 'id="f-promised_date-error"' in missing_date.text
    assert db.scalars(select(Case)).all() == []
    logged = client.post(
        f"/admin/customers/{customer.id}/call",
        data={
            "outcome": "promise",
            "invoices": str(invoice.id),
            "promised_date": "2026-03-20",
            "note": "Will pay on the 20th",
        },
    )
    assert logged.status_code == 303
    [case] = db.scalars(select(Case))
    assert case.kind is CaseKind.PROMISE
    s = reminder_settings(settings, tmp_path)
    db.commit()
    policy = load_policy(db, customer.company_id, s.reminders)
    assert (
        planning.run(db, customer.company_id, book(s), calendar_for(s), policy=policy).enqueued == 0
    )
    actions = set(
        db.scalars(select(TimelineEvent.action).where(TimelineEvent.customer_id == customer.id))
    )
    assert {"promise.made", "call.logged"} <= actions


def test_a_follow_up_call_appears_in_the_call_queue(
    client: TestClient, db: Session, customer: Customer
) -> None:
    log_in(client, make_user(db, Role.CREDIT_MANAGER).email)
    past = client.post(f"/admin/customers/{customer.id}/follow-up", data={"on": "2026-03-01"})
    assert past.status_code == 400
    assert 'id="f-on-error"' in past.text
    response = client.post(
        f"/admin/customers/{customer.id}/follow-up",
        data={"on": "2026-03-12", "follow_note": "Ask about the March invoice"},
    )
    assert response.status_code == 303
    [task] = db.scalars(select(ReminderTask))
    assert task.kind is TaskKind.FOLLOW_UP
    queue = client.get("/admin/tasks")
    assert "Follow-up on" in queue.text
    assert "Dupont SARL" in queue.text


def test_the_freeze_shows_on_every_back_office_page_with_its_reason(
    client: TestClient, db: Session, customer: Customer
) -> None:
    log_in(client, make_user(db, Role.CREDIT_MANAGER).email)
    empty = client.post("/admin/reminders/policy/freeze", data={"frozen": "1", "reason": " "})
    assert empty.status_code == 400
    assert 'id="f-reason-error"' in empty.text
    frozen = client.post(
        "/admin/reminders/policy/freeze", data={"frozen": "1", "reason": "Invoices sent twice"}
    )
    assert frozen.status_code == 303
    for path in ("/admin/customers", f"/admin/customers/{customer.id}", "/admin/tasks"):
        assert "Every reminder is frozen: Invoices sent twice" in client.get(path).text
    client.post("/admin/reminders/policy/freeze", data={"frozen": "0"})
    assert "Every reminder is frozen" not in client.get("/admin/customers").text


def test_bad_limits_are_refused_next_to_their_fields(
    client: TestClient, db: Session, customer: Customer
) -> None:
    log_in(client, make_user(db, Role.ADMIN).email)
    response = client.post(
        "/admin/reminders/policy", data={"monthly_cap": "zero", "quiet_periods": "August"}
    )
    assert response.status_code == 400
    assert 'id="f-monthly_cap-error"' in response.text
    assert 'id="f-quiet_periods-error"' in response.text
    saved = client.post(
        "/admin/reminders/policy", data={"monthly_cap": "3", "quiet_periods": "08-01..08-31"}
    )
    assert saved.status_code == 303
    assert load_policy(db, customer.company_id).monthly_cap == 3
