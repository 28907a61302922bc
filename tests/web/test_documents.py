"""Invoice pages, PDFs and statements: what the debtor downloads."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from portal.company.models import Company
from portal.invoices.models import InvoiceStatus
from portal.settings import Settings
from portal.timeline.models import TimelineEvent
from tests.factories import make_customer, make_invoice
from tests.web.helpers import open_portal


def _pdf_text(body: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(body)).pages)


def test_stored_pdf_is_served_through_the_session_only(
    client: TestClient, db: Session, settings: Settings, company: Company
) -> None:
    stored = settings.documents_dir / "invoices" / "STORED-1.pdf"
    stored.parent.mkdir(parents=True)
    stored.write_bytes(b"%PDF-1.4 the company's own invoice")
    customer = make_customer(db, company)
    invoice = make_invoice(db, customer, number="STORED-1", pdf_path="invoices/STORED-1.pdf")
    assert client.get(f"/invoices/{invoice.id}/pdf").status_code == 401
    assert client.get("/static/../var/documents/invoices/STORED-1.pdf").status_code == 404
    open_portal(client, db, settings, customer)
    response = client.get(f"/invoices/{invoice.id}/pdf")
    assert response.status_code == 200
    assert response.content == b"%PDF-1.4 the company's own invoice"
    assert response.headers["content-type"] == "application/pdf"
    assert 'filename="STORED-1.pdf"' in response.headers["content-disposition"]
    downloads = db.scalars(
        select(TimelineEvent).where(TimelineEvent.action == "invoice.downloaded")
    ).all()
    assert [d.subject_id for d in downloads] == [str(invoice.id)]


def test_generated_pdf_when_none_is_stored_in_the_customers_language(
    client: TestClient, db: Session, settings: Settings, company: Company
) -> None:
    customer = make_customer(db, company, language="fr")
    invoice = make_invoice(db, customer, number="GEN-1", amount_minor=123_456, paid_minor=23_456)
    open_portal(client, db, settings, customer)
    response = client.get(f"/invoices/{invoice.id}/pdf")
    assert response.status_code == 200
    assert response.content.startswith(b"%PDF")
    text = _pdf_text(response.content)
    assert "Facture GEN-1" in text
    assert "1 000,00" in text.replace("\u202f", " ").replace("\xa0", " ")


def test_a_stored_path_never_escapes_the_documents_directory(
    client: TestClient, db: Session, settings: Settings, company: Company, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.pdf"
    secret.write_bytes(b"%PDF not yours")
    customer = make_customer(db, company)
    invoice = make_invoice(db, customer, pdf_path="../secret.pdf")
    open_portal(client, db, settings, customer)
    response = client.get(f"/invoices/{invoice.id}/pdf")
    assert response.status_code == 200
    assert b"not yours" not in response.content  # a generated copy instead


def test_statement_csv_and_pdf(
    client: TestClient, db: Session, settings: Settings, company: Company
) -> None:
    customer = make_customer(db, company, language="en", reference="ACME-9")
    make_invoice(db, customer, number="S-1", amount_minor=10_000, due_in_days=-3)
    make_invoice(
        db, customer, number="S-2", amount_minor=5_050, paid_minor=5_050, status=InvoiceStatus.PAID
    )
    make_invoice(db, customer, number="S-3", status=InvoiceStatus.CANCELLED)
    open_portal(client, db, settings, customer)

    response = client.get("/statement.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "statement-ACME-9-" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["invoice_number"], r["remaining"], r["status"]) for r in rows] == [
        ("S-1", "100.00", "open"),
        ("S-2", "0.00", "paid"),
    ]
    assert rows[0]["days_overdue"] == "3"

    pdf = client.get("/statement.pdf")
    assert pdf.status_code == 200
    text = _pdf_text(pdf.content)
    assert "Account statement" in text
    assert "S-1" in text
    assert "S-3" not in text
    assert client.get("/statement.xls").status_code == 404


def test_statement_csv_neutralises_formulas_and_keeps_amounts_numeric(
    client: TestClient, db: Session, settings: Settings, company: Company
) -> None:
    customer = make_customer(db, company, language="en")
    numbers = ['=HYPERLINK("http://evil.example","Click")', "+1", "-2", "@SUM(A1)", "\tT", "\rR"]
    for number in numbers:
        make_invoice(db, customer, number=number, amount_minor=12_345, due_in_days=-1)
    open_portal(client, db, settings, customer)
    rows = list(csv.DictReader(io.StringIO(client.get("/statement.csv").text, newline="")))
    assert sorted(r["invoice_number"] for r in rows) == sorted("'" + n for n in numbers)
    assert {(r["amount"], r["remaining"], r["days_overdue"]) for r in rows} == {
        ("123.45", "123.45", "1")
    }


def test_invoice_page_and_paid_list(
    client: TestClient, db: Session, settings: Settings, company: Company
) -> None:
    customer = make_customer(db, company, language="en")
    late = make_invoice(db, customer, number="LATE-1", due_in_days=-8, paid_minor=1_000)
    make_invoice(db, customer, number="DONE-1", paid_minor=10_000, status=InvoiceStatus.PAID)
    open_portal(client, db, settings, customer)
    page = client.get(f"/invoices/{late.id}").text
    assert "Overdue by 8 days" in page
    assert "€90.00" in page  # remaining
    paid = client.get("/paid").text
    assert "DONE-1" in paid
    assert "LATE-1" not in paid


def test_htmx_filter_renders_only_the_table(
    client: TestClient, db: Session, settings: Settings, company: Company
) -> None:
    customer = make_customer(db, company, language="en")
    make_invoice(db, customer, number="OLD-1", due_in_days=-2)
    make_invoice(db, customer, number="NEW-1", due_in_days=20)
    open_portal(client, db, settings, customer)
    fragment = client.get("/?show=overdue", headers={"HX-Request": "true"})
    assert "HX-Request" in fragment.headers["vary"]
    assert "<html" not in fragment.text
    assert "OLD-1" in fragment.text
    assert "NEW-1" not in fragment.text
    full = client.get("/?show=upcoming")
    assert "<html" in full.text
    # The payment form below lists every open invoice: look at the table only.
    table = full.text.split('id="invoice-table"')[1].split('id="pay-title"')[0]
    assert "NEW-1" in table
    assert "OLD-1" not in table
    assert (
        "<html"
        in client.get(
            "/?show=overdue", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
        ).text
    )


def test_language_follows_the_customer_then_the_switch(
    client: TestClient, db: Session, settings: Settings, company: Company
) -> None:
    customer = make_customer(db, company, language="en")
    open_portal(client, db, settings, customer)
    assert '<html lang="en">' in client.get("/", headers={"Accept-Language": "fr"}).text
    switched = client.post("/language", data={"language": "fr", "next": "/paid"})
    assert switched.status_code == 303
    assert switched.headers["location"] == "/paid"
    page = client.get("/paid").text
    assert '<html lang="fr">' in page
    assert "Factures réglées" in page
    # Unknown languages and foreign redirect targets are ignored.
    odd = client.post("/language", data={"language": "xx", "next": "https://evil.example/"})
    assert odd.headers["location"] == "/"
    assert '<html lang="fr">' in client.get("/").text
