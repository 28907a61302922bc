"""Debtor messages are rate-limited; the assignee hears of them in one digest per case."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from portal import clock
from portal.cases.digest import check_message_rate, deliver_digests
from portal.cases.models import CaseMessage
from portal.cases.service import CaseError, post_message
from portal.company.models import Company
from portal.templating import make_environment
from portal.timeline.models import Actor
from portal.users.models import Role
from tests.mail_sink import Inbox, text_body
from tests.web import test_cases
from tests.web.helpers import open_portal
from tests.web.test_backoffice import _cheap_hashing, make_user  # noqa: F401
from tests.web.test_cases import _cases, _debtor

web = test_cases.web  # the app with a loopback SMTP sink, small attachments
T0 = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)


def _debtor_messages(db: Session, case_id: int) -> int:
    db.expire_all()
    return int(
        db.scalar(
            select(func.count())
            .select_from(CaseMessage)
            .where(CaseMessage.case_id == case_id, CaseMessage.author == Actor.DEBTOR)
        )
        or 0
    )


def _digests(client: TestClient, factory: sessionmaker[Session]) -> int:
    state = client.app.state  # type: ignore[attr-defined]
    return deliver_digests(factory, make_environment(), state.mailer, state.settings)


def test_twenty_messages_send_a_bounded_number_of_emails_and_one_digest(
    web: tuple[TestClient, Inbox, Path],
    db: Session,
    company: Company,
    session_factory: sessionmaker[Session],
) -> None:
    client, inbox, _dir = web
    clock.freeze(T0)
    make_user(db, Role.CREDIT_MANAGER, email="cm@relance.example")
    customer, a, _b = _debtor(client, db, company)
    client.post("/disputes", data={"invoice": str(a.id), "reason": "other", "message": "opening"})
    [case] = _cases(db, customer)
    assert len(inbox.wait_for(1)) == 1  # the new dispute
    limit = client.app.state.settings.cases.case_messages_per_hour  # type: ignore[attr-defined]
    assert limit == 10

    answers = []
    for n in range(20):
        clock.freeze(T0 + dt.timedelta(minutes=1 + n))
        answers.append(client.post(f"/cases/{case.id}/messages", data={"message": f"note {n}"}))
    # The opening message counts: nine replies within the hour, the eleven others refused.
    assert [r.status_code for r in answers] == [303] * 9 + [429] * 11
    assert "You have sent many messages" in answers[-1].text
    assert "note 19" in answers[-1].text  # kept in the form, not stored
    assert _debtor_messages(db, case.id) == 10

    # The first reply is emailed at once; the next ones wait for the digest.
    emails = inbox.wait_for(2)
    assert len(emails) == 2
    first = text_body(emails[1])
    assert "note 0" in first
    assert "opening" not in first  # already told by the dispute's email
    assert _digests(client, session_factory) == 0  # the window has not passed
    assert len(inbox.messages) == 2

    clock.freeze(T0 + dt.timedelta(minutes=62))
    assert _digests(client, session_factory) == 1
    [digest] = inbox.wait_for(3)[2:]
    assert digest["To"] == "cm@relance.example"
    body = text_body(digest)
    assert all(f"note {n}" in body for n in range(1, 9))
    assert "note 0" not in body
    # Each message with its date and time in the company's timezone (Paris, UTC+1).
    assert "--- 03/12/2026 10:02\nnote 1" in body.replace("\r\n", "\n")
    assert f"/admin/cases/{case.id}" in body
    # A rerun sends nothing more.
    assert _digests(client, session_factory) == 0
    assert len(inbox.messages) == 3

    # A later message, after the window, is told at once again; the hour has passed too.
    clock.freeze(T0 + dt.timedelta(minutes=125))
    open_portal(client, db, client.app.state.settings, customer)  # type: ignore[attr-defined]
    assert client.post(f"/cases/{case.id}/messages", data={"message": "later"}).status_code == 303
    assert "later" in text_body(inbox.wait_for(4)[3])
    assert _digests(client, session_factory) == 0


def test_the_limit_across_a_customers_cases(
    web: tuple[TestClient, Inbox, Path], db: Session, company: Company
) -> None:
    client, _inbox, _dir = web
    clock.freeze(T0)
    customer, a, b = _debtor(client, db, company)
    client.post("/disputes", data={"invoice": str(a.id), "reason": "other", "message": "one"})
    client.post("/disputes", data={"invoice": str(b.id), "reason": "other", "message": "two"})
    first, second = _cases(db, customer)
    limits = {"per_case": 10, "per_customer": 3}
    check_message_rate(db, first, now=T0, **limits)  # two messages so far
    post_message(db, first, "three", author=Actor.DEBTOR)
    with pytest.raises(CaseError) as refused:
        check_message_rate(db, second, now=T0, **limits)
    assert refused.value.key == CaseError.TOO_MANY_MESSAGES
    # An hour later the earlier messages no longer count.
    check_message_rate(db, second, now=T0 + dt.timedelta(hours=1, seconds=1), **limits)
