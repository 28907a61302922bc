"""How pages and their files reach a browser: compressed, cached by version, a favicon."""

from __future__ import annotations

import re

from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from portal.company.models import Company
from portal.settings import Settings
from tests.factories import make_customer, make_invoice
from tests.web.helpers import open_portal

GZIP = {"Accept-Encoding": "gzip"}


def _asset_urls(html: str) -> list[str]:
    return re.findall(r'(?:href|src)="(/static/[^"]+)"', html)


def test_pages_styles_and_scripts_are_gzipped_for_browsers_that_accept_it(
    client: TestClient, db: Session, settings: Settings, company: Company
) -> None:
    customer = make_customer(db, company)
    make_invoice(db, customer, number="GZ-1")
    open_portal(client, db, settings, customer)
    page = client.get("/", headers=GZIP)
    assert page.headers["content-encoding"] == "gzip"
    assert "Accept-Encoding" in page.headers["vary"]
    assert "HX-Request" in page.headers["vary"]  # the page's own Vary is kept
    assert "GZ-1" in page.text
    urls = _asset_urls(page.text)
    assert any(".css" in url for url in urls)
    for url in urls:
        if url.endswith((".ico",)) or ".ico?" in url:
            continue
        answer = client.get(url, headers=GZIP)
        assert answer.status_code == 200, url
        assert answer.headers.get("content-encoding") == "gzip", url
    plain = client.get("/", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert "GZ-1" in plain.text


def test_static_files_have_versioned_urls_kept_for_a_year(client: TestClient) -> None:
    page = client.get("/admin/login")
    urls = _asset_urls(page.text)
    assert urls
    assert all(re.search(r"\?v=[0-9a-f]{12}$", url) for url in urls), urls
    for url in urls:
        cache = client.get(url).headers["cache-control"]
        assert "immutable" in cache, url
        assert "max-age=31536000" in cache, url
    # The same file under an old or missing version is revalidated, never frozen.
    stale = client.get(urls[0].split("?")[0] + "?v=000000000000").headers["cache-control"]
    assert "immutable" not in stale
    assert "no-cache" in stale
    assert "immutable" not in client.get(urls[0].split("?")[0]).headers["cache-control"]


def test_there_is_a_favicon(client: TestClient) -> None:
    page = client.get("/admin/login")
    icon = re.search(r'<link rel="icon" href="([^"]+)"', page.text)
    assert icon is not None
    linked = client.get(icon.group(1))
    assert linked.status_code == 200
    assert linked.content[:4] == b"\x00\x00\x01\x00"  # an ICO file
    default = client.get("/favicon.ico")
    assert default.status_code == 200
    assert default.headers["content-type"] in ("image/x-icon", "image/vnd.microsoft.icon")
