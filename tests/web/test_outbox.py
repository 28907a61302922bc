"""The outbox for operations: the back office's page with "Retry failed", and
/healthz/outbox for monitoring."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from portal import clock
from portal.company.models import Company
from portal.reminders.models import MessageStatus, ReminderMessage
from portal.users.models import Role
from tests.factories import make_customer
from tests.web.test_backoffice import admin, log_in, make_user  # noqa: F401 - fixture

NOW = dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)


def _message(db: Session, company: Company, status: MessageStatus, **values: object) -> None:
    customer = make_customer(db, company)
    db.add(
        ReminderMessage(
            company_id=company.id,
            customer_id=customer.id,
            scenario="standard",
            step=f"step-{customer.id}",
            cycle="2026-03-09",
            channel="email",
            template="reminder_overdue",
            status=status,
            next_attempt_at=NOW - dt.timedelta(hours=1),
            attempts=5 if status is MessageStatus.FAILED else 0,
            created_at=NOW - dt.timedelta(hours=2),
            **values,
        )
    )
    db.commit()


def test_a_queue_that_has_not_moved_makes_the_outbox_health_check_fail(
    admin: TestClient,  # noqa: F811
    db: Session,
    company: Company,
) -> None:
    clock.freeze(NOW)
    assert admin.get("/healthz/outbox").json()["status"] == "ok"
    _message(db, company, MessageStatus.PENDING)
    response = admin.get("/healthz/outbox")
    assert response.status_code == 503  # due for an hour (over 15 minutes), nothing left
    assert response.json()["status"] == "stalled"
    assert response.json()["due"] == 1
    _message(db, company, MessageStatus.SENT, sent_at=NOW - dt.timedelta(minutes=1))
    response = admin.get("/healthz/outbox")
    assert (response.status_code, response.json()["status"]) == (200, "ok")


def test_the_back_office_shows_the_outbox_and_retries_failed_messages(
    admin: TestClient,  # noqa: F811
    db: Session,
    company: Company,
) -> None:
    clock.freeze(NOW)
    _message(db, company, MessageStatus.FAILED, last_error="OSError: connection refused")
    _message(db, company, MessageStatus.PENDING)
    viewer = make_user(db, Role.VIEWER)
    log_in(admin, viewer.email)
    page = admin.get("/admin/outbox")
    assert page.status_code == 200
    assert "connection refused" in page.text
    assert "Relancer les échecs" not in page.text  # viewers read (the page is in French)
    assert admin.post("/admin/outbox/retry-failed").status_code == 403
    manager = make_user(db, Role.CREDIT_MANAGER)
    log_in(admin, manager.email)
    assert "Relancer les échecs" in admin.get("/admin/outbox").text
    response = admin.post("/admin/outbox/retry-failed")
    assert response.status_code == 303
    assert "requeued=1" in response.headers["location"]
    db.expire_all()
    statuses = sorted(str(s) for s in db.scalars(select(ReminderMessage.status)))
    assert statuses == ["pending", "pending"]
    assert (
        "1 message en échec est de retour dans la file"
        in admin.get(response.headers["location"]).text
    )
