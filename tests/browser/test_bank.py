"""Bank statements in a real browser: a credit manager imports a CAMT.053, finds the line
the matcher could not attribute in "Bank lines to match" and matches it by invoice
number; the pages pass axe.

The invoice is imported for a customer of its own (C-4001), so the shared server's demo
customers, which other browser tests use, are left as they are.
"""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from tests.bank_helpers import Entry, camt
from tests.browser.conftest import LiveServer, NewContext
from tests.browser.helpers import assert_no_axe_violations, en
from tests.browser.test_cases import create_user, log_in

pytestmark = pytest.mark.browser

MATCHER = "matcher@relance.example"
INVOICES = (
    "Code client;Raison sociale;N° facture;Date facture;Date d'échéance;Montant TTC\r\n"
    "C-4001;Menuiserie Roux;F2026-4001;02/11/2026;02/12/2026;317,45\r\n"
).encode("cp1252")


@pytest.fixture(scope="module")
def roux(live_server: LiveServer) -> LiveServer:
    create_user(live_server, MATCHER, "credit_manager")
    export = live_server.workdir / "roux.csv"
    export.write_bytes(INVOICES)
    live_server.cli("import", str(export))
    return live_server


def test_a_credit_manager_imports_a_statement_and_matches_a_line(
    new_context: NewContext, roux: LiveServer, axe: Axe
) -> None:
    page = new_context().new_page()
    log_in(page, MATCHER)
    page.get_by_role("link", name=en("Bank statements"), exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(en("Bank statements"))
    assert_no_axe_violations(axe, page, "bank statements page")
    statement = camt([Entry(31_745, "BROWSER-1", name="M. R.", remittance=("Paiement atelier",))])
    page.get_by_label(en("Statement file")).set_input_files(
        [{"name": "releve.xml", "mimeType": "application/xml", "buffer": statement}]
    )
    page.get_by_role("button", name=en("Import the statement")).click()
    expect(page.get_by_role("status")).to_contain_text("1 to match by hand")
    page.get_by_role("link", name=en("Bank lines to match"), exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(en("Bank lines to match"))
    assert_no_axe_violations(axe, page, "bank lines to match")
    page.get_by_label(en("Invoice numbers, separated by commas")).fill("F2026-4001")
    page.get_by_role("button", name=en("Match the line")).click()
    expect(page.get_by_role("status")).to_have_text(en("The line is recorded as a payment."))
    expect(page.get_by_text(en("No bank line waiting to be matched."))).to_be_visible()
