"""Imports in a real browser: a credit manager uploads an accounting export, reads the
preview, imports it and sees it done; a viewer sees the history but no upload form. The
pages pass axe.

The file names customers of its own (C-3001, C-3002), so the shared server's demo
customers, which other browser tests use, are left as they are.
"""

from __future__ import annotations

import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from tests.browser.conftest import LiveServer, NewContext
from tests.browser.helpers import assert_no_axe_violations, en
from tests.browser.test_cases import create_user, log_in

pytestmark = pytest.mark.browser

IMPORTER = "importer@relance.example"
READER = "reader@relance.example"
EXPORT = (
    "Code client;Raison sociale;N° facture;Date facture;Date d'échéance;Montant TTC\r\n"
    "C-3001;Verrerie Delmas;F2026-3001;02/11/2026;02/12/2026;1 250,00\r\n"
    "C-3002;Scierie Bonnet;F2026-3002;03/11/2026;03/01/2027;480,50\r\n"
    "C-3002;Scierie Bonnet;F2026-3003;03/12/2026;03/11/2026;99,00\r\n"
).encode("cp1252")


@pytest.fixture(scope="module")
def people(live_server: LiveServer) -> LiveServer:
    create_user(live_server, IMPORTER, "credit_manager")
    create_user(live_server, READER, "viewer")
    return live_server


def test_a_credit_manager_imports_an_export_after_its_preview(
    new_context: NewContext, people: LiveServer, axe: Axe
) -> None:
    page = new_context().new_page()
    log_in(page, IMPORTER)
    page.get_by_role("link", name=en("Imports"), exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(en("Imports"))
    assert_no_axe_violations(axe, page, "imports page")
    page.get_by_label(en("File to import")).set_input_files(
        [{"name": "open-items.csv", "mimeType": "text/csv", "buffer": EXPORT}]
    )
    page.get_by_role("button", name=en("Read the file")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        en("Import of %(file)s", file="open-items.csv")
    )
    # The preview: read in the background, shown when ready (the page polls).
    expect(page.get_by_text(en("Ready to import"))).to_be_visible(timeout=20_000)
    expect(page.get_by_text(re.compile(r"2 new rows"))).to_be_visible()
    expect(
        page.get_by_text("Line 4: The due date cannot be before the issue date.")
    ).to_be_visible()
    expect(page.get_by_role("cell", name="Verrerie Delmas")).to_be_visible()
    assert_no_axe_violations(axe, page, "import preview")
    page.get_by_role("button", name=en("Import"), exact=True).click()
    expect(page.get_by_role("status").filter(has_text=en("Imported"))).to_be_visible(timeout=20_000)
    assert_no_axe_violations(axe, page, "import done")
    page.get_by_role("link", name=en("All imports")).click()
    row = page.get_by_role("row").filter(has_text="open-items.csv").first
    expect(row).to_contain_text(en("Imported"))
    expect(row).to_contain_text(IMPORTER)


def test_a_viewer_reads_the_history_but_has_no_upload_form(
    new_context: NewContext, people: LiveServer, axe: Axe
) -> None:
    page = new_context().new_page()
    log_in(page, READER)
    page.get_by_role("link", name=en("Imports"), exact=True).click()
    expect(page.get_by_role("heading", name=en("History"))).to_be_visible()
    expect(page.get_by_label(en("File to import"))).to_have_count(0)
    assert_no_axe_violations(axe, page, "imports page (viewer)")
