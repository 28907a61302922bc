"""Back-office passwords: forgot and reset, change, and unlocking a locked account."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from portal import clock
from portal.company.models import Company
from portal.users import service as users
from portal.users.models import Role, User
from tests.mail_sink import Inbox, text_body
from tests.web import test_cases
from tests.web.test_backoffice import PASSWORD, _cheap_hashing, log_in, make_user  # noqa: F401

web = test_cases.web  # the app with a loopback SMTP sink
NEW_PASSWORD = "a brand new passphrase"


def _other_browser(client: TestClient) -> TestClient:
    return TestClient(
        client.app,
        follow_redirects=False,
        headers={"Sec-Fetch-Site": "same-origin", "Accept-Language": "en"},
        client=("198.51.100.4", 50000),
    )


def _link(message: object, path: str) -> str:
    found = re.search(rf"http://testserver({re.escape(path)}\?token=\S+)", text_body(message))  # type: ignore[arg-type]
    assert found, text_body(message)  # type: ignore[arg-type]
    return found.group(1)


def _refused(client: TestClient, email: str, password: str) -> bool:
    response = client.post("/admin/login", data={"email": email, "password": password})
    return response.status_code == 400


def test_forgot_password_answers_the_same_and_emails_a_single_use_link(
    web: tuple[TestClient, Inbox, Path], db: Session, company: Company
) -> None:
    client, inbox, _dir = web
    clock.freeze(dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC))
    make_user(db, email="cm@relance.example")
    login_page = client.get("/admin/login")
    assert 'href="/admin/password/forgot"' in login_page.text
    assert "Forgot your password?" in login_page.text
    assert client.get("/admin/password/forgot").status_code == 200
    known = client.post("/admin/password/forgot", data={"email": "cm@relance.example"})
    unknown = client.post("/admin/password/forgot", data={"email": "no@relance.example"})
    assert known.status_code == unknown.status_code == 200
    assert known.text.replace("cm@", "") == unknown.text.replace("no@", "")
    [message] = inbox.wait_for(1)
    assert message["To"] == "cm@relance.example"
    link = _link(message, "/admin/password/reset")

    with _other_browser(client) as elsewhere:
        log_in(elsewhere, "cm@relance.example")
        form = client.get(link)
        assert form.status_code == 200
        assert 'name="token"' in form.text
        token = link.split("token=", 1)[1]
        differ = {"token": token, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD + "!"}
        mismatch = client.post("/admin/password/reset", data=differ)
        assert mismatch.status_code == 400
        assert "The two new passwords are not the same." in mismatch.text
        short = {"token": token, "password": "short", "confirm": "short"}
        assert client.post("/admin/password/reset", data=short).status_code == 400
        done = client.post(
            "/admin/password/reset",
            data={"token": token, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        )
        assert done.status_code == 303
        assert done.headers["location"] == "/admin/login?done=password-reset"
        assert "Your password is changed" in client.get(done.headers["location"]).text
        assert elsewhere.get("/admin").status_code == 303  # every session ended
    assert _refused(client, "cm@relance.example", PASSWORD)
    log_in(client, "cm@relance.example", NEW_PASSWORD)
    # Used once: the link no longer works.
    again = client.get(link)
    assert again.status_code == 400
    assert "This link has expired or has already been used." in again.text
    reuse = {
        "token": token,
        "password": "yet another passphrase",
        "confirm": "yet another passphrase",
    }
    assert client.post("/admin/password/reset", data=reuse).status_code == 400


def test_a_reset_link_expires_and_stops_working_once_the_password_changes(
    web: tuple[TestClient, Inbox, Path], db: Session, company: Company
) -> None:
    client, inbox, _dir = web
    start = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)
    clock.freeze(start)
    make_user(db, email="cm@relance.example")
    client.post("/admin/password/forgot", data={"email": "cm@relance.example"})
    client.post("/admin/password/forgot", data={"email": "cm@relance.example"})
    first, second = inbox.wait_for(2)
    expiring, changing = (
        _link(first, "/admin/password/reset"),
        _link(second, "/admin/password/reset"),
    )
    clock.freeze(start + dt.timedelta(minutes=30))
    log_in(client, "cm@relance.example")
    changed = client.post(
        "/admin/account/password",
        data={"current": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert changed.status_code == 303
    assert client.get(changing).status_code == 400  # issued before the change
    clock.freeze(start + dt.timedelta(minutes=61))
    assert client.get(expiring).status_code == 400


def test_reset_emails_for_one_address_are_limited(
    web: tuple[TestClient, Inbox, Path], db: Session, company: Company
) -> None:
    client, inbox, _dir = web
    clock.freeze(dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC))
    make_user(db, email="cm@relance.example")
    answers = {
        client.post("/admin/password/forgot", data={"email": "cm@relance.example"}).text
        for _ in range(6)
    }
    assert len(answers) == 1  # the same page each time
    assert len(inbox.wait_for(3)) == 3
    assert len(inbox.wait_for(4, timeout=0.5)) == 3


def test_changing_the_password_needs_the_current_one_and_ends_other_sessions(
    web: tuple[TestClient, Inbox, Path], db: Session, company: Company
) -> None:
    client, _inbox, _dir = web
    make_user(db, email="cm@relance.example")
    log_in(client, "cm@relance.example")
    account = client.get("/admin/account")
    assert '<label for="password-current">' in account.text
    with _other_browser(client) as elsewhere:
        log_in(elsewhere, "cm@relance.example")
        wrong = client.post(
            "/admin/account/password",
            data={"current": "not my password", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        )
        assert wrong.status_code == 400
        assert "Your current password is not right." in wrong.text
        assert elsewhere.get("/admin").status_code == 200
        changed = client.post(
            "/admin/account/password",
            data={"current": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        )
        assert changed.status_code == 303
        assert changed.headers["location"] == "/admin/account?done=password-changed"
        assert "Your other sessions have ended." in client.get(changed.headers["location"]).text
        assert client.get("/admin").status_code == 200  # this session stays
        assert elsewhere.get("/admin").status_code == 303  # the other one ended
    client.cookies.clear()
    assert _refused(client, "cm@relance.example", PASSWORD)
    log_in(client, "cm@relance.example", NEW_PASSWORD)


def test_guessing_the_current_password_is_throttled(
    web: tuple[TestClient, Inbox, Path], db: Session, company: Company
) -> None:
    client, _inbox, _dir = web
    clock.freeze(dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC))
    make_user(db, email="cm@relance.example")
    log_in(client, "cm@relance.example")
    guess = {"current": "a guess at it", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    statuses = [client.post("/admin/account/password", data=guess).status_code for _ in range(7)]
    assert statuses == [400] * 6 + [429]
    right = {**guess, "current": PASSWORD}
    waiting = client.post("/admin/account/password", data=right)
    assert waiting.status_code == 429  # not even checked
    assert "Too many attempts. Try again in 2 seconds." in waiting.text


def test_a_locked_account_is_told_by_email_and_unlocked_from_the_link(
    web: tuple[TestClient, Inbox, Path], db: Session, company: Company
) -> None:
    client, inbox, _dir = web
    clock.freeze(dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC))
    user = make_user(db, email="cm@relance.example")
    db.execute(
        update(User).where(User.id == user.id).values(failed_logins=users.LOCK_AFTER_FAILURES - 1)
    )
    db.commit()
    assert _refused(client, "cm@relance.example", "wrong password!")  # the same answer
    [message] = inbox.wait_for(1)
    assert message["To"] == "cm@relance.example"
    assert "locked" in message["Subject"]
    link = _link(message, "/admin/unlock")
    with _other_browser(client) as elsewhere:
        assert _refused(elsewhere, "cm@relance.example", PASSWORD)  # locked: even so
        page = client.get(link)
        assert page.status_code == 200
        assert "Unlock my account" in page.text
        assert _refused(elsewhere, "cm@relance.example", PASSWORD)  # a GET changes nothing
        token = link.split("token=", 1)[1]
        unlocked = client.post("/admin/unlock", data={"token": token})
        assert unlocked.status_code == 303
        assert unlocked.headers["location"] == "/admin/login?done=unlocked"
        log_in(elsewhere, "cm@relance.example")
    assert client.post("/admin/unlock", data={"token": token}).status_code == 400  # once


def test_an_admin_unlocks_a_user_from_the_users_page(
    web: tuple[TestClient, Inbox, Path], db: Session, company: Company
) -> None:
    client, _inbox, _dir = web
    make_user(db, Role.ADMIN, email="admin@relance.example")
    viewer = make_user(db, Role.VIEWER, email="viewer@relance.example")
    locked = make_user(db, email="cm@relance.example")
    locked.locked_until = clock.now() + users.LOCKOUT
    db.commit()
    log_in(client, "viewer@relance.example")
    assert client.post(f"/admin/users/{locked.id}/unlock").status_code == 403
    client.cookies.clear()
    log_in(client, "admin@relance.example")
    page = client.get("/admin/users")
    assert f'action="/admin/users/{locked.id}/unlock"' in page.text
    assert f'action="/admin/users/{viewer.id}/unlock"' not in page.text
    done = client.post(f"/admin/users/{locked.id}/unlock")
    assert done.status_code == 303
    assert "The account is unlocked." in client.get(done.headers["location"]).text
    with _other_browser(client) as own:
        log_in(own, "cm@relance.example")
