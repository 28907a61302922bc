"""The back office: login, throttling, sessions, roles, the customer list and the link actions."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from portal import clock
from portal.backoffice.queries import customer_balances
from portal.company.models import Company
from portal.company.service import sync_company
from portal.invoices.models import InvoiceStatus
from portal.settings import Settings, load_settings
from portal.timeline.models import Actor, TimelineEvent
from portal.users import service as users
from portal.users import throttle
from portal.users.models import Role, User, UserSession
from portal.users.service import create_user
from portal.web.app import create_app
from tests.conftest import TEST_SECRET
from tests.factories import make_customer, make_invoice
from tests.mail_sink import Inbox, smtp_server, text_body
from tests.web.helpers import link_for, open_portal

PASSWORD = "correct horse battery staple"
COOKIE = "relance_admin"
_sequence = itertools.count(1)


@pytest.fixture(autouse=True)
def _cheap_hashing() -> Iterator[None]:
    """Argon2 with test-sized parameters: the same code paths in a fraction of the time."""
    previous = users.set_password_hasher(
        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    yield
    users.set_password_hasher(previous)


def make_user(db: Session, role: Role = Role.CREDIT_MANAGER, email: str | None = None) -> User:
    user = create_user(db, email or f"user{next(_sequence)}@relance.example", role, PASSWORD)
    db.commit()
    return user


def log_in(client: TestClient, email: str, password: str = PASSWORD, **data: str) -> None:
    response = client.post("/admin/login", data={"email": email, "password": password, **data})
    assert response.status_code == 303, response.text
    assert client.cookies.get(COOKIE)


def actions(db: Session, customer_id: int | None = None) -> list[TimelineEvent]:
    query = select(TimelineEvent).order_by(TimelineEvent.id)
    if customer_id is not None:
        query = query.where(TimelineEvent.customer_id == customer_id)
    return list(db.scalars(query))


@pytest.fixture
def admin(client: TestClient) -> TestClient:
    """The app's client, without the pause a failed login normally costs."""
    client.app.state.login_failure_delay = 0  # type: ignore[attr-defined]
    return client


# --- login ------------------------------------------------------------------------------------


def test_login_page_is_an_accessible_form(admin: TestClient) -> None:
    page = admin.get("/admin/login")
    assert page.status_code == 200
    assert '<label for="login-email">' in page.text
    assert '<label for="login-password">' in page.text
    assert 'autocomplete="current-password"' in page.text
    assert "<main" in page.text
    assert "<header" in page.text
    assert page.headers["cache-control"] == "no-store"


