"""The widget: embed.js, allowed host sites, the embedded layout and its cookie, and the
hand-over when the frame keeps no cookie."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from portal.access.models import DebtorSession
from portal.company.models import Company
from portal.embed.models import EmbedOrigin
from portal.settings import Settings
from portal.timeline.models import TimelineEvent
from portal.users.models import Role
from tests.factories import make_customer, make_invoice
from tests.web.embed_helpers import HOST, allow_host, cheap_hashing, log_in, make_staff

__all__ = ["cheap_hashing"]
pytestmark = pytest.mark.usefixtures("cheap_hashing")


@pytest.fixture
def quick(client: TestClient) -> TestClient:
    client.app.state.lookup_answer_seconds = 0  # type: ignore[attr-defined]
    return client


def _lookup_in_frame(client: TestClient, db: Session, company: Company) -> tuple[str, str]:
    """An embedded lookup that succeeds: (the redirect's location, its Set-Cookie)."""
    customer = make_customer(db, company)
    make_invoice(db, customer, number="F-2026-7", amount_minor=12_050)
    db.commit()
    response = client.post(
        "/lookup", data={"invoice_number": "F-2026-7", "amount": "120,50", "host": HOST}
    )
    assert response.status_code == 303, response.text
    return response.headers["location"], response.headers["set-cookie"]


def test_embed_js_is_served_to_other_sites(client: TestClient) -> None:
    response = client.get("/embed.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["cross-origin-resource-policy"] == "cross-origin"
    assert "relance:height" in response.text
    assert "event.origin !== portal" in response.text


def test_a_site_not_allowed_gets_no_widget_and_cannot_frame_the_portal(
    client: TestClient,
) -> None:
    response = client.get("/embed", params={"host": HOST})
    assert response.status_code == 403
    assert HOST not in response.headers["content-security-policy"]
    assert "data-host-origin" not in response.text


def test_an_allowed_site_frames_the_portal_in_the_compact_layout(
    client: TestClient, db: Session, company: Company
) -> None:
    allow_host(client, db)
    response = client.get("/embed", params={"host": HOST, "lang": "en"})
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert f"frame-ancestors 'self' {HOST}" in csp
    assert f'data-host-origin="{HOST}"' in response.text
    assert 'class="site-header"' not in response.text  # the host page has the header
    assert "<h1>Pay an invoice</h1>" in response.text
    assert f'name="host" value="{HOST}"' in response.text
    assert "/static/js/frame.js" in response.text
    # Every page, not only the widget's, may now be framed by that site.
    assert HOST in client.get("/healthz").headers["content-security-policy"]
    stored = db.scalars(select(EmbedOrigin.origin)).all()
    assert stored == [HOST]
    assert "embed.origin_added" in db.scalars(select(TimelineEvent.action)).all()


def test_admins_only_and_origins_are_checked(
    client: TestClient, db: Session, company: Company
) -> None:
    log_in(client, make_staff(db, Role.CREDIT_MANAGER))
    assert client.get("/admin/embed").status_code == 403
    assert client.post("/admin/embed/origins", data={"origin": HOST}).status_code == 403
    client.post("/admin/logout")
    client.cookies.clear()
    log_in(client, make_staff(db))
    for typed in ("http://www.client.example", "https://www.client.example/pay", "*", "x"):
        response = client.post("/admin/embed/origins", data={"origin": typed})
        assert response.status_code == 400, typed
        assert 'role="alert"' in response.text
    page = client.post("/admin/embed/origins", data={"origin": "https://WWW.Client.Example:443/"})
    assert page.status_code == 303
    assert HOST in client.get("/admin/embed").text
    removed = client.post("/admin/embed/origins/remove", data={"origin": HOST})
    assert removed.status_code == 303
    assert HOST not in client.get("/healthz").headers["content-security-policy"]


def test_an_embedded_session_gets_a_partitioned_cookie_and_stays_in_the_frame(
    quick: TestClient, db: Session, company: Company, settings: Settings
) -> None:
    allow_host(quick, db)
    location, cookie = _lookup_in_frame(quick, db, company)
    assert location.startswith("/embed/check?h=")
    assert "SameSite=None" in cookie
    assert "Secure" in cookie
    assert "Partitioned" in cookie
    assert "HttpOnly" in cookie
    secret = re.match(r"relance_session=([^;]+);", cookie)
    assert secret is not None
    quick.cookies.set("relance_session", secret.group(1))
    checked = quick.get(location)
    assert checked.status_code == 303
    assert checked.headers["location"] == "/"
    home = quick.get("/")
    assert 'class="site-header"' not in home.text
    assert f'data-host-origin="{HOST}"' in home.text
    assert "F-2026-7" in home.text
    row = db.scalars(select(DebtorSession).order_by(DebtorSession.created_at.desc())).first()
    assert row is not None
    assert row.embed_origin == HOST
    # Links that leave the frame open in a new tab.
    assert 'target="_blank" rel="noopener">' in home.text


def test_without_the_cookie_the_frame_offers_a_new_tab_never_the_welcome_page(
    quick: TestClient, db: Session, company: Company
) -> None:
    allow_host(quick, db)
    location, _cookie = _lookup_in_frame(quick, db, company)
    quick.cookies.clear()  # the browser dropped it
    page = quick.get(location)
    assert page.status_code == 200
    assert "Continue in a new tab" in page.text or "Continuer dans un nouvel onglet" in page.text
    assert 'id="storage-access"' in page.text
    tab_url = re.search(r'href="(/embed/resume\?h=[^"&]+&amp;to=tab)"', page.text)
    assert tab_url is not None
    resumed = quick.get(tab_url.group(1).replace("&amp;", "&"))
    assert resumed.status_code == 303
    assert resumed.headers["location"] == "/"
    assert "SameSite=lax" in resumed.headers["set-cookie"]
    assert "Partitioned" not in resumed.headers["set-cookie"]
    home = quick.get("/")
    assert "F-2026-7" in home.text
    assert 'class="site-header"' in home.text
    # The token works once.
    quick.cookies.clear()
    again = quick.get(tab_url.group(1).replace("&amp;", "&"))
    assert again.status_code == 410
    actions = db.scalars(select(TimelineEvent.action)).all()
    assert actions.count("portal.session_handed_over") == 1


def test_storage_access_resumes_in_the_frame_with_both_cookies(
    quick: TestClient, db: Session, company: Company
) -> None:
    allow_host(quick, db)
    location, _cookie = _lookup_in_frame(quick, db, company)
    quick.cookies.clear()
    token = location.split("h=", 1)[1]
    resumed = quick.get("/embed/resume", params={"h": token, "to": "frame"})
    assert resumed.status_code == 303
    assert resumed.headers["location"].startswith("/embed/check?h=")
    cookies = resumed.headers.get_list("set-cookie")
    assert any("Partitioned" in c for c in cookies)
    assert any("SameSite=None; Secure" in c and "Partitioned" not in c for c in cookies)
    # Still no cookie after the grant: the page says so and keeps the new tab, no loop.
    quick.cookies.clear()
    still = quick.get(resumed.headers["location"])
    assert still.status_code == 200
    assert 'id="storage-access"' not in still.text
    assert "/embed/resume?h=" in still.text


def test_a_forged_or_stale_hand_over_opens_nothing(client: TestClient) -> None:
    assert client.get("/embed/check", params={"h": "forged"}).status_code == 410
    assert client.get("/embed/resume", params={"h": "x.y.z", "to": "tab"}).status_code == 410


def test_logging_out_in_the_frame_stays_in_the_frame(
    quick: TestClient, db: Session, company: Company
) -> None:
    allow_host(quick, db)
    _location, cookie = _lookup_in_frame(quick, db, company)
    secret = re.match(r"relance_session=([^;]+);", cookie)
    assert secret is not None
    quick.cookies.set("relance_session", secret.group(1))
    out = quick.post("/logout")
    assert out.status_code == 303
    assert out.headers["location"] == "/logged-out?host=https%3A%2F%2Fwww.client.example"
    cleared = out.headers.get_list("set-cookie")
    assert any("Max-Age=0" in c and "Partitioned" in c for c in cleared)
    page = quick.get(out.headers["location"])
    assert f'data-host-origin="{HOST}"' in page.text
    assert 'class="site-header"' not in page.text
    # A host that is not allowed gets the ordinary page.
    other = quick.get("/logged-out", params={"host": "https://evil.example"})
    assert "data-host-origin" not in other.text


def test_the_language_switch_before_a_session_keeps_the_frame(
    client: TestClient, db: Session, company: Company
) -> None:
    allow_host(client, db)
    response = client.post(
        "/language", data={"language": "en", "next": f"/embed?host={HOST}&lang=fr"}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/embed?host=https%3A%2F%2Fwww.client.example&lang=en"
    page = client.get(response.headers["location"])
    assert "<h1>Pay an invoice</h1>" in page.text
