"""axe-core on every page, keyboard-only use, and a 360 px wide screen."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from portal.i18n import language_name
from tests.browser.conftest import LiveServer, NewContext
from tests.browser.helpers import (
    ENGLISH_CUSTOMER,
    FRENCH_CUSTOMER,
    assert_no_axe_violations,
    en,
    expired_link,
    fr,
    open_portal,
    status,
    tampered_link,
)

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 740}


def _french_account(page: Page, server: LiveServer) -> None:
    open_portal(page, server.demo_links[FRENCH_CUSTOMER[0]], FRENCH_CUSTOMER[1])


def _english_account(page: Page, server: LiveServer) -> None:
    open_portal(page, server.demo_links[ENGLISH_CUSTOMER[0]], ENGLISH_CUSTOMER[1], "en")


def home_fr(page: Page, server: LiveServer, revoked: str) -> None:
    _french_account(page, server)


def home_en(page: Page, server: LiveServer, revoked: str) -> None:
    _english_account(page, server)


def home_switched_to_english(page: Page, server: LiveServer, revoked: str) -> None:
    _french_account(page, server)
    page.get_by_role("button", name=language_name("en")).click()
    expect(page.locator("html")).to_have_attribute("lang", "en")


def home_filtered(page: Page, server: LiveServer, revoked: str) -> None:
    """After an htmx swap of the table."""
    _french_account(page, server)
    page.get_by_role("navigation", name=fr("Filter invoices")).get_by_role(
        "link", name=fr("Not yet due"), exact=True
    ).click()
    expect(page.get_by_role("table").get_by_role("link")).to_have_count(1)


def invoice(page: Page, server: LiveServer, revoked: str) -> None:
    _french_account(page, server)
    page.get_by_role("link", name="F2026-0102", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        fr("Invoice %(number)s", number="F2026-0102")
    )


def paid(page: Page, server: LiveServer, revoked: str) -> None:
    _english_account(page, server)
    page.get_by_role("link", name=en("Paid invoices")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(en("Paid invoices"))


def welcome(page: Page, server: LiveServer, revoked: str) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_have_text(en("Payment portal"))


def welcome_fr(page: Page, server: LiveServer, revoked: str) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_have_text(fr("Payment portal"))


def session_ended(page: Page, server: LiveServer, revoked: str) -> None:
    assert status(page.goto("/paid")) == 401


def welcome_with_error(page: Page, server: LiveServer, revoked: str) -> None:
    page.goto("/")
    page.get_by_role("textbox", name=en("Your email address")).fill("oops")
    page.get_by_role("button", name=en("Email me a new link")).click()
    expect(page.get_by_role("textbox", name=en("Your email address"))).to_have_attribute(
        "aria-invalid", "true"
    )


def logged_out(page: Page, server: LiveServer, revoked: str) -> None:
    _english_account(page, server)
    page.get_by_role("button", name=en("Log out")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(en("You are logged out"))


def expired(page: Page, server: LiveServer, revoked: str) -> None:
    assert status(page.goto(expired_link(server))) == 410


def invalid(page: Page, server: LiveServer, revoked: str) -> None:
    assert status(page.goto(tampered_link(server.demo_links["C-1005"]))) == 400


def revoked_page(page: Page, server: LiveServer, revoked: str) -> None:
    assert status(page.goto(revoked)) == 410


def fresh_link_sent(page: Page, server: LiveServer, revoked: str) -> None:
    page.goto("/")
    page.get_by_role("textbox", name=en("Your email address")).fill("someone@unknown.example")
    page.get_by_role("button", name=en("Email me a new link")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(en("Check your inbox"))


def not_found(page: Page, server: LiveServer, revoked: str) -> None:
    _english_account(page, server)
    assert status(page.goto("/invoices/999999")) == 404


def not_found_without_session(page: Page, server: LiveServer, revoked: str) -> None:
    assert status(page.goto("/no-such-page")) == 404


def transfer_fr(page: Page, server: LiveServer, revoked: str) -> None:
    _french_account(page, server)
    page.get_by_role("button", name=fr("Pay by bank transfer")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(fr("Pay by bank transfer"))
    expect(page.get_by_role("textbox", name=fr("IBAN"))).to_have_attribute("readonly", "")


def transfer_declare_error(page: Page, server: LiveServer, revoked: str) -> None:
    """The declaration form refused (amount zero): the error state, nothing declared."""
    _english_account(page, server)
    page.get_by_role("button", name=en("Pay by bank transfer")).click()
    amount = page.get_by_role(
        "textbox", name=en("Amount transferred (%(currency)s)", currency="EUR")
    )
    amount.fill("0")
    page.get_by_role("button", name=en("I have paid by transfer")).click()
    expect(amount).to_have_attribute("aria-invalid", "true")


def card_en(page: Page, server: LiveServer, revoked: str) -> None:
    """The card page with Stripe's fields mounted (localstripe's stand-in of Stripe.js)."""
    _english_account(page, server)
    page.get_by_role("button", name=en("Pay by card")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(en("Pay by card"))
    expect(page.locator("#payment-element input").first).to_be_visible()


def card_fr(page: Page, server: LiveServer, revoked: str) -> None:
    _french_account(page, server)
    page.get_by_role("button", name=fr("Pay by card")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(fr("Pay by card"))


def pay_error(page: Page, server: LiveServer, revoked: str) -> None:
    """The choice form refused (an amount below the partial-payment minimum)."""
    _english_account(page, server)
    page.get_by_role("textbox", name=en("Amount to pay (optional)")).fill("0.50")
    page.get_by_role("button", name=en("Pay by card")).click()
    expect(page.get_by_role("alert")).to_be_visible()


Visit = Callable[[Page, LiveServer, str], None]
PAGES: list[tuple[Visit, dict[str, object]]] = [
    (home_fr, {}),
    (home_en, {}),
    (home_switched_to_english, {}),
    (home_filtered, {}),
    (home_fr, {"viewport": PHONE}),
    (home_en, {"viewport": PHONE}),
    (invoice, {}),
    (invoice, {"viewport": PHONE}),
    (paid, {}),
    (welcome, {}),
    (welcome_fr, {"locale": "fr-FR"}),
    (session_ended, {}),
    (welcome_with_error, {}),
    (logged_out, {}),
    (expired, {}),
    (invalid, {}),
    (revoked_page, {}),
    (fresh_link_sent, {}),
    (not_found, {}),
    (not_found_without_session, {}),
    (transfer_fr, {}),
    (transfer_fr, {"viewport": PHONE}),
    (transfer_declare_error, {}),
    (card_en, {}),
    (card_fr, {"viewport": PHONE}),
    (pay_error, {}),
]


@pytest.mark.parametrize(
    ("visit", "options"),
    PAGES,
    ids=[visit.__name__ + ("-360px" if "viewport" in options else "") for visit, options in PAGES],
)
def test_axe_finds_no_violation(
    visit: Visit,
    options: dict[str, object],
    new_context: NewContext,
    live_server: LiveServer,
    revoked_link: str,
    axe: Axe,
) -> None:
    page = new_context(**options).new_page()
    visit(page, live_server, revoked_link)
    assert_no_axe_violations(axe, page, visit.__name__)


def _focused(page: Page) -> dict[str, str]:
    return page.evaluate(
        """() => {
            const e = document.activeElement;
            return {tag: e.tagName.toLowerCase(), id: e.id, text: e.textContent.trim(),
                    href: e.getAttribute('href') || '', outline: getComputedStyle(e).outlineStyle};
        }"""
    )


def test_keyboard_only_reaches_the_skip_link_the_invoices_and_opens_one(
    page: Page, live_server: LiveServer
) -> None:
    _french_account(page, live_server)

    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name=fr("Skip to content"))
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    assert _focused(page)["outline"] != "none"

    page.keyboard.press("Enter")
    expect(page.get_by_role("main")).to_be_focused()

    # From the main content on, Tab walks to the first invoice without going through the header.
    visited = []
    for _ in range(15):
        page.keyboard.press("Tab")
        focused = _focused(page)
        visited.append(focused["text"] or focused["tag"])
        assert focused["outline"] != "none", f"no visible focus on {focused}"
        if re.fullmatch(r"/invoices/\d+", focused["href"]):
            break
    else:
        pytest.fail(f"Tab never reached an invoice link; focus went through {visited}")
    assert focused["text"] == "F2026-0102"
    assert fr("Log out") not in visited

    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/invoices/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(
        fr("Invoice %(number)s", number="F2026-0102")
    )

    # And on to the download, by keyboard again.
    for _ in range(15):
        page.keyboard.press("Tab")
        if _focused(page)["text"] == fr("Download the invoice (PDF)"):
            break
    else:
        pytest.fail("Tab never reached the PDF download")
    with page.expect_download() as downloading:
        page.keyboard.press("Enter")
    assert downloading.value.suggested_filename == "F2026-0102.pdf"


SIDEWAYS = """() => {
    const page = document.documentElement.scrollWidth;
    const boxes = [...document.querySelectorAll('body *')].filter(e => {
        const overflow = getComputedStyle(e).overflowX;
        return (overflow === 'auto' || overflow === 'scroll') && e.scrollWidth > e.clientWidth;
    }).map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : ''));
    return {page, boxes};
}"""


def test_a_360px_screen_never_scrolls_sideways(
    new_context: NewContext, live_server: LiveServer
) -> None:
    """Neither the page nor a box inside it (tabs, table) scrolls sideways, in both languages."""
    page = new_context(viewport=PHONE).new_page()
    _french_account(page, live_server)

    def check(what: str) -> None:
        found = page.evaluate(SIDEWAYS)
        assert found["page"] <= PHONE["width"], f"{what}: the page is {found['page']} px wide"
        assert found["boxes"] == [], f"{what}: content scrolls sideways in {found['boxes']}"

    for language, t in (("fr", fr), ("en", en)):
        page.goto("/")
        expect(page.locator("html")).to_have_attribute("lang", language)
        check(f"home ({language})")
        page.get_by_role("link", name="F2026-0103", exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(
            t("Invoice %(number)s", number="F2026-0103")
        )
        check(f"invoice ({language})")
        page.get_by_role("link", name=t("Paid invoices")).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(t("Paid invoices"))
        check(f"paid ({language})")
        page.goto("/")
        page.get_by_role("button", name=t("Pay by card")).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(t("Pay by card"))
        check(f"card ({language})")
        page.goto("/")
        page.get_by_role("button", name=t("Pay by bank transfer")).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(t("Pay by bank transfer"))
        check(f"transfer ({language})")
        page.goto("/")
        if language == "fr":
            page.get_by_role("button", name=language_name("en")).click()
            expect(page.locator("html")).to_have_attribute("lang", "en")


def test_axe_does_report_violations(page: Page, axe: Axe) -> None:
    """The harness itself: axe runs under the page's CSP and would catch a defect."""
    page.goto("/")
    page.evaluate("document.querySelector('main').append(document.createElement('img'))")
    results = axe.run(page)
    assert "image-alt" in {violation["id"] for violation in results.response["violations"]}