def test_login_opens_the_back_office_with_a_strict_cookie(
    admin: TestClient, db: Session, company: Company
) -> None:
    user = make_user(db, email="cm@relance.example")
    make_customer(db, company, name="Visible Customer SARL")
    db.commit()
    response = admin.post(
        "/admin/login", data={"email": "CM@relance.example ", "password": PASSWORD}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/admin"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie
    assert "samesite=strict" in cookie.lower()
    assert "Path=/" in cookie
    home = admin.get("/admin/customers")
    assert home.status_code == 200
    assert "Visible Customer SARL" in home.text
    assert "cm@relance.example" in home.text
    [event] = [e for e in actions(db) if e.action == "user.logged_in"]
    assert event.actor is Actor.USER
    assert event.actor_id == str(user.id)
    assert event.customer_id is None
    assert event.company_id == company.id


def test_admin_cookie_is_host_only_and_secure_outside_development(
    tmp_path: Path, session_factory: sessionmaker[Session], db: Session, company: Company
) -> None:
    production = load_settings(
        {
            "PORTAL_ENVIRONMENT": "production",
            "PORTAL_SECRET_KEYS": TEST_SECRET,
            "PORTAL_BASE_URL": "https://testserver",
            "PORTAL_DOCUMENTS_DIR": str(tmp_path),
        }
    )
    make_user(db, email="prod@relance.example")
    app = create_app(production, session_factory=session_factory)
    with TestClient(
        app,
        base_url="https://testserver",
        follow_redirects=False,
        headers={"Sec-Fetch-Site": "same-origin"},
    ) as https_client:
        response = https_client.post(
            "/admin/login", data={"email": "prod@relance.example", "password": PASSWORD}
        )
        cookie = response.headers["set-cookie"]
        assert cookie.startswith("__Host-relance_admin=")
        assert "Secure" in cookie
        assert "Path=/" in cookie
        assert https_client.get("/admin").status_code == 200


def test_wrong_password_and_unknown_email_get_the_same_answer(
    admin: TestClient, db: Session
) -> None:
    make_user(db, email="known@relance.example")
    wrong = admin.post(
        "/admin/login", data={"email": "known@relance.example", "password": "wrong password!"}
    )
    unknown = admin.post(
        "/admin/login", data={"email": "unknown@relance.example", "password": "wrong password!"}
    )
    assert wrong.status_code == unknown.status_code == 400
    assert "set-cookie" not in wrong.headers
    assert "set-cookie" not in unknown.headers
    assert wrong.text.replace("known@relance.example", "") == unknown.text.replace(
        "unknown@relance.example", ""
    )
    assert 'role="alert"' in wrong.text


def test_failed_logins_are_slowed_down_by_the_configured_delay(
    client: TestClient, db: Session
) -> None:
    client.app.state.login_failure_delay = 0.2  # type: ignore[attr-defined]
    make_user(db, email="slow@relance.example")
    started = time.monotonic()
    response = client.post(
        "/admin/login", data={"email": "slow@relance.example", "password": "wrong password!"}
    )
    assert response.status_code == 400
    assert time.monotonic() - started >= 0.2


def test_repeated_failures_make_the_next_attempt_wait_and_say_so(
    admin: TestClient, db: Session
) -> None:
    start = dt.datetime.now(dt.UTC)
    clock.freeze(start)
    admin.headers["Accept-Language"] = "en"
    make_user(db, email="target@relance.example")
    wrong = {"email": "target@relance.example", "password": "wrong password!"}
    right = {"email": "target@relance.example", "password": PASSWORD}
    for _ in range(throttle.RULES["client"].free + 1):
        assert admin.post("/admin/login", data=wrong).status_code == 400
    refused = admin.post("/admin/login", data=right)
    assert refused.status_code == 429  # even the right password
    assert "set-cookie" not in refused.headers
    assert "Too many attempts. Try again in 2 seconds." in refused.text
    assert refused.headers["retry-after"] == "2"
    french = admin.post("/admin/login", data=right, headers={"Accept-Language": "fr"})
    assert "Trop de tentatives. Réessayez dans 2\xa0secondes." in french.text
    for _ in range(throttle.RULES["client"].free + 1):
        admin.post("/admin/login", data={**wrong, "email": "other@relance.example"})
    unknown = admin.post("/admin/login", data={**right, "email": "other@relance.example"})
    assert unknown.status_code == 429  # an address without an account: the same answer
    assert refused.text.replace("target@", "") == unknown.text.replace("other@", "")
    # Somebody else's failures do not keep the user out of their own browser.
    with TestClient(
        admin.app,
        follow_redirects=False,
        headers={"Sec-Fetch-Site": "same-origin"},
        client=("198.51.100.4", 50000),
    ) as own:
        assert own.post("/admin/login", data=right).status_code == 303

    clock.freeze(start + dt.timedelta(seconds=2))
    assert admin.post("/admin/login", data=right).status_code == 303
    recorded = [e.action for e in actions(db)]
    # One row per wait (target@, then other@), not one per refused attempt.
    assert recorded.count("user.login_throttled") == 2
    assert "user.locked" not in recorded


def test_cross_site_login_is_refused(admin: TestClient, db: Session) -> None:
    make_user(db, email="csrf@relance.example")
    form = {"email": "csrf@relance.example", "password": PASSWORD}
    cross_site = admin.post("/admin/login", data=form, headers={"Sec-Fetch-Site": "cross-site"})
    assert cross_site.status_code == 403
    assert "set-cookie" not in cross_site.headers
    del admin.headers["Sec-Fetch-Site"]
    other_origin = admin.post("/admin/login", data=form, headers={"Origin": "https://evil.example"})
    assert other_origin.status_code == 403
    assert not [e for e in actions(db) if e.action.startswith("user.log")]


def test_login_goes_back_to_the_page_asked_for_and_never_elsewhere(
    admin: TestClient, db: Session, company: Company
) -> None:
    customer = make_customer(db, company)
    make_user(db, email="next@relance.example")
    asked = admin.get(f"/admin/customers/{customer.id}")
    assert asked.status_code == 303
    assert asked.headers["location"] == f"/admin/login?next=%2Fadmin%2Fcustomers%2F{customer.id}"
    form = admin.get(asked.headers["location"]).text
    assert f'value="/admin/customers/{customer.id}"' in form
    response = admin.post(
        "/admin/login",
        data={
            "email": "next@relance.example",
            "password": PASSWORD,
            "next": f"/admin/customers/{customer.id}",
        },
    )
    assert response.headers["location"] == f"/admin/customers/{customer.id}"
    for target in (
        "https://evil.example/admin",
        "//evil.example",
        "/",
        "/admin/login",
        "/adminx",
        "/admin/../paid",
        "/admin/%2e%2e/paid",
        "/admin\\..\\paid",
    ):
        admin.cookies.clear()
        response = admin.post(
            "/admin/login",
            data={"email": "next@relance.example", "password": PASSWORD, "next": target},
        )
        assert response.headers["location"] == "/admin", target


def test_a_logged_in_user_visiting_the_login_page_goes_home(admin: TestClient, db: Session) -> None:
    make_user(db, email="again@relance.example")
    log_in(admin, "again@relance.example")
    response = admin.get("/admin/login")
    assert response.status_code == 303
    assert response.headers["location"] == "/admin"


# --- sessions ---------------------------------------------------------------------------------


def test_idle_session_ends(admin: TestClient, db: Session, settings: Settings) -> None:
    make_user(db, email="idle@relance.example")
    log_in(admin, "idle@relance.example")
    assert admin.get("/admin").status_code == 200
    clock.freeze(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=settings.session_idle_minutes + 1))
    response = admin.get("/admin")
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/login"
    ended = db.scalars(select(UserSession.ended_at)).one()
    assert ended is not None


