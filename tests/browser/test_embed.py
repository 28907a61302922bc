"""The widget on the company's website, in Chromium: the host page is on another site
(localhost) than the portal (127.0.0.1), as a company's website is."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, FrameLocator, Page, expect

from portal.demo.seed import DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD
from tests.browser.conftest import CHROMIUM_ARGS, DEFAULT_TIMEOUT_MS, LiveServer, NewContext
from tests.browser.embed_site import chromium_profile, host_site
from tests.browser.helpers import add_customer, assert_no_axe_violations, en, pay_button
from tests.stripe_server import LocalStripe, stripe_client

pytestmark = pytest.mark.browser

FRAME = "iframe[title='Pay an invoice on our payment portal']"
# add_customer's invoices: 450.00, 125.50, 300.00
AMOUNTS = ("450.00", "125.50", "300.00")


@pytest.fixture(scope="module")
def host(live_server: LiveServer, browser: Browser) -> Iterator[str]:
    """The company's site, allowed by an admin in the back office."""
    with host_site(live_server.url) as origin:
        context = browser.new_context(base_url=live_server.url, locale="en-GB")
        page = context.new_page()
        _admin(page)
        page.get_by_role("link", name=en("Settings"), exact=True).click()
        page.get_by_role("link", name=en("Company website"), exact=True).click()
        page.get_by_label(en("Site address")).fill(origin)
        page.get_by_role("button", name=en("Allow this site")).click()
        expect(page.get_by_role("status")).to_have_text(en("The site is allowed."))
        expect(page.get_by_text(origin, exact=True)).to_be_visible()
        context.close()
        yield origin


