"""The dashboard in Chromium: without JavaScript, filtered by its GET form, a panel
downloaded as CSV, charts with their tables, printed, and checked by axe."""

from __future__ import annotations

import csv
import io

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, NewContext
from tests.browser.helpers import assert_no_axe_violations, en

pytestmark = pytest.mark.browser


def _log_in(page: Page) -> None:
    page.goto("/admin/login")
    page.get_by_label(en("Email address")).fill("admin@relance.example")
    page.get_by_label(en("Password"), exact=True).fill("relance-demo-admin")
    page.get_by_role("button", name=en("Log in")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(en("Dashboard"))


def test_the_dashboard_works_without_javascript_and_prints(
    new_context: NewContext, live_server: LiveServer, axe: Axe
) -> None:
    page = new_context(java_script_enabled=False).new_page()
    _log_in(page)
    for title in (
        "Totals and aging",
        "Days sales outstanding (DSO)",
        "Commitments",
        "Cash forecast, 12 weeks",
        "Reminder effectiveness",
    ):
        expect(page.get_by_role("heading", name=en(title), level=2)).to_be_visible()
    # Each chart is an image with a name, and its figures are in a table with a caption.
    expect(page.get_by_role("img", name="Aging balance in EUR", exact=False)).to_be_visible()
    expect(
        page.get_by_role("table", name=en("Aging balance in %(currency)s", currency="EUR"))
    ).to_be_visible()
    # The filters are a plain GET form.
    page.get_by_label(en("Risk segment")).select_option("high")
    page.get_by_label(en("Currency")).select_option("EUR")
    page.get_by_role("button", name=en("Show")).click()
    assert "segment=high" in page.url
    assert "currency=EUR" in page.url
    expect(page.get_by_label(en("Risk segment"))).to_have_value("high")
    filtered = page.url
    # axe runs in the page's JavaScript: check the same page in a context that has it.
    page = new_context().new_page()
    _log_in(page)
    page.goto(filtered)
    assert_no_axe_violations(axe, page, "filtered dashboard")
    # Printed: the header and the filters' button go, the charts stay.
    page.emulate_media(media="print")
    expect(page.locator(".site-header")).to_be_hidden()
    expect(page.get_by_role("button", name=en("Show"))).to_be_hidden()
    expect(page.locator("svg.chart").first).to_be_visible()


def test_a_panel_downloads_as_csv_with_the_filters(
    new_context: NewContext, live_server: LiveServer
) -> None:
    page = new_context(accept_downloads=True).new_page()
    _log_in(page)
    page.get_by_label(en("Currency")).select_option("EUR")
    page.get_by_role("button", name=en("Show")).click()
    with page.expect_download() as info:
        page.get_by_role("link", name=en("Aging as CSV")).click()
    download = info.value
    assert download.suggested_filename.startswith("aging-")
    path = download.path()
    assert path is not None
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert rows[0][:2] == ["currency", "not_due"]
    assert {row[0] for row in rows[1:]} == {"EUR"}