def test_logout_ends_the_session(admin: TestClient, db: Session) -> None:
    user = make_user(db, email="bye@relance.example")
    log_in(admin, "bye@relance.example")
    cookie = admin.cookies.get(COOKIE) or ""
    response = admin.post("/admin/logout")
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/login?logged_out=1"
    assert (
        f'{COOKIE}=""' in response.headers["set-cookie"]
        or "Max-Age=0" in (response.headers["set-cookie"])
    )
    admin.cookies.set(COOKIE, cookie)  # a copied cookie is dead too
    assert admin.get("/admin").status_code == 303
    event = next(e for e in actions(db) if e.action == "user.logged_out")
    assert event.actor is Actor.USER
    assert event.actor_id == str(user.id)


def test_log_out_everywhere_ends_the_sessions_of_every_device(
    admin: TestClient, db: Session
) -> None:
    make_user(db, email="many@relance.example")
    log_in(admin, "many@relance.example", **{"next": "/admin"})
    laptop = admin.cookies.get(COOKIE) or ""
    admin.cookies.clear()
    log_in(admin, "many@relance.example")
    phone = admin.cookies.get(COOKIE) or ""
    account = admin.get("/admin/account")
    assert account.status_code == 200
    assert account.text.count("<time datetime=") == 4  # two sessions, two dates each
    response = admin.post("/admin/logout-everywhere")
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/login?logged_out=everywhere"
    for cookie in (laptop, phone):
        admin.cookies.set(COOKIE, cookie)
        assert admin.get("/admin").status_code == 303
    admin.cookies.clear()
    log_in(admin, "many@relance.example")  # a new login works
    assert admin.get("/admin").status_code == 200


def test_a_debtor_session_never_opens_the_back_office(
    admin: TestClient, db: Session, settings: Settings, company: Company
) -> None:
    customer = make_customer(db, company)
    open_portal(admin, db, settings, customer)
    debtor_secret = admin.cookies.get("relance_session")
    assert debtor_secret
    assert admin.get("/").status_code == 200  # the portal session is live
    for path in ("/admin", f"/admin/customers/{customer.id}", "/admin/account"):
        response = admin.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/admin/login")
    admin.cookies.set(COOKIE, debtor_secret)  # the debtor's secret in the admin cookie
    assert admin.get("/admin").status_code == 303
    response = admin.post(f"/admin/customers/{customer.id}/revoke-links")
    assert response.status_code == 303
    db.refresh(customer)
    assert customer.link_version == 1