def _admin(page: Page) -> None:
    page.goto("/admin/login")
    page.get_by_label(en("Email address")).fill(DEMO_ADMIN_EMAIL)
    page.get_by_label(en("Password"), exact=True).fill(DEMO_ADMIN_PASSWORD)
    page.get_by_role("button", name=en("Log in")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(en("Dashboard"))


def _frame_height(page: Page) -> int:
    return int(page.locator(FRAME).evaluate("f => f.getBoundingClientRect().height"))


def _content_height(frame: FrameLocator) -> int:
    return int(frame.locator("body").evaluate("b => Math.ceil(b.getBoundingClientRect().height)"))


def _wait_for_fit(page: Page, frame: FrameLocator) -> None:
    """The frame's height follows its content (the postMessage from the framed page)."""
    page.wait_for_function(
        "selector => document.querySelector(selector).style.height !== '560px'", arg=FRAME
    )
    expect(page.locator(FRAME)).to_have_attribute(
        "style", re.compile(rf"height: {_content_height(frame)}px")
    )


def _look_up(frame: FrameLocator, number: str, amount: str) -> None:
    frame.get_by_label(en("Invoice number")).fill(number)
    frame.get_by_label(en("Amount due")).fill(amount)
    frame.get_by_role("button", name=en("Find my invoice")).click()


def test_the_widget_loads_resizes_and_declares_a_transfer(
    new_context: NewContext, live_server: LiveServer, host: str
) -> None:
    _reference, numbers, _email = add_customer(live_server, "Atelier Lumière", "en")
    page = new_context().new_page()
    page.goto(host)
    frame = page.frame_locator(FRAME)
    expect(frame.get_by_role("heading", level=1)).to_have_text(en("Pay an invoice"))
    # No header of its own inside the company's page.
    expect(frame.get_by_role("banner")).to_have_count(0)
    _wait_for_fit(page, frame)
    welcome_height = _frame_height(page)
    # The plain link stays, as the way in without the frame.
    link = page.get_by_role("link", name="Pay an invoice on our payment portal")
    expect(link).to_have_attribute("target", "_blank")

    _look_up(frame, numbers[1], AMOUNTS[1])
    expect(frame.get_by_role("heading", level=1)).to_have_text(
        en("Hello %(name)s", name="Atelier Lumière")
    )
    # Focus follows the debtor into the new page, inside the frame.
    expect(frame.locator("#main")).to_be_focused()
    expect(frame.get_by_role("table").get_by_role("link")).to_have_text([numbers[1]])
    expect(page.locator(FRAME)).not_to_have_attribute(
        "style", re.compile(rf"height: {welcome_height}px")
    )
    _wait_for_fit(page, frame)

    pay_button(frame, "transfer", "en").click()
    expect(frame.get_by_role("heading", level=1)).to_have_text(en("Pay by bank transfer"))
    frame.get_by_role("button", name=en("I have paid by transfer")).click()
    expect(
        frame.get_by_text(en("Declaration received: we will confirm when the money arrives."))
    ).to_be_visible()
    _wait_for_fit(page, frame)
    # The invoice's PDF downloads inside the frame, where the session's cookie is.
    frame.get_by_role("link", name=en("Back to my invoices")).first.click()
    frame.get_by_role("link", name=numbers[1]).click()
    with page.expect_download() as download:
        frame.get_by_role("link", name=en("Download the invoice (PDF)")).click()
    assert download.value.suggested_filename == f"{numbers[1]}.pdf"


def test_brute_force_on_one_invoice_is_throttled(
    new_context: NewContext, live_server: LiveServer, host: str
) -> None:
    _reference, numbers, _email = add_customer(live_server, "Garage Moreau", "en")
    page = new_context().new_page()
    page.goto(host)
    frame = page.frame_locator(FRAME)
    miss = en(
        "We could not find an open invoice matching what you typed. Check the invoice "
        "number and the amount due, or your customer reference and postcode."
    )
    for guess in ("1.00", "2.00", "3.00", "4.00"):
        _look_up(frame, numbers[0], guess)
        expect(frame.get_by_role("alert")).to_have_text(miss)
    _look_up(frame, numbers[0], AMOUNTS[0])  # even the right amount now waits
    expect(frame.get_by_role("alert")).to_have_text(
        re.compile(r"^Too many attempts\. Try again in")
    )


def test_axe_finds_no_violation_inside_the_frame_and_nothing_scrolls_sideways_at_360px(
    new_context: NewContext, live_server: LiveServer, host: str, axe: Axe
) -> None:
    _reference, numbers, _email = add_customer(live_server, "Cave Duval", "en")
    page = new_context(viewport={"width": 360, "height": 740}).new_page()
    page.goto(host)
    frame_locator = page.frame_locator(FRAME)
    expect(frame_locator.get_by_role("heading", level=1)).to_be_visible()
    frame = page.frame(url=re.compile(r"/embed\?"))
    assert frame is not None
    assert_no_axe_violations(axe, frame, "the widget's welcome")  # type: ignore[arg-type]
    _look_up(frame_locator, numbers[2], AMOUNTS[2])
    expect(frame_locator.get_by_role("heading", level=1)).to_have_text(
        en("Hello %(name)s", name="Cave Duval")
    )
    _wait_for_fit(page, frame_locator)
    frame = page.frame(url=f"{live_server.url}/")
    assert frame is not None
    assert_no_axe_violations(axe, frame, "the widget's account")  # type: ignore[arg-type]
    for document in (page.main_frame, frame):
        scroll, client = document.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert scroll <= client, f"{document.url} scrolls sideways: {scroll} > {client}"


def _persistent(browser: Browser, profile: Path) -> BrowserContext:
    """Another Chromium, on a profile of its own (the session's browser has none)."""
    context = browser.browser_type.launch_persistent_context(
        profile, executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS, locale="en-GB"
    )
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    return context


def test_third_party_cookies_blocked_the_partitioned_cookie_still_works(
    browser: Browser, tmp_path: Path, live_server: LiveServer, host: str
) -> None:
    _reference, numbers, _email = add_customer(live_server, "Librairie Caron", "en")
    profile = chromium_profile(tmp_path / "profile", live_server.url, host, block_frame=False)
    context = _persistent(browser, profile)
    try:
        page = context.new_page()
        page.goto(host)
        frame = page.frame_locator(FRAME)
        _look_up(frame, numbers[0], AMOUNTS[0])
        expect(frame.get_by_role("heading", level=1)).to_have_text(
            en("Hello %(name)s", name="Librairie Caron")
        )
        frame.get_by_role("link", name=en("Paid invoices")).click()  # the cookie comes back
        expect(frame.get_by_role("heading", level=1)).to_have_text(en("Paid invoices"))
    finally:
        context.close()


def test_no_cookie_in_the_frame_the_debtor_continues_in_a_new_tab(
    browser: Browser, tmp_path: Path, live_server: LiveServer, host: str
) -> None:
    _reference, numbers, _email = add_customer(live_server, "Ferme Bouvier", "en")
    profile = chromium_profile(tmp_path / "profile", live_server.url, host, block_frame=True)
    context = _persistent(browser, profile)
    try:
        page = context.new_page()
        page.goto(host)
        frame = page.frame_locator(FRAME)
        _look_up(frame, numbers[0], AMOUNTS[0])
        # Not the welcome page again: the frame says what happened and what to do.
        expect(frame.get_by_role("heading", level=1)).to_have_text(
            en("Your browser blocked this frame's session")
        )
        with context.expect_page() as opened:
            frame.get_by_role("link", name=en("Continue in a new tab")).click()
        tab = opened.value
        expect(tab.get_by_role("heading", level=1)).to_have_text(
            en("Hello %(name)s", name="Ferme Bouvier")
        )
        expect(tab.get_by_role("table").get_by_role("link")).to_have_text([numbers[0]])
        expect(tab.get_by_role("banner")).to_be_visible()  # a full page, at the top level
    finally:
        context.close()


def test_a_colour_that_fails_contrast_is_refused(page: Page, axe: Axe) -> None:
    _admin(page)
    page.get_by_role("link", name=en("Settings"), exact=True).click()
    page.get_by_role("link", name=en("Branding"), exact=True).click()
    main = page.get_by_label(
        re.compile(
            "^" + re.escape(en("Main colour (header, links), default %(colour)s", colour=""))
        )
    )
    main.fill("#8fb3d9")
    page.get_by_role("button", name=en("Preview")).click()  # htmx: the page keeps its form
    error = page.locator("#f-primary_colour-error")
    expect(error).to_contain_text("#8fb3d9 is refused: against #")
    expect(error).to_contain_text("WCAG AA asks for at least 4.5:1")
    expect(main).to_have_attribute("aria-invalid", "true")
    assert_no_axe_violations(axe, page, "the branding form with a refused colour")
    page.get_by_role("button", name=en("Save"), exact=True).click()  # a plain POST too
    expect(page.locator("#f-primary_colour-error")).to_contain_text("#8fb3d9 is refused")
    # A colour that passes is previewed, not saved.
    page.get_by_label(
        re.compile(
            "^" + re.escape(en("Main colour (header, links), default %(colour)s", colour=""))
        )
    ).fill("#5a1f79")
    page.get_by_role("button", name=en("Preview")).click()
    expect(page.get_by_role("heading", name=en("Preview (not saved yet)"))).to_be_visible()
    header = page.locator(".brand-preview .preview-header")
    expect(header).to_have_css("background-color", "rgb(90, 31, 121)")


def test_a_card_payment_inside_the_frame_comes_back_to_the_frame(
    new_context: NewContext, live_server: LiveServer, localstripe: LocalStripe, host: str
) -> None:
    """Stripe.js mounts its fields inside the frame (the card page's CSP lets the host
    site frame it); after 3-D Secure, Stripe.js sends the frame to the return URL, where
    the partitioned cookie still holds the session and the payment shows as received."""
    _reference, numbers, _email = add_customer(live_server, "Studio Perrin", "en")
    page = new_context().new_page()
    page.goto(host)
    frame = page.frame_locator(FRAME)
    _look_up(frame, numbers[0], AMOUNTS[0])
    pay_button(frame, "card", "en").click()
    expect(frame.get_by_role("heading", level=1)).to_have_text(en("Pay by card"))
    expect(frame.locator("#payment-element input").first).to_be_visible()
    secret = frame.locator("#card-form").get_attribute("data-client-secret")
    return_url = frame.locator("#card-form").get_attribute("data-return-url")
    assert secret is not None
    assert return_url is not None
    assert return_url.startswith(f"{live_server.url}/pay/card/")
    # What Stripe.js does with the card typed and the bank's 3-D Secure challenge passed:
    intent_id = secret.split("_secret_")[0]
    client = stripe_client(localstripe)
    client.v1.payment_intents.update(intent_id, params={"payment_method": "pm_card_visa"})
    assert client.v1.payment_intents.confirm(intent_id).status == "succeeded"
    card_frame = page.frame(url=re.compile(r"/pay/card/"))
    assert card_frame is not None
    card_frame.goto(return_url)  # the redirect Stripe.js makes, inside the frame
    expect(
        frame.get_by_text(en("Payment received: thank you. A receipt is on its way by email."))
    ).to_be_visible(timeout=20_000)
    expect(frame.get_by_role("banner")).to_have_count(0)  # still the widget's layout
