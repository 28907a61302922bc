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
    FRENCH,
    FRENCH_CUSTOMER,
    add_customer,
    assert_no_axe_violations,
    demo_account,
    en,
    expired_link,
    fr,
    open_portal,
    pay_button,
    status,
    tampered_link,
)

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 740}
# The French account's first overdue invoice (a generated PDF) and one with a stored PDF.
GENERATED = FRENCH.overdue[0]
STORED = next(n for n in FRENCH.overdue if n in FRENCH.stored_pdf)
# Customers whose cases these pages show, each with its own overdue invoices.
DISPUTING = demo_account("C-1006")
REVIEWED_PLAN = demo_account("C-1005")  # high risk: its plans wait for a review
PLANNING = demo_account("C-1008")


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
    expect(page.get_by_role("table").get_by_role("link")).to_have_count(len(FRENCH.upcoming))


def invoice(page: Page, server: LiveServer, revoked: str) -> None:
    _french_account(page, server)
    page.get_by_role("link", name=GENERATED, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        fr("Invoice %(number)s", number=GENERATED)
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
    pay_button(page, "transfer").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(fr("Pay by bank transfer"))
    expect(page.locator("#transfer-iban")).to_have_text(re.compile(r"^FR76 "))


def transfer_declare_error(page: Page, server: LiveServer, revoked: str) -> None:
    """The declaration form refused (amount zero): the error state, nothing declared."""
    _english_account(page, server)
    pay_button(page, "transfer", "en").click()
    amount = page.get_by_role(
        "textbox", name=en("Amount transferred (%(currency)s)", currency="EUR")
    )
    amount.fill("0")
    page.get_by_role("button", name=en("I have paid by transfer")).click()
    expect(amount).to_have_attribute("aria-invalid", "true")


def card_en(page: Page, server: LiveServer, revoked: str) -> None:
    """The card page with Stripe's fields mounted (localstripe's stand-in of Stripe.js)."""
    _english_account(page, server)
    pay_button(page, "card", "en").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(en("Pay by card"))
    expect(page.locator("#payment-element input").first).to_be_visible()


def card_fr(page: Page, server: LiveServer, revoked: str) -> None:
    _french_account(page, server)
    pay_button(page, "card").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(fr("Pay by card"))


def pay_error(page: Page, server: LiveServer, revoked: str) -> None:
    """The choice form refused (an amount below the partial-payment minimum)."""
    _english_account(page, server)
    page.get_by_role("textbox", name=en("Amount to pay (optional)")).fill("0.50")
    pay_button(page, "card", "en").click()
    expect(page.get_by_role("alert")).to_be_visible()


# --- cases: the debtor's forms and the back office --------------------------------------------


def _debtor(page: Page, server: LiveServer, reference: str, name: str, language: str) -> None:
    open_portal(page, server.mint_link(reference), name, language)


def _admin(page: Page) -> None:
    page.goto("/admin/login")
    page.get_by_label(en("Email address")).fill("admin@relance.example")
    page.get_by_label(en("Password"), exact=True).fill("relance-demo-admin")
    page.get_by_role("button", name=en("Log in")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(en("Dashboard"))


def _existing_case(page: Page, kind: str) -> bool:
    """Open the customer's case of this kind if an earlier visit made it (visits repeat)."""
    page.goto("/cases")
    found = page.get_by_role("link", name=re.compile(f"^{re.escape(kind)} "))
    if found.count() == 0:
        return False
    found.first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(kind)
    return True


def _dispute_case(page: Page, server: LiveServer) -> str:
    """C-1006's dispute on its first overdue invoice (the same case on every visit): its URL."""
    _debtor(page, server, DISPUTING.reference, DISPUTING.name, "fr")
    if _existing_case(page, fr("Dispute")):
        return page.url
    page.goto("/disputes/new")
    page.get_by_role("checkbox", name=re.compile(DISPUTING.overdue[0])).check()
    page.get_by_label(fr("Reason")).select_option("not_received")
    page.get_by_label(fr("Message"), exact=True).fill("Jamais livré.")
    page.get_by_role("button", name=fr("Send the dispute")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(fr("Dispute"))
    return page.url


def _review_plan(page: Page, server: LiveServer) -> str:
    """C-1005 (high risk) proposes a plan, which waits for review: its case id."""
    _debtor(page, server, REVIEWED_PLAN.reference, REVIEWED_PLAN.name, "fr")
    if _existing_case(page, fr("Payment plan")):
        return page.url.rsplit("/", 1)[1]
    page.goto("/plans/new")
    page.get_by_role("checkbox", name=re.compile(REVIEWED_PLAN.overdue[0])).check()
    # Wait for the preview, which pushes the button down, before clicking it.
    expect(page.get_by_role("table", name=fr("Your schedule"))).to_be_visible()
    page.get_by_role("button", name=fr("Propose this plan")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(fr("Payment plan"))
    return page.url.rsplit("/", 1)[1]


def cases_list(page: Page, server: LiveServer, revoked: str) -> None:
    _dispute_case(page, server)
    page.get_by_role("link", name=fr("My requests")).first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(fr("My requests"))


def dispute_case(page: Page, server: LiveServer, revoked: str) -> None:
    _dispute_case(page, server)


def dispute_form_error(page: Page, server: LiveServer, revoked: str) -> None:
    _debtor(page, server, DISPUTING.reference, DISPUTING.name, "fr")
    page.goto("/disputes/new")
    page.get_by_label(fr("Reason")).select_option("other")
    page.get_by_label(fr("Message"), exact=True).fill("?")
    page.get_by_role("button", name=fr("Send the dispute")).click()
    expect(page.get_by_role("alert")).to_have_text(fr("Choose at least one invoice."))


def plan_preview(page: Page, server: LiveServer, revoked: str) -> None:
    """The htmx verdict swapped in, outside policy (too many instalments)."""
    _debtor(page, server, PLANNING.reference, PLANNING.name, "fr")
    page.goto("/plans/new")
    page.get_by_role("checkbox", name=re.compile(PLANNING.overdue[0])).check()
    page.get_by_label(fr("Number of instalments"), exact=True).fill("12")
    expect(page.get_by_text(fr("More than %(count)d instalments.", count=6))).to_be_visible()


def plan_checked_by_a_plain_post(page: Page, server: LiveServer, revoked: str) -> None:
    """The "Check the schedule" button posts the form (the no-JavaScript path, whole page)."""
    _debtor(page, server, PLANNING.reference, PLANNING.name, "fr")
    page.goto("/plans/new")
    page.get_by_role("checkbox", name=re.compile(PLANNING.overdue[1])).check()
    page.get_by_role("button", name=fr("Check the schedule")).click()
    expect(page.get_by_role("heading", name=fr("Your schedule"))).to_be_visible()


def promise_form(page: Page, server: LiveServer, revoked: str) -> None:
    _debtor(page, server, PLANNING.reference, PLANNING.name, "fr")
    page.goto("/promises/new")
    expect(page.get_by_role("heading", level=1)).to_have_text(fr("Promise to pay by a date"))


def admin_home(page: Page, server: LiveServer, revoked: str) -> None:
    _admin(page)


def admin_dashboard_filtered(page: Page, server: LiveServer, revoked: str) -> None:
    """The filters' GET form, with a bad date explained next to its field."""
    _admin(page)
    page.get_by_label(en("Risk segment")).select_option("high")
    page.get_by_label(en("As of")).fill("1999-01-01")
    page.get_by_role("button", name=en("Show")).click()
    expect(page.get_by_text(en("Choose a date between 2000-01-01 and today."))).to_be_visible()


def admin_dashboard_fr(page: Page, server: LiveServer, revoked: str) -> None:
    _admin(page)
    page.get_by_role("button", name=language_name("fr")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(fr("Dashboard"))


def admin_customers(page: Page, server: LiveServer, revoked: str) -> None:
    _admin(page)
    page.get_by_role("link", name=en("Customers"), exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(en("Customers"))


def admin_queues(page: Page, server: LiveServer, revoked: str) -> None:
    _dispute_case(page, server)
    _admin(page)
    for name in ("plans", "transfers", "broken", "disputes"):
        page.goto(f"/admin/queues/{name}")
    expect(page.get_by_role("table")).to_be_visible()


def admin_transfers(page: Page, server: LiveServer, revoked: str) -> None:
    """Transfers to confirm, with a declaration waiting (from a customer of its own)."""
    reference, _numbers, _email = add_customer(server, "Cordonnerie Petit")
    open_portal(page, server.mint_link(reference), "Cordonnerie Petit")
    pay_button(page, "transfer").click()
    page.get_by_role("button", name=fr("I have paid by transfer")).click()
    _admin(page)
    page.goto("/admin/transfers")
    expect(page.get_by_role("button", name=en("Confirm the transfer")).first).to_be_visible()


def admin_dispute(page: Page, server: LiveServer, revoked: str) -> None:
    case_id = _dispute_case(page, server).rsplit("/", 1)[1]
    _admin(page)
    page.goto(f"/admin/cases/{case_id}")
    expect(page.get_by_role("heading", name=en("Resolve the dispute"))).to_be_visible()


def admin_plan_review(page: Page, server: LiveServer, revoked: str) -> None:
    case_id = _review_plan(page, server)
    _admin(page)
    page.goto(f"/admin/cases/{case_id}")
    expect(page.get_by_role("heading", name=en("Decide on the plan"))).to_be_visible()


def admin_decision_error(page: Page, server: LiveServer, revoked: str) -> None:
    case_id = _dispute_case(page, server).rsplit("/", 1)[1]
    _admin(page)
    page.goto(f"/admin/cases/{case_id}")
    page.get_by_label(en("Credit part of the invoice")).check()
    page.get_by_label(en("Amount credited, or the new amount (%(currency)s)", currency="EUR")).fill(
        "lots"
    )
    page.get_by_role("button", name=en("Record the decision")).click()
    expect(page.get_by_role("alert")).to_be_visible()


def admin_customer(page: Page, server: LiveServer, revoked: str) -> None:
    _dispute_case(page, server)
    _admin(page)
    page.get_by_role("link", name=en("Customers"), exact=True).click()
    page.get_by_role("searchbox", name=en("Name or reference")).fill(DISPUTING.reference)
    page.get_by_role("button", name=en("Search")).click()
    page.get_by_role("link", name=DISPUTING.name).click()
    expect(page.get_by_role("heading", name=en("Reminders and notes"))).to_be_visible()


def admin_users(page: Page, server: LiveServer, revoked: str) -> None:
    _admin(page)
    page.get_by_role("link", name=en("Settings"), exact=True).click()
    page.get_by_role("link", name=en("Users"), exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(en("Users"))


def admin_api_keys(page: Page, server: LiveServer, revoked: str) -> None:
    """A key just created: shown once, above the list and the form."""
    _admin(page)
    page.get_by_role("link", name=en("Settings"), exact=True).click()
    page.get_by_role("link", name=en("API keys"), exact=True).click()
    page.get_by_label(en("Name (which system uses it)")).fill("Nightly ERP sync")
    page.get_by_role("button", name=en("Create the key")).click()
    expect(page.get_by_role("heading", name=en("Your new key"))).to_be_visible()


def admin_webhook_refused(page: Page, server: LiveServer, revoked: str) -> None:
    """An internal address refused next to its field."""
    _admin(page)
    page.get_by_role("link", name=en("Settings"), exact=True).click()
    page.get_by_role("link", name=en("Webhooks"), exact=True).click()
    page.get_by_label(en("Address (https://…)")).fill("https://169.254.169.254/latest")
    page.get_by_role("checkbox", name="invoice.paid").check()
    page.get_by_role("button", name=en("Add the endpoint")).click()
    expect(page.locator("#hook-url-error")).to_be_visible()


def api_docs(page: Page, server: LiveServer, revoked: str) -> None:
    page.goto("/api/v1/docs")
    expect(page.get_by_role("heading", level=1)).to_have_text(en("Relance API, version 1"))


def admin_account_totp(page: Page, server: LiveServer, revoked: str) -> None:
    _admin(page)
    page.get_by_role("link", name=en("My account")).click()
    expect(page.get_by_role("heading", name=en("Second factor"))).to_be_visible()


def admin_forgot(page: Page, server: LiveServer, revoked: str) -> None:
    page.goto("/admin/login")
    page.get_by_role("link", name=en("Forgot your password?")).click()
    expect(page.get_by_label(en("Email address"))).to_be_visible()


def admin_forgot_sent(page: Page, server: LiveServer, revoked: str) -> None:
    admin_forgot(page, server, revoked)
    page.get_by_label(en("Email address")).fill("nobody@relance.example")
    page.get_by_role("button", name=en("Send me a link")).click()
    expect(page.get_by_role("status")).to_be_visible()


def admin_reset_expired(page: Page, server: LiveServer, revoked: str) -> None:
    page.goto("/admin/password/reset?token=not-a-token")
    expect(page.get_by_role("alert")).to_have_text(
        en("This link has expired or has already been used.")
    )


def admin_unlock_expired(page: Page, server: LiveServer, revoked: str) -> None:
    page.goto("/admin/unlock?token=not-a-token")
    expect(page.get_by_role("heading", level=1)).to_have_text(en("Unlock your account"))


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
    (cases_list, {}),
    (dispute_case, {}),
    (dispute_case, {"viewport": PHONE}),
    (dispute_form_error, {}),
    (plan_preview, {}),
    (plan_preview, {"viewport": PHONE}),
    (plan_checked_by_a_plain_post, {}),
    (promise_form, {}),
    (admin_home, {}),
    (admin_home, {"viewport": PHONE}),
    (admin_dashboard_filtered, {}),
    (admin_dashboard_fr, {}),
    (admin_customers, {}),
    (admin_queues, {}),
    (admin_transfers, {}),
    (admin_dispute, {}),
    (admin_plan_review, {}),
    (admin_decision_error, {}),
    (admin_customer, {}),
    (admin_users, {}),
    (admin_api_keys, {}),
    (admin_webhook_refused, {}),
    (api_docs, {}),
    (admin_account_totp, {}),
    (admin_forgot, {}),
    (admin_forgot_sent, {}),
    (admin_reset_expired, {}),
    (admin_unlock_expired, {"viewport": PHONE}),
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
    assert focused["text"] == GENERATED
    assert fr("Log out") not in visited

    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/invoices/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(
        fr("Invoice %(number)s", number=GENERATED)
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
    assert downloading.value.suggested_filename == f"{GENERATED}.pdf"


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
        page.get_by_role("link", name=STORED, exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(
            t("Invoice %(number)s", number=STORED)
        )
        check(f"invoice ({language})")
        page.get_by_role("link", name=t("Paid invoices")).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(t("Paid invoices"))
        check(f"paid ({language})")
        page.goto("/")
        pay_button(page, "card", language).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(t("Pay by card"))
        check(f"card ({language})")
        page.goto("/")
        pay_button(page, "transfer", language).click()
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