# --- roles ------------------------------------------------------------------------------------


def test_a_viewer_reads_but_may_not_act(admin: TestClient, db: Session, company: Company) -> None:
    customer = make_customer(db, company, name="Read Only SA")
    make_invoice(db, customer, number="RO-1", due_in_days=-3)
    db.commit()
    make_user(db, Role.VIEWER, email="viewer@relance.example")
    log_in(admin, "viewer@relance.example")
    assert "Read Only SA" in admin.get("/admin/customers").text
    page = admin.get(f"/admin/customers/{customer.id}")
    assert page.status_code == 200
    assert "RO-1" in page.text
    assert "/resend-link" not in page.text
    assert "/revoke-links" not in page.text
    for action in ("resend-link", "revoke-links"):
        refused = admin.post(
            f"/admin/customers/{customer.id}/{action}", headers={"Accept-Language": "en"}
        )
        assert refused.status_code == 403
        assert "Not allowed" in refused.text
    db.refresh(customer)
    assert customer.link_version == 1
    assert not [e for e in actions(db, customer.id) if e.actor is Actor.USER]


def test_require_role_without_a_session_redirects_any_method_to_login(
    admin: TestClient, db: Session, company: Company
) -> None:
    customer = make_customer(db, company)
    db.commit()
    response = admin.post(f"/admin/customers/{customer.id}/resend-link")
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/login"
    htmx = admin.get("/admin", headers={"HX-Request": "true"})
    assert htmx.headers["hx-redirect"] == "/admin/login"


# --- actions ----------------------------------------------------------------------------------


@pytest.fixture
def mail_admin(
    tmp_path: Path, session_factory: sessionmaker[Session], db: Session, company: Company
) -> Iterator[tuple[TestClient, Inbox]]:
    with smtp_server() as (inbox, port):
        settings = load_settings(
            {
                "PORTAL_ENVIRONMENT": "test",
                "PORTAL_SECRET_KEYS": TEST_SECRET,
                "PORTAL_BASE_URL": "http://testserver",
                "PORTAL_DOCUMENTS_DIR": str(tmp_path),
                "PORTAL_SMTP_HOST": "127.0.0.1",
                "PORTAL_SMTP_PORT": str(port),
                "PORTAL_SMTP_SECURITY": "none",
            }
        )
        db.commit()
        app = create_app(settings, session_factory=session_factory)
        app.state.login_failure_delay = 0
        with TestClient(
            app, follow_redirects=False, headers={"Sec-Fetch-Site": "same-origin"}
        ) as c:
            yield c, inbox


def test_a_credit_manager_emails_a_fresh_link_to_the_primary_contact(
    mail_admin: tuple[TestClient, Inbox], db: Session, company: Company
) -> None:
    client, inbox = mail_admin
    customer = make_customer(db, company, email="payer@example.com", language="en")
    make_invoice(db, customer, number="SENT-1")
    db.commit()
    user = make_user(db, Role.CREDIT_MANAGER, email="cm@relance.example")
    log_in(client, "cm@relance.example")
    response = client.post(f"/admin/customers/{customer.id}/resend-link")
    assert response.status_code == 303
    assert response.headers["location"] == f"/admin/customers/{customer.id}?done=link-sent"
    [message] = inbox.wait_for(1)
    assert message["To"] == "payer@example.com"
    url = re.search(r"http://testserver(/l/\S+)", text_body(message))
    assert url is not None

    issued, emailed = [e for e in actions(db, customer.id) if e.actor is Actor.USER]
    assert (issued.action, issued.actor_id) == ("link.issued", str(user.id))
    assert issued.details["purpose"] == "back-office"
    assert (emailed.action, emailed.details["to"]) == ("link.emailed", "payer@example.com")

    page = client.get(response.headers["location"])
    assert "payer@example.com" in page.text
    assert page.text.count("cm@relance.example") >= 2  # who, in the timeline
    assert client.get(url.group(1)).status_code == 303  # the debtor's link opens
    assert "SENT-1" in client.get("/").text


