"""Branding by admins: colours refused below WCAG AA, logos checked, texts per language,
the email sender, a preview before saving; applied to pages, emails and PDFs."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from portal.company.models import Company
from portal.settings import Settings
from portal.timeline.models import TimelineEvent
from portal.users.models import Role
from tests.factories import make_customer, make_invoice
from tests.web.embed_helpers import cheap_hashing, log_in, make_staff
from tests.web.helpers import open_portal

__all__ = ["cheap_hashing"]
pytestmark = pytest.mark.usefixtures("cheap_hashing")

CLEAN_SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">'
    b'<rect width="10" height="10" fill="#123456"/></svg>'
)


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "#123456").save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def admin(client: TestClient, db: Session) -> TestClient:
    log_in(client, make_staff(db))
    return client


def _post(client: TestClient, files: dict[str, tuple[str, bytes, str]] | None = None, **data: str):  # type: ignore[no-untyped-def]
    return client.post("/admin/branding", data={"action": "save", **data}, files=files or {})


def test_only_admins_change_the_branding(client: TestClient, db: Session) -> None:
    log_in(client, make_staff(db, Role.CREDIT_MANAGER))
    assert client.get("/admin/branding").status_code == 403
    assert _post(client, primary_colour="#000000").status_code == 403


def test_a_colour_below_wcag_aa_is_refused_with_the_reason(admin: TestClient) -> None:
    admin.headers["Accept-Language"] = "en"
    response = _post(admin, primary_colour="#7a9cc6", accent_colour="#ffcc00")
    assert response.status_code == 400
    text = re.sub(r"\s+", " ", response.text)
    assert re.search(r"#7a9cc6 is refused: against #[0-9a-f]{6} its contrast is 2\.\d:1", text)
    assert "WCAG AA asks for at least 4.5:1" in text
    assert "#ffcc00 is refused" in text
    assert "#7a9cc6" not in admin.get("/brand.css").text


def test_saved_branding_reaches_the_portal_pages(
    admin: TestClient, db: Session, company: Company, settings: Settings
) -> None:
    response = _post(
        admin,
        primary_colour="#5a1f79",
        accent_colour="#0b5a3e",
        sender_name="Acme billing",
        sender_email="billing@acme.example",
        welcome_fr="Bienvenue chez Acme.",
        footer_en="Acme Ltd, since 1901.",
        legal_fr="Acme SAS au capital de 10 000 €",
        support_fr="Appelez le 01 02 03 04 05",
    )
    assert response.status_code == 303, response.text
    css = admin.get("/brand.css").text
    assert "--brand:#5a1f79" in css
    assert "--accent:#0b5a3e" in css
    admin.post("/admin/logout")
    admin.cookies.clear()
    welcome = admin.get("/", headers={"Accept-Language": "fr"}).text
    assert "Bienvenue chez Acme." in welcome
    assert "Acme SAS au capital de 10 000 €" in welcome
    assert "Appelez le 01 02 03 04 05" in welcome
    assert "Acme Ltd, since 1901." not in welcome  # the English footer only in English
    english = admin.get("/", headers={"Accept-Language": "en"}).text
    assert "Acme Ltd, since 1901." in english
    assert "Bienvenue" not in english
    # Documents carry the legal mentions, in the customer's language.
    customer = make_customer(db, company, language="fr")
    invoice = make_invoice(db, customer)
    open_portal(admin, db, settings, customer)
    pdf = admin.get(f"/invoices/{invoice.id}/pdf")
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Acme SAS au capital de 10" in text
    assert admin.app.state.mailer.sender_source() == "Acme billing <billing@acme.example>"  # type: ignore[attr-defined]
    (event,) = db.scalars(
        select(TimelineEvent).where(TimelineEvent.action == "branding.changed")
    ).all()
    assert event.details is not None
    assert event.details["primary_colour"] == "#5a1f79"


def test_a_preview_changes_nothing(admin: TestClient) -> None:
    response = admin.post(
        "/admin/branding",
        data={"action": "preview", "primary_colour": "#5a1f79", "welcome_en": "Hello from Acme"},
        files={"logo": ("logo.png", _png(), "image/png")},
    )
    assert response.status_code == 200
    assert "Preview (not saved yet)" in response.text or "Aperçu" in response.text
    assert "Hello from Acme" in response.text
    assert 'src="data:image/png;base64,' in response.text
    assert "primary=%235a1f79" in response.text
    assert "#5a1f79" not in admin.get("/brand.css").text
    css = admin.get(
        "/admin/branding/preview.css", params={"primary": "#5a1f79", "accent": "#0b5a3e"}
    )
    assert ".brand-preview{--brand:#5a1f79;--accent:#0b5a3e;}" in css.text
    assert admin.get("/admin/branding/preview.css", params={"primary": "red;}"}).status_code == 400


def test_a_png_or_a_plain_svg_becomes_the_logo(admin: TestClient) -> None:
    png = _png()
    assert _post(admin, files={"logo": ("logo.png", png, "image/png")}).status_code == 303
    served = admin.get("/logo")
    assert served.content == png
    assert served.headers["content-type"] == "image/png"
    assert _post(admin, files={"logo": ("l.svg", CLEAN_SVG, "image/svg+xml")}).status_code == 303
    served = admin.get("/logo")
    assert served.content == CLEAN_SVG
    assert "sandbox" in served.headers["content-security-policy"]
    assert _post(admin, remove_logo="1").status_code == 303
    assert admin.get("/logo").content != CLEAN_SVG


@pytest.mark.parametrize(
    "svg",
    [
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
        b'<svg xmlns="http://www.w3.org/2000/svg"><foreignObject/></svg>',
        b'<svg xmlns="http://www.w3.org/2000/svg"><use href="https://evil.example/x.svg#a"/></svg>',
        b'<svg xmlns="http://www.w3.org/2000/svg"><rect style="fill:url(https://e.x/)"/></svg>',
        b'<!DOCTYPE svg [<!ENTITY x "y">]><svg xmlns="http://www.w3.org/2000/svg">&x;</svg>',
        b"<svg><rect/></svg>",  # not in the SVG namespace
    ],
)
def test_an_svg_with_more_than_a_drawing_is_refused(admin: TestClient, svg: bytes) -> None:
    response = _post(admin, files={"logo": ("logo.svg", svg, "image/svg+xml")})
    assert response.status_code == 400
    assert 'id="f-logo-error"' in response.text


def test_other_files_are_refused_as_logos(admin: TestClient) -> None:
    for content in (b"GIF89a....", b"\x89PNG\r\n\x1a\nbroken", b"x" * (600 * 1024)):
        response = _post(admin, files={"logo": ("logo.png", content, "image/png")})
        assert response.status_code == 400
        assert 'id="f-logo-error"' in response.text


def test_the_sender_and_texts_are_checked(admin: TestClient) -> None:
    response = _post(
        admin, sender_name="Evil\r\nBcc: x@y", sender_email="nope", welcome_fr="x" * 1001
    )
    assert response.status_code == 400
    for field in ("sender_name", "sender_email", "welcome_fr"):
        assert f'id="f-{field}-error"' in response.text
