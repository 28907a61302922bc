"""Reminder pages: the call-task queue and the development outbox viewer."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

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
from tests.web.test_backoffice import PASSWORD, log_in, make_user


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


@pytest.fixture
def outbox_client(
    settings: Settings, session_factory: sessionmaker[Session], db: Session, company: Company
) -> Iterator[TestClient]:
    """The app with the development outbox viewer switched on (PORTAL_DEV_OUTBOX)."""
    db.commit()
    app = create_app(dataclasses.replace(settings, dev_outbox=True), session_factory)
    app.state.login_failure_delay = 0
    with TestClient(
        app, follow_redirects=False, headers={"Sec-Fetch-Site": "same-origin"}
    ) as browser:
        yield browser


@pytest.fixture
def outbox_message(
    db: Session,
    company: Company,
    settings: Settings,
    tmp_path: Path,
    session_factory: sessionmaker[Session],
) -> ReminderMessage:
    """An email reminder the worker delivered, to "Client Courriel" about F-MAIL-1."""
    s = reminder_settings(settings, tmp_path)
    at("2026-03-10 10:00")
    customer = make_customer(db, company, name="Client Courriel")
    make_invoice(db, customer, due_in_days=-2, number="F-MAIL-1")
    db.commit()
    planning.run(db, company.id, book(s), calendar_for(s))
    deliver_due(session_factory, context(s), "web-test")
    message = db.scalar(select(ReminderMessage))
    assert message is not None
    return message


def test_the_outbox_viewer_shows_messages_and_their_portal_link(
    outbox_client: TestClient, db: Session, outbox_message: ReminderMessage
) -> None:
    message = outbox_message
    log_in(outbox_client, make_user(db, Role.VIEWER).email)
    listing = outbox_client.get("/dev/outbox")
    assert listing.status_code == 200
    assert "Client Courriel" in listing.text
    detail = outbox_client.get(f"/dev/outbox/{message.id}")
    assert detail.status_code == 200
    assert "F-MAIL-1" in detail.text
    link = detail.text.split('<a href="http://testserver/l/', 1)[1].split('"', 1)[0]
    opened = outbox_client.get(f"/l/{link}")
    assert (opened.status_code, opened.headers["location"]) == (303, "/")
    assert outbox_client.get("/dev/outbox/999999").status_code == 404


def test_the_outbox_viewer_asks_anonymous_visitors_to_log_in(
    outbox_client: TestClient, db: Session, outbox_message: ReminderMessage
) -> None:
    message = outbox_message
    for path in (
        "/dev/outbox",
        f"/dev/outbox/{message.id}",
        f"/dev/outbox/{message.id}/letter.pdf",
    ):
        response = outbox_client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"] == f"/admin/login?{urlencode({'next': path})}"
        assert "Client Courriel" not in response.text
        assert "/l/" not in response.text
    # After logging in, the login page leads back to the outbox.
    user = make_user(db, Role.VIEWER)
    back = outbox_client.post(
        "/admin/login",
        data={"email": user.email, "password": PASSWORD, "next": "/dev/outbox"},
    )
    assert (back.status_code, back.headers["location"]) == (303, "/dev/outbox")


@pytest.mark.parametrize("environment", ["development", "test", None])
def test_the_outbox_viewer_does_not_exist_unless_switched_on(
    tmp_path: Path,
    session_factory: sessionmaker[Session],
    company: Company,
    db: Session,
    environment: str | None,
) -> None:
    """A server started without PORTAL_ENVIRONMENT is in development: still no outbox."""
    environ = {"PORTAL_SECRET_KEYS": TEST_SECRET, "PORTAL_DOCUMENTS_DIR": str(tmp_path)}
    if environment:
        environ["PORTAL_ENVIRONMENT"] = environment
    plain = load_settings(environ)
    assert not plain.dev_outbox
    db.commit()
    with TestClient(create_app(plain, session_factory=session_factory)) as browser:
        for path in ("/dev/outbox", "/dev/outbox/1", "/dev/outbox/1/letter.pdf"):
            assert browser.get(path, follow_redirects=False).status_code == 404


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
    assert "(first due 10 Mar 2026)" in home  # the month in words
