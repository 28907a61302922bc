"""Opening links: sessions, clean URLs, refusals, revocation, fresh links."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from portal import clock
from portal.company.models import Company
from portal.links.service import revoke_links
from portal.links.tokens import LinkClaims
from portal.settings import Settings, load_settings
from portal.timeline.models import TimelineEvent
from portal.web.app import create_app
from tests.conftest import TEST_SECRET
from tests.domain.test_link_tokens import spellings
from tests.factories import make_customer, make_invoice
from tests.mail_sink import Inbox, smtp_server, text_body
from tests.web.helpers import link_for, open_portal, signer_for


def test_opening_a_link_redirects_to_a_clean_url_with_a_safe_cookie(
    client: TestClient, db: Session, settings: Settings, company: Company
) -> None:
    customer = make_customer(db, company)
    response = client.get(link_for(db, settings, customer))
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()
    assert "Secure" not in cookie  # development; production is covered below
    assert response.headers["referrer-policy"] == "no-referrer"


def test_session_cookie_is_secure_outside_development(
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
    customer = make_customer(db, company)
    path = link_for(db, production, customer)
    app = create_app(production, session_factory=session_factory)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as https_client:
        response = https_client.get(path)
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("__Host-relance_session=")
    assert "Secure" in cookie
    assert "max-age=63072000" in response.headers["strict-transport-security"]


@pytest.mark.parametrize("language", ["fr", "en"])
def test_tampered_link_shows_a_friendly_page_without_data(
    client: TestClient, db: Session, settings: Settings, company: Company, language: str
) -> None:
    customer = make_customer(db, company, name="Very Private SARL", language=language)
    path = link_for(db, settings, customer)
    tampered = path[:-3] + ("aaa" if not path.endswith("aaa") else "bbb")
    response = client.get(tampered, headers={"Accept-Language": language})
    assert response.status_code == 400
    assert "Very Private" not in response.text
    assert 'action="/fresh-link"' in response.text
    assert "Traceback" not in response.text
    assert f'<html lang="{language}">' in response.text
    assert "set-cookie" not in response.headers


def test_other_spellings_of_a_genuine_link_get_the_rejected_link_page(
    client: TestClient, db: Session, settings: Settings, company: Company
) -> None:
    customer = make_customer(db, company, name="Very Private SARL")
    db.commit()
    signer = signer_for(settings)
    # A link whose signature has a "-" or "_" to respell as "+" or "/".
    token = next(
        t
        for t in (
            signer.sign(LinkClaims(customer.id, customer.link_version, None, days))
            for days in range(1, 367)
        )
        if set(t.split(".")[2]) & set("-_")
    )
    variants = spellings(token)
    assert any("+" in v or "/" in v for v in variants)
    for variant in variants:
        response = client.get(f"/l/{quote(variant, safe='')}")
        assert response.status_code == 400, variant
        assert 'action="/fresh-link"' in response.text
        assert "Very Private" not in response.text
        assert "set-cookie" not in response.headers
    opened = client.get(f"/l/{token}")
    assert opened.status_code == 303
    assert opened.headers["location"] == "/"


def test_expired_link_speaks_the_customers_language(
    client: TestClient, db: Session, settings: Settings, company: Company
) -> None:
    customer = make_customer(db, company, language="en")
    clock.freeze(dt.datetime.now(dt.UTC) - dt.timedelta(days=46))
    path = link_for(db, settings, customer)
    clock.freeze(None)
    response = client.get(path, headers={"Accept-Language": "fr"})
    assert response.status_code == 410
    assert '<html lang="en">' in response.text
    assert "set-cookie" not in response.headers


def test_revoking_ends_old_links_and_open_sessions(
    client: TestClient, db: Session, settings: Settings, company: Company
) -> None:
    customer = make_customer(db, company)
    make_invoice(db, customer, number="KEEP-1")
    old_link = link_for(db, settings, customer)
    open_portal(client, db, settings, customer)
    assert "KEEP-1" in client.get("/").text

    revoke_links(db, customer)
    db.commit()
    assert "KEEP-1" not in client.get("/").text  # the session ended
    refused = client.get(old_link)
    assert refused.status_code == 410
    assert "KEEP-1" not in refused.text
    open_portal(client, db, settings, customer)  # a link issued after revocation works
    assert "KEEP-1" in client.get("/").text
    actions = db.scalars(
        select(TimelineEvent.action).where(TimelineEvent.customer_id == customer.id)
    ).all()
    assert {"link.revoked", "link.refused", "link.opened"} <= set(actions)


def test_rotated_secret_keeps_a_live_link_working(
    db: Session,
    settings: Settings,
    company: Company,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    customer = make_customer(db, company)
    path = link_for(db, settings, customer)
    rotated = load_settings(
        {
            "PORTAL_ENVIRONMENT": "test",
            "PORTAL_BASE_URL": "http://testserver",
            "PORTAL_SECRET_KEYS": f"{'n' * 48},{TEST_SECRET}",
            "PORTAL_DOCUMENTS_DIR": str(tmp_path),
        }
    )
    with TestClient(
        create_app(rotated, session_factory=session_factory), follow_redirects=False
    ) as c:
        assert c.get(path).status_code == 303


def test_scoped_link_shows_only_its_invoices(
    client: TestClient, db: Session, settings: Settings, company: Company
) -> None:
    customer = make_customer(db, company)
    shown = make_invoice(db, customer, number="SHOWN-1")
    hidden = make_invoice(db, customer, number="HIDDEN-1")
    path = link_for(db, settings, customer, invoice_numbers=["SHOWN-1"])
    assert len(path) <= 60
    assert client.get(path).status_code == 303
    page = client.get("/").text
    assert "SHOWN-1" in page
    assert "HIDDEN-1" not in page
    assert client.get(f"/invoices/{shown.id}").status_code == 200
    assert client.get(f"/invoices/{hidden.id}").status_code == 404


def test_idle_session_ends(
    client: TestClient, db: Session, settings: Settings, company: Company
) -> None:
    customer = make_customer(db, company)
    make_invoice(db, customer, number="IDLE-1")
    open_portal(client, db, settings, customer)
    assert "IDLE-1" in client.get("/").text
    clock.freeze(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=settings.session_idle_minutes + 1))
    response = client.get("/invoices/1")
    assert response.status_code == 401
    assert "IDLE-1" not in client.get("/").text


def test_logout_ends_the_session(
    client: TestClient, db: Session, settings: Settings, company: Company
) -> None:
    customer = make_customer(db, company)
    make_invoice(db, customer, number="OUT-1")
    open_portal(client, db, settings, customer)
    cookie = client.cookies.get("relance_session")
    response = client.post("/logout")
    assert response.status_code == 303
    assert response.headers["location"] == "/logged-out"
    assert "OUT-1" not in client.get("/").text
    client.cookies.set("relance_session", cookie or "")  # a copied cookie is dead too
    assert "OUT-1" not in client.get("/").text


@pytest.fixture
def mail_client(
    tmp_path: Path, session_factory: sessionmaker[Session], db: Session, company: Company
) -> Iterator[tuple[TestClient, Inbox, Settings]]:
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
                "PORTAL_FRESH_LINK_LIMIT_PER_HOUR": "3",
            }
        )
        db.commit()
        app = create_app(settings, session_factory=session_factory)
        with TestClient(
            app, follow_redirects=False, headers={"Sec-Fetch-Site": "same-origin"}
        ) as c:
            yield c, inbox, settings


def test_fresh_link_is_emailed_to_the_address_on_file(
    mail_client: tuple[TestClient, Inbox, Settings], db: Session, company: Company
) -> None:
    client, inbox, _settings = mail_client
    customer = make_customer(db, company, email="anna@example.com", language="en")
    make_invoice(db, customer, number="FRESH-1")
    db.commit()
    known = client.post("/fresh-link", data={"email": "Anna@Example.com "})
    unknown = client.post("/fresh-link", data={"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 200
    assert known.text.replace("Anna@Example.com", "") == unknown.text.replace(
        "nobody@example.com", ""
    )
    [message] = inbox.wait_for(1)
    assert message["To"] == "anna@example.com"
    url = re.search(r"http://testserver(/l/\S+)", text_body(message))
    assert url is not None
    assert client.get(url.group(1)).status_code == 303
    assert "FRESH-1" in client.get("/").text


def test_fresh_link_from_an_expired_link_goes_only_to_that_customer(
    mail_client: tuple[TestClient, Inbox, Settings], db: Session, company: Company
) -> None:
    client, inbox, settings = mail_client
    shared = "shared@example.com"
    first = make_customer(db, company, email=shared)
    make_customer(db, company, email=shared)
    clock.freeze(dt.datetime.now(dt.UTC) - dt.timedelta(days=60))
    token = signer_for(settings).sign(LinkClaims(first.id, first.link_version))
    clock.freeze(None)
    db.commit()
    assert client.get(f"/l/{token}").status_code == 410
    assert client.post("/fresh-link", data={"email": shared, "token": token}).status_code == 200
    messages = inbox.wait_for(1)
    assert len(messages) == 1


def test_fresh_link_requests_are_rate_limited(
    mail_client: tuple[TestClient, Inbox, Settings], db: Session, company: Company
) -> None:
    client, inbox, _settings = mail_client
    make_customer(db, company, email="busy@example.com")
    db.commit()
    statuses = [
        client.post("/fresh-link", data={"email": "busy@example.com"}).status_code for _ in range(5)
    ]
    assert statuses == [200, 200, 200, 429, 429]
    assert len(inbox.wait_for(3)) == 3


@pytest.mark.parametrize("email", ["", "not-an-address", "a@b", "x" * 300 + "@example.com"])
def test_fresh_link_with_a_bad_address_explains_and_changes_nothing(
    client: TestClient, db: Session, email: str
) -> None:
    response = client.post("/fresh-link", data={"email": email}, headers={"Accept-Language": "fr"})
    assert response.status_code == 400
    assert 'aria-invalid="true"' in response.text
