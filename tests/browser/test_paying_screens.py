"""The paying screens and the case forms as a debtor sees them, on a 360 px phone and on a
desktop: transfer details shown in full and copied without spaces, pay buttons that say
what they pay and follow the ticks, the page after "I have paid", forms styled alike, the
plan form showing only the chosen option's field. Each test adds its own customer."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, NewContext
from tests.browser.helpers import (
    add_customer,
    fr,
    open_portal,
    pay_button,
    wait_for_pay_total,
)

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 780}
DESKTOP = {"width": 1280, "height": 900}
SCREENS = pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])


def _no_sideways_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"] if page.viewport_size else False, width


def _shown_in_full(page: Page, selector: str) -> None:
    """The element's text is neither cut nor scrolled: it fits its box and the screen."""
    box: dict[str, Any] = page.locator(selector).evaluate(
        """e => { const r = e.getBoundingClientRect();
                  return {scroll: e.scrollWidth, client: e.clientWidth, right: r.right,
                          text: e.textContent, clip: getComputedStyle(e).textOverflow}; }"""
    )
    assert box["scroll"] <= box["client"], box
    assert box["right"] <= page.viewport_size["width"] if page.viewport_size else False, box


@SCREENS
def test_the_transfer_details_are_shown_in_full_and_copied_without_spaces(
    new_context: NewContext, live_server: LiveServer, viewport: dict[str, int]
) -> None:
    context = new_context(viewport=viewport, permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    reference, _numbers, _email = add_customer(live_server, "Menuiserie Garnier")
    open_portal(page, live_server.mint_link(reference), "Menuiserie Garnier")
    # The button says what it pays, and follows the ticks (htmx swaps it: wait for it).
    expect(pay_button(page, "card")).to_have_text(re.compile("875,50"))
    page.get_by_role("checkbox", name=fr("Pay invoice %(number)s", number=_numbers[2])).uncheck()
    wait_for_pay_total(page, "575,50")
    expect(pay_button(page, "transfer")).to_have_text(
        fr("Pay %(amount)s by bank transfer", amount="575,50\xa0€")
    )
    pay_button(page, "transfer").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(fr("Pay by bank transfer"))

    iban = page.locator("#transfer-iban")
    expect(iban).to_have_text("FR76 3000 6000 0112 3456 7890 189")
    expect(page.locator("#transfer-beneficiary")).to_have_text(re.compile(r"\w"))
    for selector in ("#transfer-iban", "#transfer-beneficiary", "#transfer-reference"):
        _shown_in_full(page, selector)
    _no_sideways_scroll(page)
    # The French amount as a French banking app expects it.
    expect(page.locator("#transfer-amount")).to_have_text("575,50")
    expect(
        page.get_by_label(fr("Amount transferred (%(currency)s)", currency="EUR"))
    ).to_have_value("575,50")

    shown = page.locator("#transfer-reference").inner_text()
    assert re.fullmatch(r"RF\d\d( \w{4})*( \w{1,4})", shown), shown
    page.get_by_role("button", name=f"{fr('Copy')}: {fr('Reference (RF)')}").click()
    expect(
        page.get_by_role("button", name=f"{fr('Copy')}: {fr('Reference (RF)')}")
    ).to_have_attribute("data-copied", "true")
    assert page.evaluate("navigator.clipboard.readText()") == shown.replace(" ", "")
    page.get_by_role("button", name=f"{fr('Copy')}: {fr('IBAN')}").click()
    expect(page.get_by_role("button", name=f"{fr('Copy')}: {fr('IBAN')}")).to_have_attribute(
        "data-copied", "true"
    )
    assert page.evaluate("navigator.clipboard.readText()") == "FR7630006000011234567890189"

    # After "I have paid", the page says what was declared, what happens next and when; the
    # settlement no longer reads "Settled" before the money arrives.
    page.get_by_role("button", name=fr("I have paid by transfer")).click()
    expect(page.get_by_role("heading", name=fr("Transfer declared"))).to_be_visible()
    expect(page.get_by_role("heading", name=fr("What happens next"))).to_be_visible()
    settles = page.get_by_role("table", name=fr("What this payment settles"))
    expect(settles).to_contain_text(fr("Settled once received"))
    expect(settles.get_by_text(fr("Settled"), exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name=fr("I have paid by transfer"))).to_have_count(0)
    _no_sideways_scroll(page)

    # Back home: the declared invoices carry "payment pending", unticked, not red.
    page.get_by_role("link", name=fr("Back to my invoices")).first.click()
    first = page.get_by_role("checkbox", name=fr("Pay invoice %(number)s", number=_numbers[0]))
    expect(first).not_to_be_checked()
    expect(page.locator("tr.is-overdue")).to_have_count(0)
    expect(page.get_by_text(fr("On hold"), exact=True)).to_be_visible()


def test_without_javascript_the_pay_buttons_follow_the_ticks_after_a_step(
    new_context: NewContext, live_server: LiveServer
) -> None:
    page = new_context(java_script_enabled=False, viewport=PHONE).new_page()
    reference, numbers, _email = add_customer(live_server, "Serrurerie Bonnet")
    open_portal(page, live_server.mint_link(reference), "Serrurerie Bonnet")
    expect(pay_button(page, "transfer")).to_have_text(re.compile("875,50"))
    page.get_by_role("checkbox", name=fr("Pay invoice %(number)s", number=numbers[0])).uncheck()
    page.get_by_role("button", name=fr("Update the amount")).click()
    expect(pay_button(page, "transfer")).to_have_text(
        fr("Pay %(amount)s by bank transfer", amount="425,50\xa0€")
    )
    pay_button(page, "transfer").click()
    expect(page.locator("#transfer-amount")).to_have_text("425,50")
    _no_sideways_scroll(page)


@SCREENS
def test_an_invoice_page_leads_with_paying_it(
    new_context: NewContext, live_server: LiveServer, viewport: dict[str, int]
) -> None:
    page = new_context(viewport=viewport).new_page()
    reference, numbers, _email = add_customer(live_server, "Vitrerie Lemoine")
    open_portal(page, live_server.mint_link(reference), "Vitrerie Lemoine")
    page.get_by_role("link", name=numbers[1], exact=True).click()
    first = page.locator("main .button").first
    expect(first).to_have_text(fr("Pay %(amount)s by card", amount="125,50\xa0€"))
    expect(first).to_be_in_viewport()
    first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(fr("Pay by card"))


@SCREENS
def test_the_dispute_form_is_styled_like_the_rest_and_fits_a_phone(
    new_context: NewContext, live_server: LiveServer, viewport: dict[str, int]
) -> None:
    page = new_context(viewport=viewport).new_page()
    reference, _numbers, _email = add_customer(live_server, "Plâtrerie Fabre")
    open_portal(page, live_server.mint_link(reference), "Plâtrerie Fabre")
    page.goto("/disputes/new")
    _no_sideways_scroll(page)
    style = """e => { const s = getComputedStyle(e); return [s.fontFamily, s.fontSize,
                s.borderTopWidth, s.borderRadius, e.getBoundingClientRect().right]; }"""
    reason = page.get_by_label(fr("Reason")).evaluate(style)
    message = page.get_by_label(fr("Message"), exact=True).evaluate(style)
    # The page's text inputs (the portal's own language menu aside) set the look.
    page.goto("/promises/new")
    date_field = page.get_by_label(fr("I will pay by")).evaluate(style)
    assert reason[:4] == date_field[:4] == message[:4], (reason, message, date_field)
    width = page.viewport_size["width"] if page.viewport_size else 0
    assert reason[4] <= width
    assert message[4] <= width


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_the_plan_form_shows_only_the_chosen_option(
    new_context: NewContext, live_server: LiveServer, javascript: bool
) -> None:
    page = new_context(java_script_enabled=javascript, viewport=PHONE).new_page()
    reference, _numbers, _email = add_customer(live_server, "Tonnellerie Roux")
    open_portal(page, live_server.mint_link(reference), "Tonnellerie Roux")
    page.goto("/plans/new")
    count = page.get_by_label(fr("Number of instalments"), exact=True)
    monthly = page.get_by_label(fr("Monthly amount (%(currency)s)", currency="EUR"))
    expect(count).to_be_visible()
    expect(monthly).to_be_hidden()
    page.get_by_label(fr("With a monthly amount")).check()
    expect(monthly).to_be_visible()
    expect(count).to_be_hidden()
    _no_sideways_scroll(page)


def test_the_promise_button_says_why_it_is_off(
    new_context: NewContext, live_server: LiveServer
) -> None:
    page = new_context(viewport=PHONE).new_page()
    reference, numbers, _email = add_customer(live_server, "Forge Marchand", due_in_days=(-12,))
    open_portal(page, live_server.mint_link(reference), "Forge Marchand")
    page.goto("/disputes/new")
    page.get_by_role("checkbox").first.check()
    page.get_by_label(fr("Reason")).select_option(index=1)
    page.get_by_label(fr("Message"), exact=True).fill("Nous n'avons pas reçu la marchandise.")
    page.get_by_role("button", name=fr("Send the dispute")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(fr("Dispute"))

    page.goto("/")
    expect(page.get_by_text(fr("Disputed"), exact=True)).to_be_visible()
    box = page.get_by_role("checkbox", name=fr("Pay invoice %(number)s", number=numbers[0]))
    expect(box).not_to_be_checked()

    page.goto("/promises/new")
    submit = page.get_by_role("button", name=fr("I promise to pay by this date"))
    expect(submit).to_be_disabled()
    reason = fr("Every open invoice is already in a request: see My requests to follow it.")
    expect(page.get_by_text(reason)).to_be_visible()
    expect(submit).to_have_attribute("aria-describedby", "promise-none-free")
