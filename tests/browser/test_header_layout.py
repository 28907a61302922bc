"""Headers on a 360 px phone and a desktop: the portal's is one row of navigation under the
brand, the back office's two rows, never four."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, NewContext
from tests.browser.helpers import ENGLISH_CUSTOMER, FRENCH_CUSTOMER, en, fr, open_portal
from tests.browser.test_cases import ADMIN, log_in

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}
SHOTS = os.environ.get("RELANCE_SCREENSHOTS")  # a folder: keep a picture of each header

# Height of the header and the number of distinct rows its links and buttons sit on.
MEASURE = """(selector) => {
    const header = document.querySelector(selector);
    const items = [...header.querySelectorAll('a, button')].filter(e => e.offsetParent !== null);
    const rows = new Set(items.map(e => Math.round(e.getBoundingClientRect().top / 8)));
    const wrapped = items.filter(e => {
        const style = getComputedStyle(e);
        const line = parseFloat(style.lineHeight) || parseFloat(style.fontSize) * 1.3;
        return e.getBoundingClientRect().height > Math.max(line * 1.8, 50);
    }).map(e => e.textContent.trim());
    return {height: header.getBoundingClientRect().height, rows: rows.size, wrapped};
}"""


def _measure(page: Page, name: str) -> dict[str, object]:
    if SHOTS:
        page.screenshot(path=f"{SHOTS}/{name}.png")
    return page.evaluate(MEASURE, "header.site-header")  # type: ignore[no-any-return]


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["360px", "desktop"])
@pytest.mark.parametrize("customer", [FRENCH_CUSTOMER, ENGLISH_CUSTOMER], ids=["fr", "en"])
def test_the_portal_header_is_the_brand_and_one_row_of_tabs(
    new_context: NewContext,
    live_server: LiveServer,
    viewport: dict[str, int],
    customer: tuple[str, str],
) -> None:
    page = new_context(viewport=viewport).new_page()
    language = "fr" if customer is FRENCH_CUSTOMER else "en"
    open_portal(page, live_server.demo_links[customer[0]], customer[1], language)
    t = fr if language == "fr" else en
    expect(page.get_by_role("link", name=t("My requests"))).to_be_visible()
    found = _measure(page, f"portal-{language}-{viewport['width']}")
    assert found["wrapped"] == [], found
    assert found["rows"] <= 2, found  # the brand row, then the tabs
    assert found["height"] <= 130, found


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["360px", "desktop"])
def test_the_back_office_header_fits_in_two_rows(
    new_context: NewContext, live_server: LiveServer, viewport: dict[str, int]
) -> None:
    page = new_context(viewport=viewport).new_page()
    log_in(page, *ADMIN)
    found = _measure(page, f"backoffice-{viewport['width']}")
    assert found["wrapped"] == [], found
    assert found["rows"] <= 2, found
    assert found["height"] <= 140, found
    # Every section stays reachable on the phone: the row of tabs scrolls, nothing is cut.
    for name in ("Settings", "Webhooks", "My account"):
        page.get_by_role("link", name=en(name), exact=True).first.click()
        expect(page.get_by_role("heading", level=1)).to_be_visible()
