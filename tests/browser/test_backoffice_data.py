"""Back office data entry in a real browser: a credit manager creates a customer, is told
what is wrong next to the field, then adds an invoice; every page passes axe."""

from __future__ import annotations

import re
import uuid

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from tests.browser.helpers import assert_no_axe_violations, en
from tests.browser.test_cases import MANAGER, log_in, staff  # noqa: F401 - the fixture

pytestmark = pytest.mark.browser


@pytest.mark.usefixtures("staff")  # the credit manager on the live server
def test_a_credit_manager_creates_a_customer_and_an_invoice(page: Page, axe: Axe) -> None:
    log_in(page, MANAGER)
    page.get_by_role("link", name=en("Customers"), exact=True).click()
    page.get_by_role("link", name=en("New customer")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(en("New customer"))
    assert_no_axe_violations(axe, page, "new customer form")

    reference = f"B-{uuid.uuid4().hex[:6].upper()}"
    name = f"Atelier <Rivière> {reference}"
    page.get_by_label(en("Reference in your accounts")).fill(reference)
    page.get_by_label(en("Legal name")).fill(name)
    page.get_by_label(en("SIREN")).fill("732 829 321")  # wrong check digit
    page.get_by_label(en("Street address")).fill("8 quai des Chartrons")
    page.get_by_label(en("Postcode")).fill("33000")
    page.get_by_label(en("Town")).fill("Bordeaux")
    page.get_by_role("button", name=en("Create the customer")).click()

    siren = page.get_by_label(en("SIREN"))
    expect(siren).to_have_attribute("aria-invalid", "true")
    expect(siren).to_have_accessible_description(
        re.compile(re.escape(en("Enter a valid SIREN: 9 digits, such as 732 829 320.")))
    )
    expect(page.get_by_label(en("Town"))).to_have_value("Bordeaux")  # what was typed stays
    assert_no_axe_violations(axe, page, "customer form with an error")

    siren.fill("732 829 320")
    page.get_by_role("button", name=en("Create the customer")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    expect(page.get_by_role("status")).to_have_text(en("The customer is created."))
    expect(page.get_by_text("732829320")).to_be_visible()
    assert_no_axe_violations(axe, page, "customer page after creation")

    page.get_by_role("link", name=en("New invoice")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(en("New invoice"))
    page.get_by_label(en("Invoice number")).fill(f"F-{reference}")
    page.get_by_label(en("Amount including tax")).fill("1,234.50")
    page.get_by_label(en("Invoice PDF")).set_input_files(
        [{"name": "invoice.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4\n%%EOF\n"}]
    )
    assert_no_axe_violations(axe, page, "new invoice form")
    page.get_by_role("button", name=en("Create the invoice")).click()

    expect(page.get_by_role("status")).to_have_text(en("The invoice is created."))
    invoices = page.get_by_role("table").filter(has_text=f"F-{reference}")
    expect(
        invoices.get_by_role("link", name=en("Edit invoice %(number)s", number=f"F-{reference}"))
    ).to_be_visible()
    expect(invoices).to_contain_text("€1,234.50")
    expect(
        page.get_by_text(en("Invoice %(number)s created", number=f"F-{reference}"))
    ).to_be_visible()
