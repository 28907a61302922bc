"""Paying from a portal link in Chromium: by card through Stripe (localstripe), and by
bank transfer with a declaration. Each test adds its own customer to the demo database, so
paying leaves every demo customer as the other tests expect."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, NewContext
from tests.browser.helpers import (
    add_customer,
    fr,
    invoice_links,
    open_portal,
    pay_button,
    wait_for_pay_total,
)
from tests.stripe_server import LocalStripe, stripe_client

pytestmark = pytest.mark.browser

PAYMENT_DEADLINE_MS = 20_000


def test_paying_two_invoices_by_card(
    page: Page, live_server: LiveServer, localstripe: LocalStripe
) -> None:
    reference, numbers, _email = add_customer(live_server, "Brasserie des Halles")
    open_portal(page, live_server.mint_link(reference), "Brasserie des Halles")
    assert invoice_links(page) == numbers
    page.get_by_role("checkbox").nth(2).uncheck()  # keep the invoice not yet due
    wait_for_pay_total(page, "575,50")
    pay_button(page, "card").click()

    expect(page.get_by_role("heading", level=1)).to_have_text(fr("Pay by card"))
    settles = page.get_by_role("table", name=fr("What this payment settles"))
    expect(settles.get_by_role("rowheader")).to_have_text(numbers[:2])
    # Stripe.js (localstripe's stand-in) loaded under the page's CSP and mounted its fields.
    expect(page.locator("#payment-element input").first).to_be_visible()
    submit = page.get_by_role(
        "button", name=re.compile("^" + fr("Pay %(amount)s", amount="") + r"[\d\s,]+€$")
    )
    expect(submit).to_be_visible()

    # Stripe.js confirms the PaymentIntent with the card typed in its fields; localstripe's
    # stand-in cannot, so the test does it through the API with a test card, as Stripe.js
    # would, then follows the redirect Stripe.js makes to the return URL.
    secret = page.locator("#card-form").get_attribute("data-client-secret")
    assert secret is not None
    intent_id = secret.split("_secret_")[0]
    client = stripe_client(localstripe)
    client.v1.payment_intents.update(intent_id, params={"payment_method": "pm_card_visa"})
    assert client.v1.payment_intents.confirm(intent_id).status == "succeeded"
    page.goto(page.url)

    # Processing first, then paid once the signed webhook is applied (htmx polling).
    expect(
        page.get_by_text(fr("Payment received: thank you. A receipt is on its way by email."))
    ).to_be_visible(timeout=PAYMENT_DEADLINE_MS)
    page.get_by_role("link", name=fr("Back to my invoices")).first.click()
    assert invoice_links(page) == numbers[2:]


def test_declaring_a_bank_transfer(page: Page, live_server: LiveServer) -> None:
    reference, _numbers, _email = add_customer(live_server, "Fromagerie Vidal")
    open_portal(page, live_server.mint_link(reference), "Fromagerie Vidal")
    page.get_by_role("checkbox").nth(2).uncheck()
    wait_for_pay_total(page, "575,50")
    pay_button(page, "transfer").click()

    expect(page.get_by_role("heading", level=1)).to_have_text(fr("Pay by bank transfer"))
    expect(page.locator("#transfer-iban")).to_have_text(re.compile(r"^FR76 "))
    expect(page.locator("#transfer-reference")).to_have_text(re.compile(r"^RF\d\d "))
    expect(
        page.get_by_role(
            "img", name=fr("QR code with these transfer details, to scan with your banking app")
        )
    ).to_be_visible()

    # The date (today where the debtor is) and the amount come filled in.
    page.get_by_role("button", name=fr("I have paid by transfer")).click()
    expect(
        page.get_by_text(fr("Declaration received: we will confirm when the money arrives."))
    ).to_be_visible()

    page.get_by_role("link", name=fr("Back to my invoices")).first.click()
    expect(page.get_by_text(fr("Payment pending")).first).to_be_visible()


def test_without_javascript_the_card_page_says_so_and_offers_a_transfer(
    new_context: NewContext, live_server: LiveServer
) -> None:
    page = new_context(java_script_enabled=False).new_page()
    reference, _numbers, _email = add_customer(live_server, "Quincaillerie Morel")
    open_portal(page, live_server.mint_link(reference), "Quincaillerie Morel")
    pay_button(page, "card").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(fr("Pay by card"))
    expect(
        page.get_by_text(
            fr(
                "Paying by card needs JavaScript in this browser. "
                "You can pay by bank transfer instead."
            )
        )
    ).to_be_visible()
    pay_button(page, "transfer").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(fr("Pay by bank transfer"))
