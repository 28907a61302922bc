"""Letters and invoice PDFs write the IBAN grouped by four, as the portal shows it."""

from __future__ import annotations

import datetime as dt
import io

from pypdf import PdfReader
from sqlalchemy.orm import Session

from portal.company.models import Company
from portal.invoices import documents
from portal.reminders.render import DueInvoice, ReminderContent, Total, render_letter
from portal.settings import Settings
from tests.factories import make_customer, make_invoice

GROUPED = "FR76 3000 6000 0112 3456 7890 189"


def _text(pdf: bytes) -> str:
    return " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def test_the_formal_notice_groups_the_iban(db: Session, company: Company) -> None:
    company.iban = "FR7630006000011234567890189"
    customer = make_customer(db, company, language="fr")
    content = ReminderContent(
        customer_name=customer.name,
        contact_name="",
        language="fr",
        step="formal_notice",
        link="http://testserver/l/x",
        today=dt.date(2026, 12, 1),
        invoices=[DueInvoice(1, "F-1", dt.date(2026, 11, 1), "EUR", 10_000, 30)],
        totals=[Total("EUR", 10_000, 0)],
    )
    assert GROUPED in _text(render_letter(company, customer, content))


def test_the_invoice_pdf_groups_the_iban(db: Session, company: Company, settings: Settings) -> None:
    company.iban = "FR7630006000011234567890189"
    customer = make_customer(db, company, language="en")
    invoice = make_invoice(db, customer)
    pdf = documents.invoice_pdf(company, customer, invoice, "en", settings.pdf_font_path, None)
    assert GROUPED in _text(pdf)
