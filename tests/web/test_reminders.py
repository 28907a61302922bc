"""Reminder pages: the call-task queue and the development outbox viewer."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from portal.company.models import Company
from portal.reminders import planning
from portal.reminders.models import ReminderMessage, ReminderTask, TaskStatus
from portal.reminders.outbox import deliver_due
from portal.reminders.worker import calendar_for
from portal.settings import Settings, load_settings
from portal.timeline.models import TimelineEvent
from portal.users import service as users
from portal.users.models import Role
from portal.web.app import create_app
from tests.conftest import TEST_SECRET
from tests.factories import make_customer, make_invoice
from tests.reminders_helpers import at, book, context, reminder_settings
from tests.web.test_backoffice import log_in, make_user


@pytest.fixture(autouse=True)
def _cheap_hashing() -> Iterator[None]:
    previous = users.set_password_hasher(
        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    yield
    users.set_password_hasher(previous)


@pytest.fixture
def task_id(
    db: Session,
    company: Company,
    settings: Settings,
    tmp_path: Path,
    session_factory: sessionmaker[Session],
) -> int:
    """A strategic customer's call task, opened by the worker."""
    s = reminder_settings(settings, tmp_path)
    at("2026-03-10 10:00")
    customer = make_customer(db, company, name="Stratégique SA", strategic=True)
    customer.contacts[0].phone = "+33622222222"
    make_invoice(db, customer, due_in_days=-4, number="F-CALL-1")
    db.commit()
    planning.run(db, company.id, book(s), calendar_for(s))
    deliver_due(session_factory, context(s), "web-test")
    task = db.scalar(select(ReminderTask))
    assert task is not None
    return task.id


def test_a_credit_manager_sees_the_call_and_marks_it_done(
    client: TestClient, db: Session, task_id: int
) -> None:
    client.app.state.login_failure_delay = 0  # type: ignore[attr-defined]
    user = make_user(db, Role.CREDIT_MANAGER)
    log_in(client, user.email)
    page = client.get("/admin/tasks")
    assert page.status_code == 200
    assert "Stratégique SA" in page.text
    assert "F-CALL-1" in page.text
    assert 'href="tel:+33622222222"' in page.text
    assert f'action="/admin/tasks/{task_id}/done"' in page.text
    done = client.post(f"/admin/tasks/{task_id}/done", data={"note": "Paiement vendredi"})
    assert (done.status_code, done.headers["location"]) == (303, "/admin/tasks?notice=done")
    db.expire_all()
    task = db.get(ReminderTask, task_id)
    assert task is not None
    assert (task.status, task.note, task.done_by_user_id) == (
        TaskStatus.DONE,
        "Paiement vendredi",
        user.id,
    )
    assert db.scalar(
        select(TimelineEvent.action).where(TimelineEvent.action == "reminder.task_done")
    )
    assert (
        "No call to make." in client.get("/admin/tasks").text
        or "Aucun appel" in client.get("/admin/tasks").text
    )
    assert "Paiement vendredi" in client.get("/admin/tasks?show=done").text
    again = client.post(f"/admin/tasks/{task_id}/done", data={"note": ""})
    assert again.headers["location"] == "/admin/tasks?notice=already_done"
    assert client.post("/admin/tasks/999999/done").status_code == 404


def test_a_viewer_reads_the_queue_but_cannot_mark_a_task(
    client: TestClient, db: Session, task_id: int
) -> None:
    client.app.state.login_failure_delay = 0  # type: ignore[attr-defined]
    assert client.get("/admin/tasks").status_code == 303  # to the login page
    viewer = make_user(db, Role.VIEWER)
    log_in(client, viewer.email)
    page = client.get("/admin/tasks")
    assert page.status_code == 200
    assert "F-CALL-1" in page.text
    assert "/done" not in page.text
    assert client.post(f"/admin/tasks/{task_id}/done", data={"note": "x"}).status_code == 403
    db.expire_all()
    task = db.get(ReminderTask, task_id)
    assert task is not None
    assert task.status is TaskStatus.OPEN


def test_a_too_long_note_changes_nothing(client: TestClient, db: Session, task_id: int) -> None:
    client.app.state.login_failure_delay = 0  # type: ignore[attr-defined]
    log_in(client, make_user(db, Role.ADMIN).email)
    response = client.post(f"/admin/tasks/{task_id}/done", data={"note": "x" * 2001})
    assert response.headers["location"] == "/admin/tasks?notice=note_too_long"
    db.expire_all()
    task = db.get(ReminderTask, task_id)
    assert task is not None
    assert task.status is TaskStatus.OPEN
    notice = client.get(response.headers["location"]).text
    assert "trop longue" in notice


def test_the_outbox_viewer_shows_messages_and_their_portal_link(
    client: TestClient,
    db: Session,
    company: Company,
    settings: Settings,
    tmp_path: Path,
    session_factory: sessionmaker[Session],
) -> None:
    s = reminder_settings(settings, tmp_path)
    at("2026-03-10 10:00")
    customer = make_customer(db, company, name="Client Courriel")
    make_invoice(db, customer, due_in_days=-2, number="F-MAIL-1")
    db.commit()
    planning.run(db, company.id, book(s), calendar_for(s))
    deliver_due(session_factory, context(s), "web-test")
    message = db.scalar(select(ReminderMessage))
    assert message is not None
    listing = client.get("/dev/outbox")
    assert listing.status_code == 200
    assert "Client Courriel" in listing.text
    detail = client.get(f"/dev/outbox/{message.id}")
    assert detail.status_code == 200
    assert "F-MAIL-1" in detail.text
    link = detail.text.split('<a href="http://testserver/l/', 1)[1].split('"', 1)[0]
    opened = client.get(f"/l/{link}")
    assert (opened.status_code, opened.headers["location"]) == (303, "/")
    assert client.get("/dev/outbox/999999").status_code == 404


def test_the_outbox_viewer_does_not_exist_in_production(
    tmp_path: Path, session_factory: sessionmaker[Session], company: Company, db: Session
) -> None:
    production = load_settings(
        {
            "PORTAL_ENVIRONMENT": "production",
            "PORTAL_SECRET_KEYS": TEST_SECRET,
            "PORTAL_BASE_URL": "https://pay.example.com",
            "PORTAL_DOCUMENTS_DIR": str(tmp_path),
        }
    )
    db.commit()
    app = create_app(dataclasses.replace(production), session_factory=session_factory)
    with TestClient(app, base_url="https://pay.example.com") as browser:
        assert browser.get("/dev/outbox").status_code == 404


def test_open_call_tasks_are_counted_on_the_back_office_home(
    client: TestClient, db: Session, task_id: int
) -> None:
    client.app.state.login_failure_delay = 0  # type: ignore[attr-defined]
    client.headers["Accept-Language"] = "en"
    user = make_user(db, Role.VIEWER)
    log_in(client, user.email)
    home = client.get("/admin").text
    assert '<li><a href="/admin/tasks">Call tasks</a>: <strong>1</strong>' in home
    assert "(first due 3/10/26)" in home
