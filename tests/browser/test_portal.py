"""A debtor's visit: open the link, read the account, download documents, switch language,
log out. Elements are found by role and label, in the language the page is in."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from pypdf import PdfReader

from portal.i18n import language_name
from tests.browser.conftest import LiveServer, NewContext
from tests.browser.helpers import (
    ENGLISH_CUSTOMER,
    FRENCH,
    en,
    fr,
    invoice_links,
    open_portal,
    status,
)

pytestmark = pytest.mark.browser

REFERENCE, NAME = FRENCH.reference, FRENCH.name
# Its first overdue invoice has no stored PDF (the portal generates one), a later one has.
GENERATED = FRENCH.overdue[0]
STORED = next(n for n in FRENCH.overdue if n in FRENCH.stored_pdf)


def cents(french_amount: str) -> int:
    """'1 234,56 €' -> 123456."""
    return int(re.sub(r"\D", "", french_amount))


@pytest.fixture
def account(page: Page, live_server: LiveServer) -> Page:
    """The French demo account logged in through its demo link."""
    open_portal(page, live_server.demo_links[REFERENCE], NAME)
    return page


def test_a_demo_link_opens_the_account_summary_and_open_invoices(account: Page) -> None:
    page = account
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page).to_have_title(re.compile(rf"^{re.escape(fr('Open invoices'))} · "))
    expect(
        page.get_by_text(fr("Customer reference %(reference)s", reference=REFERENCE))
    ).to_be_visible()

    summary = page.get_by_role("region", name=fr("Summary"))
    for term in (fr("Total due"), fr("Overdue"), fr("Next due date")):
        expect(summary.get_by_role("term").filter(has_text=term)).to_be_visible()
    amounts = summary.get_by_role("definition")
    expect(amounts.nth(0)).to_have_text(re.compile(r"^\d[\d\s]*,\d{2}\s€$"))
    expect(amounts.nth(1)).to_have_text(re.compile(r"^\d[\d\s]*,\d{2}\s€$"))

    table = page.get_by_role("table", name=fr("Open invoices"))
    expect(table.get_by_role("columnheader")).to_have_text(
        [
            fr("Pay"),  # choosing what to pay is part of the table
            fr("Invoice"),
            fr("Issued"),
            fr("Due"),
            fr("Days overdue"),
            fr("Amount"),
            fr("Remaining"),
        ]
    )
    expect(table.get_by_role("link")).to_have_text(FRENCH.open)
    expect(page.get_by_role("link", name=FRENCH.paid[0])).to_have_count(0)
    # What the summary says is due is what the rows say remains.
    remaining = [
        row.get_by_role("cell").last.inner_text() for row in table.get_by_role("row").all()[1:]
    ]
    assert cents(amounts.nth(0).inner_text()) == sum(cents(amount) for amount in remaining)
    expect(
        page.get_by_role("navigation", name=fr("Portal")).get_by_role(
            "link", name=fr("Open invoices")
        )
    ).to_have_attribute("aria-current", "page")


def test_an_invoice_shows_its_details_and_downloads_its_pdf(account: Page) -> None:
    page = account
    page.get_by_role("link", name=GENERATED, exact=True).click()
    expect(page).to_have_url(re.compile(r"/invoices/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(
        fr("Invoice %(number)s", number=GENERATED)
    )
    expect(page).to_have_title(
        re.compile(rf"^{re.escape(fr('Invoice %(number)s', number=GENERATED))}")
    )
    for term in (
        fr("Issue date"),
        fr("Due date"),
        fr("Invoice total"),
        fr("Already paid"),
        fr("Remaining"),
    ):
        expect(page.get_by_role("term").filter(has_text=term)).to_be_visible()

    # No stored PDF: the portal generates one.
    with page.expect_download() as downloading:
        page.get_by_role("link", name=fr("Download the invoice (PDF)")).click()
    download = downloading.value
    assert download.suggested_filename == f"{GENERATED}.pdf"
    assert Path(download.path()).read_bytes().startswith(b"%PDF")

    page.get_by_role("link", name=fr("Back to my invoices")).click()
    expect(page).to_have_url(re.compile(r"/$"))

    # One stored by the demo seed: that file is served.
    page.get_by_role("link", name=STORED, exact=True).click()
    with page.expect_download() as downloading:
        page.get_by_role("link", name=fr("Download the invoice (PDF)")).click()
    body = Path(downloading.value.path()).read_bytes()
    assert body.startswith(b"%PDF")
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(body)).pages)
    assert STORED in text


def test_paid_invoices_have_their_own_tab(account: Page) -> None:
    page = account
    tabs = page.get_by_role("navigation", name=fr("Portal"))
    tabs.get_by_role("link", name=fr("Paid invoices")).click()
    expect(page).to_have_url(re.compile(r"/paid$"))
    expect(tabs.get_by_role("link", name=fr("Paid invoices"))).to_have_attribute(
        "aria-current", "page"
    )
    table = page.get_by_role("table", name=fr("Paid invoices"))
    expect(table.get_by_role("link")).to_have_text(FRENCH.paid)
    table.get_by_role("link", name=FRENCH.paid[0]).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        fr("Invoice %(number)s", number=FRENCH.paid[0])
    )
    expect(page.get_by_text(fr("Paid"), exact=True)).to_be_visible()


def test_the_statement_downloads_as_csv_and_pdf(account: Page) -> None:
    page = account
    with page.expect_download() as downloading:
        page.get_by_role("link", name=fr("Download the statement (CSV)")).click()
    download = downloading.value
    assert re.fullmatch(
        rf"statement-{REFERENCE}-\d{{4}}-\d{{2}}-\d{{2}}\.csv", download.suggested_filename
    )
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert [row["invoice_number"] for row in rows] == sorted(FRENCH.paid + FRENCH.open)
    assert {row["status"] for row in rows} == {"paid", "open"}
    assert all(re.fullmatch(r"\d+\.\d{2}", row["remaining"]) for row in rows)

    with page.expect_download() as downloading:
        page.get_by_role("link", name=fr("Download the statement (PDF)")).click()
    assert downloading.value.suggested_filename.endswith(".pdf")
    assert Path(downloading.value.path()).read_bytes().startswith(b"%PDF")


def test_switching_language_changes_the_text_and_the_page_language(account: Page) -> None:
    page = account
    page.goto("/?show=overdue")
    expect(page.get_by_role("heading", level=1)).to_have_text(fr("Hello %(name)s", name=NAME))

    page.get_by_role("button", name=language_name("en")).click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page).to_have_url(re.compile(r"/\?show=overdue$"))  # same page, same filter
    expect(page.get_by_role("heading", level=1)).to_have_text(en("Hello %(name)s", name=NAME))
    assert en("Hello %(name)s", name=NAME) != fr("Hello %(name)s", name=NAME)
    expect(page.get_by_role("table", name=en("Open invoices")).get_by_role("link")).to_have_text(
        FRENCH.overdue
    )
    expect(page.get_by_role("button", name=language_name("en"))).to_have_count(0)
    expect(page.get_by_role("button", name=language_name("fr"))).to_have_attribute("lang", "fr")

    # The choice sticks for the rest of the visit.
    page.get_by_role("link", name=en("Paid invoices")).click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text(en("Paid invoices"))

    page.get_by_role("button", name=language_name("fr")).click()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page).to_have_url(re.compile(r"/paid$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(fr("Paid invoices"))


def test_logging_out_ends_the_session(account: Page, context: BrowserContext) -> None:
    page = account
    page.get_by_role("link", name=GENERATED, exact=True).click()
    invoice_url = page.url
    cookies = context.cookies()

    page.get_by_role("button", name=fr("Log out")).click()
    expect(page).to_have_url(re.compile(r"/logged-out$"))
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_role("heading", level=1)).to_have_text(fr("You are logged out"))
    expect(page.get_by_role("button", name=fr("Log out"))).to_have_count(0)

    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_have_text(fr("Payment portal"))
    expect(page.get_by_role("table")).to_have_count(0)
    expect(page.get_by_text(NAME)).to_have_count(0)

    # Even the old session cookie, put back, opens nothing: the session ended on the server.
    context.add_cookies(cookies)
    assert status(page.goto(invoice_url)) == 401
    expect(page.get_by_role("heading", level=1)).to_have_text(fr("Payment portal"))
    expect(page.get_by_text(GENERATED)).to_have_count(0)


def test_another_customers_invoice_is_not_found(
    new_context: NewContext, live_server: LiveServer
) -> None:
    theirs = new_context().new_page()
    open_portal(theirs, live_server.demo_links[ENGLISH_CUSTOMER[0]], ENGLISH_CUSTOMER[1], "en")
    their_invoice = theirs.get_by_role("table").get_by_role("link").first
    their_number = their_invoice.inner_text()
    their_path = their_invoice.get_attribute("href")
    assert their_path is not None
    assert re.fullmatch(r"/invoices/\d+", their_path)

    # A French visitor (browser in French too: the 404 page's language is another matter,
    # see test_the_not_found_page_speaks_the_customers_language).
    mine = new_context(locale="fr-FR").new_page()
    open_portal(mine, live_server.demo_links[REFERENCE], NAME)
    for path in (their_path, f"{their_path}/pdf"):
        assert status(mine.goto(path)) == 404, path
        expect(mine.get_by_role("heading", level=1)).to_have_text(fr("Page not found"))
        expect(mine.get_by_text(their_number)).to_have_count(0)
    mine.get_by_role("link", name=fr("Back to my invoices")).click()
    expect(mine.get_by_role("heading", level=1)).to_have_text(fr("Hello %(name)s", name=NAME))


def test_the_not_found_page_speaks_the_customers_language(account: Page) -> None:
    assert status(account.goto("/invoices/999999")) == 404
    expect(account.locator("html")).to_have_attribute("lang", "fr")


def _filter(page: Page, language: str, label: str) -> object:
    name = fr(label) if language == "fr" else en(label)
    nav = page.get_by_role(
        "navigation", name=fr("Filter invoices") if language == "fr" else en("Filter invoices")
    )
    return nav.get_by_role("link", name=name, exact=True)


def test_filters_update_the_table_in_place(account: Page) -> None:
    """With JavaScript, htmx swaps the table; the URL and the current filter follow."""
    page = account
    table = page.get_by_role("table", name=fr("Open invoices"))

    _filter(page, "fr", "Overdue").click()
    expect(page).to_have_url(re.compile(r"/\?show=overdue$"))
    expect(table.get_by_role("link")).to_have_text(FRENCH.overdue)
    expect(_filter(page, "fr", "Overdue")).to_have_attribute("aria-current", "true")
    expect(_filter(page, "fr", "All")).not_to_have_attribute("aria-current", "true")
    expect(_filter(page, "fr", "Overdue")).to_be_focused()

    _filter(page, "fr", "Not yet due").click()
    expect(page).to_have_url(re.compile(r"/\?show=upcoming$"))
    expect(table.get_by_role("link")).to_have_text(FRENCH.upcoming)
    expect(_filter(page, "fr", "Not yet due")).to_have_attribute("aria-current", "true")

    page.go_back()
    expect(page).to_have_url(re.compile(r"/\?show=overdue$"))
    expect(table.get_by_role("link")).to_have_text(FRENCH.overdue)

    _filter(page, "fr", "All").click()
    expect(table.get_by_role("link")).to_have_text(FRENCH.open)


def test_without_javascript_filters_and_language_switch_still_work(
    new_context: NewContext, live_server: LiveServer
) -> None:
    page = new_context(java_script_enabled=False).new_page()
    open_portal(page, live_server.demo_links[REFERENCE], NAME)

    _filter(page, "fr", "Overdue").click()
    expect(page).to_have_url(re.compile(r"/\?show=overdue$"))
    assert invoice_links(page) == FRENCH.overdue
    expect(_filter(page, "fr", "Overdue")).to_have_attribute("aria-current", "true")

    page.get_by_role("button", name=language_name("en")).click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page).to_have_url(re.compile(r"/\?show=overdue$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(en("Hello %(name)s", name=NAME))
    assert invoice_links(page) == FRENCH.overdue

    _filter(page, "en", "Not yet due").click()
    expect(page).to_have_url(re.compile(r"/\?show=upcoming$"))
    assert invoice_links(page) == FRENCH.upcoming
    expect(page.locator("html")).to_have_attribute("lang", "en")