def test_no_email_is_sent_when_the_primary_contact_has_no_address(
    mail_admin: tuple[TestClient, Inbox], db: Session, company: Company
) -> None:
    client, inbox = mail_admin
    customer = make_customer(db, company)
    customer.contacts[0].email = None
    db.commit()
    make_user(db, Role.ADMIN, email="boss@relance.example")
    log_in(client, "boss@relance.example")
    response = client.post(f"/admin/customers/{customer.id}/resend-link")
    assert response.headers["location"].endswith("?done=no-email")
    answer = client.get(response.headers["location"], headers={"Accept-Language": "en"})
    assert "no email address" in answer.text
    assert inbox.messages == []  # background tasks have run when the client returns
    assert not [e for e in actions(db, customer.id) if e.action == "link.issued"]


def test_a_credit_manager_revokes_every_link(
    admin: TestClient, db: Session, settings: Settings, company: Company
) -> None:
    customer = make_customer(db, company)
    make_invoice(db, customer, number="REV-1")
    old_link = link_for(db, settings, customer)
    user = make_user(db, Role.CREDIT_MANAGER, email="rev@relance.example")
    log_in(admin, "rev@relance.example")
    response = admin.post(f"/admin/customers/{customer.id}/revoke-links")
    assert response.status_code == 303
    assert response.headers["location"] == f"/admin/customers/{customer.id}?done=revoked"
    refused = admin.get(old_link)
    assert refused.status_code == 410
    assert "REV-1" not in refused.text
    revoked = [e for e in actions(db, customer.id) if e.action == "link.revoked"]
    assert [(e.actor, e.actor_id) for e in revoked] == [(Actor.USER, str(user.id))]


def test_actions_on_an_unknown_or_foreign_customer_are_not_found(
    admin: TestClient, db: Session, settings: Settings
) -> None:
    other_company = sync_company(db, settings.company, slug="other")
    foreign = make_customer(db, other_company, name="Foreign Ltd")
    db.commit()
    make_user(db, Role.ADMIN, email="root@relance.example")
    log_in(admin, "root@relance.example")
    for customer_id in (foreign.id, 999_999):
        page = admin.get(f"/admin/customers/{customer_id}")
        assert page.status_code == 404
        assert "Foreign Ltd" not in page.text
        for action in ("resend-link", "revoke-links"):
            assert admin.post(f"/admin/customers/{customer_id}/{action}").status_code == 404
    assert "Foreign Ltd" not in admin.get("/admin/customers?q=Foreign").text


# --- customer list and file -------------------------------------------------------------------


def test_home_lists_balances_sorted_by_overdue(
    admin: TestClient, db: Session, company: Company
) -> None:
    small = make_customer(db, company, name="Small Debt SARL")
    make_invoice(db, small, amount_minor=10_000, due_in_days=-10)
    big = make_customer(db, company, name="Big Debt SA")
    make_invoice(db, big, amount_minor=500_000, due_in_days=-40, paid_minor=100_000)
    make_invoice(db, big, amount_minor=20_000, due_in_days=-1)
    make_invoice(db, big, amount_minor=30_000, due_in_days=15)
    make_invoice(
        db, big, amount_minor=99_999, due_in_days=-5, status=InvoiceStatus.PAID, paid_minor=99_999
    )
    make_customer(db, company, name="Nothing Due SAS")
    db.commit()
    make_user(db, Role.VIEWER, email="list@relance.example")
    log_in(admin, "list@relance.example")
    page = admin.get("/admin/customers", headers={"Accept-Language": "en"}).text
    assert page.index("Big Debt SA") < page.index("Small Debt SARL") < page.index("Nothing Due")
    assert "€4,500.00" in page  # open: 4000 + 200 + 300
    assert "€4,200.00" in page  # overdue: 4000 + 200
    assert 'aria-sort="descending"' in page
    by_name = admin.get("/admin/customers?sort=name").text
    assert by_name.index("Big Debt") < by_name.index("Nothing Due") < by_name.index("Small Debt")


