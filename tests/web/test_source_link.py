"""Every portal and back-office page links to the source code (AGPL-3.0 section 13), at the
address PORTAL_SOURCE_URL gives, in the reader's language."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from portal.company.models import Company
from portal.settings import ConfigurationError, Settings, load_settings
from tests.factories import make_customer, make_invoice
from tests.web.helpers import open_portal

SOURCE = "https://git.example.org/acme/relance?ref=v2&fork=1"
SOURCE_IN_HTML = SOURCE.replace("&", "&amp;")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The usual test settings, with the source code elsewhere (as PORTAL_SOURCE_URL sets)."""
    return replace(settings, source_url=SOURCE)


def footer_links(html: str) -> list[tuple[str, str]]:
    footer = re.search(r"<footer.*?</footer>", html, re.S)
    assert footer, html
    return re.findall(r'<a href="([^"]*)">([^<]*)</a>', footer.group(0))


def test_a_portal_page_links_to_the_source_code_in_the_debtors_language(
    client: TestClient, db: Session, settings: Settings, company: Company
) -> None:
    customer = make_customer(db, company, language="fr")
    make_invoice(db, customer, number="SRC-1")
    open_portal(client, db, settings, customer)
    page = client.get("/")
    assert "SRC-1" in page.text
    assert (SOURCE_IN_HTML, "Code source") in footer_links(page.text)


def test_a_back_office_page_links_to_the_source_code(client: TestClient) -> None:
    for language, text in (("en", "Source code"), ("fr", "Code source")):
        page = client.get("/admin/login", headers={"Accept-Language": language})
        assert page.status_code == 200
        assert (SOURCE_IN_HTML, text) in footer_links(page.text)


def test_the_source_address_is_a_setting_with_a_default_and_must_be_a_web_address() -> None:
    assert load_settings({"PORTAL_SOURCE_URL": f" {SOURCE} "}).source_url == SOURCE
    assert load_settings({}).source_url.startswith("https://")
    with pytest.raises(ConfigurationError, match="PORTAL_SOURCE_URL"):
        load_settings({"PORTAL_SOURCE_URL": "javascript:alert(1)"}).check()
