"""Security baseline: cross-site requests, headers, error pages."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from portal.company.models import Company
from portal.settings import Settings, load_settings
from portal.web.app import create_app
from tests.conftest import TEST_SECRET
from tests.factories import make_customer, make_invoice
from tests.web.helpers import open_portal


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {},
    ],
)
def test_cross_site_posts_are_refused_and_change_nothing(
    client: TestClient, db: Session, settings: Settings, company: Company, headers: dict[str, str]
) -> None:
    customer = make_customer(db, company)
    make_invoice(db, customer, number="CSRF-1")
    open_portal(client, db, settings, customer)
    client.headers.pop("Sec-Fetch-Site")
    response = client.post("/logout", headers=headers)
    assert response.status_code == 403
    client.headers["Sec-Fetch-Site"] = "same-origin"
    assert "CSRF-1" in client.get("/").text  # still logged in


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "same-origin", "HX-Request": "true"},
        {"Origin": "http://testserver"},
    ],
)
def test_same_origin_posts_pass_htmx_included(
    client: TestClient, db: Session, settings: Settings, company: Company, headers: dict[str, str]
) -> None:
    customer = make_customer(db, company)
    open_portal(client, db, settings, customer)
    client.headers.pop("Sec-Fetch-Site")
    assert client.post("/logout", headers=headers).status_code == 303


def test_security_headers_on_every_response(client: TestClient) -> None:
    for path in ("/", "/healthz", "/static/css/portal.css", "/no-such-page", "/l/bad"):
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert "frame-ancestors 'self'" in csp
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-content-type-options"] == "nosniff"
        assert "strict-transport-security" not in headers  # development


def test_frame_ancestors_come_from_configuration(
    tmp_path: Path, session_factory: sessionmaker[Session], db: Session, company: Company
) -> None:
    settings = load_settings(
        {
            "PORTAL_ENVIRONMENT": "test",
            "PORTAL_SECRET_KEYS": TEST_SECRET,
            "PORTAL_DOCUMENTS_DIR": str(tmp_path),
            "PORTAL_FRAME_ANCESTORS": "'self' https://www.client.example",
        }
    )
    db.commit()
    with TestClient(create_app(settings, session_factory=session_factory)) as client:
        csp = client.get("/").headers["content-security-policy"]
    assert "frame-ancestors 'self' https://www.client.example" in csp


def test_pages_carry_no_inline_script(
    client: TestClient, db: Session, settings: Settings, company: Company
) -> None:
    customer = make_customer(db, company)
    invoice = make_invoice(db, customer)
    open_portal(client, db, settings, customer)
    for path in ("/", "/paid", f"/invoices/{invoice.id}"):
        html = client.get(path).text
        assert "<script>" not in html
        assert " style=" not in html
        assert " onclick=" not in html


def test_unknown_page_is_a_translated_404(client: TestClient) -> None:
    french = client.get("/nope", headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    english = client.get("/nope", headers={"Accept-Language": "en-GB"})
    assert french.status_code == english.status_code == 404
    assert '<html lang="fr">' in french.text
    assert '<html lang="en">' in english.text
    assert french.text != english.text


def test_portal_pages_need_a_session(client: TestClient) -> None:
    for path in ("/paid", "/invoices/1", "/invoices/1/pdf", "/statement.pdf", "/statement.csv"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert 'action="/fresh-link"' in response.text


def test_healthz_reports_an_unreachable_database(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "PORTAL_ENVIRONMENT": "test",
            "PORTAL_SECRET_KEYS": TEST_SECRET,
            "PORTAL_DOCUMENTS_DIR": str(tmp_path),
            "PORTAL_DATABASE_URL": f"sqlite:///{tmp_path / 'health.db'}",
        }
    )
    from portal import migrate

    migrate.upgrade(settings.database_url)
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").json() == {"status": "ok", "database": "ok"}
        state = client.app.state  # type: ignore[attr-defined]
        for factory in (state.session_factory, state.read_session_factory):
            factory.kw["bind"].dispose()
        (tmp_path / "health.db").unlink()
        (tmp_path / "health.db").mkdir()  # the database file is gone and cannot be recreated
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"