def test_balances_are_per_currency_and_overdue_in_the_customers_timezone(
    db: Session, company: Company
) -> None:
    clock.freeze(dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC))
    ahead = make_customer(db, company, name="Ahead", timezone="Pacific/Kiritimati")  # 11 March
    behind = make_customer(db, company, name="Behind", timezone="America/Los_Angeles")  # 10 March
    due = dt.date(2026, 3, 10)
    make_invoice(db, ahead, amount_minor=1_000, due_date=due)
    make_invoice(db, ahead, amount_minor=2_000, due_date=due, currency="USD")
    make_invoice(db, behind, amount_minor=4_000, due_date=due)
    db.flush()
    page = customer_balances(db, company.id, company_timezone="Europe/Paris", sort="name")
    rows = {(r.name, r.currency): r for r in page.rows}
    assert set(rows) == {("Ahead", "EUR"), ("Ahead", "USD"), ("Behind", "EUR")}
    assert (rows["Ahead", "EUR"].overdue_minor, rows["Ahead", "EUR"].overdue_count) == (1_000, 1)
    assert rows["Ahead", "USD"].overdue_minor == 2_000
    assert (rows["Behind", "EUR"].open_minor, rows["Behind", "EUR"].overdue_minor) == (4_000, 0)
    assert all(isinstance(r.open_minor, int) for r in page.rows)


def test_search_by_name_or_reference_and_pagination(
    admin: TestClient, db: Session, company: Company
) -> None:
    for n in range(53):
        make_customer(db, company, name=f"Paged {n:02d}", reference=f"PG-{n:03d}")
    make_customer(db, company, name="Zed 100%_Name", reference="ZZ-1")
    db.commit()
    first = customer_balances(db, company.id, company_timezone="Europe/Paris", sort="name")
    assert (first.total, first.pages, len(first.rows)) == (54, 2, 50)
    second = customer_balances(db, company.id, company_timezone="Europe/Paris", sort="name", page=2)
    assert [r.name for r in second.rows] == ["Paged 50", "Paged 51", "Paged 52", "Zed 100%_Name"]
    beyond = customer_balances(db, company.id, company_timezone="Europe/Paris", page=99)
    assert beyond.page == 2
    by_reference = customer_balances(
        db, company.id, company_timezone="Europe/Paris", search="pg-05"
    )
    assert sorted(r.reference for r in by_reference.rows) == [f"PG-{n:03d}" for n in range(50, 53)]
    literal = customer_balances(db, company.id, company_timezone="Europe/Paris", search="100%_")
    assert [r.name for r in literal.rows] == ["Zed 100%_Name"]

    make_user(db, Role.VIEWER, email="pages@relance.example")
    log_in(admin, "pages@relance.example")
    page_two = admin.get("/admin/customers?sort=name&page=2").text
    assert "Paged 52" in page_two
    assert "Paged 00" not in page_two
    assert 'rel="prev"' in page_two
    assert 'rel="next"' not in page_two
    searched = admin.get("/admin/customers?q=paged+07").text
    assert "Paged 07" in searched
    assert "Paged 08" not in searched
    htmx = admin.get("/admin/customers?q=paged+07", headers={"HX-Request": "true"})
    assert "<html" not in htmx.text
    assert "Paged 07" in htmx.text
    assert "Vary" in htmx.headers
    assert "HX-Request" in htmx.headers["vary"]
    assert admin.get("/admin/customers?page=abc").status_code == 200


def test_customer_file_shows_contacts_invoices_and_the_timeline_newest_first(
    admin: TestClient, db: Session, settings: Settings, company: Company
) -> None:
    customer = make_customer(db, company, name="File Co", email="billing@file.example")
    make_invoice(db, customer, number="FILE-1", due_in_days=-12)
    make_invoice(db, customer, number="FILE-PAID", status=InvoiceStatus.PAID, paid_minor=10_000)
    link_for(db, settings, customer)  # link.issued by the system
    make_user(db, Role.ADMIN, email="reader@relance.example")
    log_in(admin, "reader@relance.example")
    assert admin.post(f"/admin/customers/{customer.id}/revoke-links").status_code == 303
    page = admin.get(f"/admin/customers/{customer.id}", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    text = page.text
    assert "billing@file.example" in text
    assert "FILE-1" in text
    open_part, closed_part = text.split('id="closed-invoices"')
    assert "FILE-PAID" not in open_part  # not among what is owed...
    assert "FILE-PAID" in closed_part  # ...but listed with the paid and cancelled ones
    assert "12 days" in text
    assert text.index("Every earlier link revoked") < text.index("Link issued")
    assert "reader@relance.example" in text  # who revoked
    assert "<time datetime=" in text
    assert '<th scope="col">' in text
    french = admin.get(f"/admin/customers/{customer.id}", headers={"Accept-Language": "fr"})
    assert '<html lang="fr">' in french.text
