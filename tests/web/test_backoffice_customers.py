"""Back office data entry over HTTP: customers, contacts, invoices, credit notes and payments
received elsewhere. Roles (viewers read, credit managers write), translated messages next to
the field, nothing changed by bad input, markup escaped."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from portal import clock
from portal.company.models import Company
from portal.customers.models import Contact, Customer
from portal.invoices.models import CreditNote, Invoice, InvoiceStatus
from portal.payments.models import Payment, PaymentMethod
from portal.settings import Settings
from portal.timeline.models import TimelineEvent
from portal.users import service as users
from portal.users.models import Role, User
from tests.factories import make_customer, make_invoice

PASSWORD = "correct horse battery staple"
PDF = b"%PDF-1.4\n% test\n%%EOF\n"
_sequence = itertools.count(1)

CUSTOMER_FORM = {
    "reference": "C-900",
    "name": "Dupont & Fils <SARL>",
    "siren": "732 829 320",
    "siret": "",
    "vat_number": "FR44732829320",
    "address_line1": "3 place du Marché",
    "address_line2": "",
    "postcode": "13001",
    "city": "Marseille",
    "country": "FR",
    "language": "fr",
    "timezone": "Europe/Paris",
    "risk_segment": "medium",
    "reminder_scenario": "",
    "owner_user_id": "",
}


@pytest.fixture(autouse=True)
def _cheap_hashing() -> Iterator[None]:
    previous = users.set_password_hasher(
        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    yield
    users.set_password_hasher(previous)


def make_user(db: Session, role: Role) -> User:
    user = users.create_user(db, f"data{next(_sequence)}@relance.example", role, PASSWORD)
    db.commit()
    return user


def log_in(client: TestClient, db: Session, role: Role, language: str = "fr") -> User:
    user = make_user(db, role)
    client.cookies.set("relance_lang", language)
    response = client.post("/admin/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 303, response.text
    return user


def field_error(html: str, field: str) -> str:
    """The message shown next to a field; the field (or its fieldset) points to it."""
    match = re.search(rf'<p class="field-error" id="f-{field}-error">([^<]*)</p>', html)
    assert match, f"no message next to {field}"
    described = rf'aria-describedby="[^"]*\bf-{field}-error\b'
    control = re.search(rf'<(input|select|textarea)[^>]*id="f-{field}"[^>]*{described}', html)
    assert control or re.search(rf"<fieldset {described}", html)
    return match.group(1)


def data_events(db: Session) -> int:
    """Timeline events about customers (logging in leaves one about the user)."""
    db.expire_all()
    return (
        db.scalar(
            select(func.count(TimelineEvent.id)).where(TimelineEvent.customer_id.is_not(None))
        )
        or 0
    )


def events(db: Session, action: str) -> list[TimelineEvent]:
    db.expire_all()
    return list(
        db.scalars(
            select(TimelineEvent).where(TimelineEvent.action == action).order_by(TimelineEvent.id)
        )
    )


# --- roles ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/admin/customers/new",
        "/admin/customers/{customer}/edit",
        "/admin/customers/{customer}/contacts/new",
        "/admin/customers/{customer}/invoices/new",
        "/admin/invoices/{invoice}/edit",
        "/admin/customers/{customer}/credit-notes/new",
        "/admin/customers/{customer}/payments/new",
    ],
)
def test_viewers_may_not_open_or_post_the_forms(
    client: TestClient, db: Session, company: Company, path: str
) -> None:
    customer = make_customer(db, company)
    invoice = make_invoice(db, customer)
    db.commit()
    log_in(client, db, Role.VIEWER)
    url = path.format(customer=customer.id, invoice=invoice.id)
    assert client.get(url).status_code == 403
    assert client.post(url, data=CUSTOMER_FORM).status_code == 403
    assert data_events(db) == 0


def test_without_a_session_the_forms_lead_to_the_login(client: TestClient) -> None:
    response = client.get("/admin/customers/new")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/admin/login")
    assert client.post("/admin/customers/new", data=CUSTOMER_FORM).status_code == 303


def test_a_viewer_sees_no_edit_links(client: TestClient, db: Session, company: Company) -> None:
    customer = make_customer(db, company)
    db.commit()
    log_in(client, db, Role.VIEWER)
    page = client.get(f"/admin/customers/{customer.id}").text
    assert "/edit" not in page
    assert "/admin/customers/new" not in client.get("/admin/customers").text


# --- customers --------------------------------------------------------------------------------


def test_a_credit_manager_creates_then_edits_a_customer(
    client: TestClient, db: Session, company: Company
) -> None:
    manager = log_in(client, db, Role.CREDIT_MANAGER)
    assert "/admin/customers/new" in client.get("/admin/customers").text
    form = client.get("/admin/customers/new")
    assert form.status_code == 200
    assert 'for="f-siren"' in form.text
    response = client.post("/admin/customers/new", data=CUSTOMER_FORM)
    assert response.status_code == 303, response.text
    db.expire_all()
    customer = db.scalars(select(Customer).where(Customer.reference == "C-900")).one()
    assert (customer.siren, customer.city) == ("732829320", "Marseille")
    assert response.headers["location"] == f"/admin/customers/{customer.id}?done=customer-created"
    page = client.get(response.headers["location"]).text
    # Markup in a name is shown as text, never run.
    assert "Dupont &amp; Fils &lt;SARL&gt;" in page
    assert "<SARL>" not in page
    assert "Le client est créé." in page

    edit = client.get(f"/admin/customers/{customer.id}/edit")
    assert 'value="Marseille"' in edit.text
    changed = dict(
        CUSTOMER_FORM,
        name="Dupont <b>SA</b>",
        city="Aix-en-Provence",
        postcode="13100",
        strategic="1",
        risk_segment="high",
    )
    assert client.post(f"/admin/customers/{customer.id}/edit", data=changed).status_code == 303
    [event] = events(db, "customer.updated")
    assert event.actor_id == str(manager.id)
    assert event.details["changes"]["city"] == ["Marseille", "Aix-en-Provence"]
    assert event.details["changes"]["strategic"] == [False, True]
    page = client.get(f"/admin/customers/{customer.id}").text
    assert "Ville : Marseille → Aix-en-Provence" in page
    assert "Risque moyen → Risque élevé" in page
    assert "Compte stratégique : non → oui" in page
    # Values on the timeline are escaped too.
    assert "Dupont &amp; Fils &lt;SARL&gt; → Dupont &lt;b&gt;SA&lt;/b&gt;" in page
    assert "<b>SA</b>" not in page


def test_bad_input_shows_a_french_message_next_to_the_field_and_changes_nothing(
    client: TestClient, db: Session, company: Company
) -> None:
    log_in(client, db, Role.CREDIT_MANAGER)
    bad = dict(CUSTOMER_FORM, siren="732 829 321", postcode="130", name="<b>x</b>")
    response = client.post("/admin/customers/new", data=bad)
    assert response.status_code == 400
    assert field_error(response.text, "siren") == (
        "Saisissez un SIREN valide : 9 chiffres, par exemple 732 829 320."
    )
    assert "code postal" in field_error(response.text, "postcode")
    # What was typed is kept, escaped.
    assert 'value="&lt;b&gt;x&lt;/b&gt;"' in response.text
    assert 'value="732 829 321"' in response.text
    db.expire_all()
    assert db.scalar(select(func.count(Customer.id))) == 0
    assert data_events(db) == 0


def test_english_messages_for_an_english_speaking_user(
    client: TestClient, db: Session, company: Company
) -> None:
    log_in(client, db, Role.ADMIN, language="en")
    response = client.post("/admin/customers/new", data=dict(CUSTOMER_FORM, vat_number="FR1"))
    assert response.status_code == 400
    assert field_error(response.text, "vat_number").startswith("Enter a valid EU VAT number")


def test_an_edit_with_a_taken_reference_is_refused(
    client: TestClient, db: Session, company: Company
) -> None:
    make_customer(db, company, reference="TAKEN")
    customer = make_customer(db, company, name="Martin")
    db.commit()
    log_in(client, db, Role.CREDIT_MANAGER)
    response = client.post(
        f"/admin/customers/{customer.id}/edit", data=dict(CUSTOMER_FORM, reference="TAKEN")
    )
    assert response.status_code == 400
    assert field_error(response.text, "reference") == "Un autre client a déjà cette référence."
    db.expire_all()
    assert db.get(Customer, customer.id).name == "Martin"  # type: ignore[union-attr]


def test_another_companys_customer_is_not_found(
    client: TestClient, db: Session, company: Company
) -> None:
    log_in(client, db, Role.CREDIT_MANAGER)
    assert client.get("/admin/customers/999999/edit").status_code == 404
    assert client.post("/admin/customers/999999/edit", data=CUSTOMER_FORM).status_code == 404


# --- contacts ---------------------------------------------------------------------------------


def test_contacts_are_added_edited_and_removed(
    client: TestClient, db: Session, company: Company
) -> None:
    customer = make_customer(db, company)
    db.commit()
    log_in(client, db, Role.CREDIT_MANAGER)
    url = f"/admin/customers/{customer.id}/contacts/new"
    bad = client.post(url, data={"name": "Anne", "phone": "06 12", "role": "billing"})
    assert bad.status_code == 400
    assert "numéro de téléphone" in field_error(bad.text, "phone")
    data = {
        "name": "Anne <Martin>",
        "email": "anne@example.com",
        "phone": "06 12 34 56 78",
        "role": "accounting",
        "receives_reminders": "1",
        "accepts_email": "1",
    }
    assert client.post(url, data=data).status_code == 303
    db.expire_all()
    anne = db.scalars(select(Contact).where(Contact.email == "anne@example.com")).one()
    assert (anne.phone, anne.accepts_sms, anne.accepts_email) == ("+33612345678", False, True)
    page = client.get(f"/admin/customers/{customer.id}").text
    assert "Anne &lt;Martin&gt;" in page
    assert "Comptabilité fournisseurs" in page
    edit = f"/admin/customers/{customer.id}/contacts/{anne.id}/edit"
    assert client.post(edit, data=dict(data, accepts_sms="1")).status_code == 303
    [updated] = [e for e in events(db, "contact.updated") if e.subject_id == str(anne.id)]
    assert updated.details["changes"] == {"accepts_sms": [False, True]}
    anne_id = anne.id
    remove = f"/admin/customers/{customer.id}/contacts/{anne_id}/remove"
    assert client.post(remove).status_code == 303
    db.expire_all()
    assert db.get(Contact, anne_id) is None


# --- invoices ---------------------------------------------------------------------------------


def invoice_form(**values: str) -> dict[str, str]:
    return {
        "number": "F-2026-001",
        "issue_date": "2026-03-01",
        "due_date": "2026-03-31",
        "amount": "1 234,56",
        "currency": "EUR",
    } | values


def test_an_invoice_is_created_with_its_pdf_then_edited(
    client: TestClient, db: Session, company: Company, settings: Settings
) -> None:
    customer = make_customer(db, company)
    db.commit()
    log_in(client, db, Role.CREDIT_MANAGER)
    response = client.post(
        f"/admin/customers/{customer.id}/invoices/new",
        data=invoice_form(),
        files={"pdf": ("facture.pdf", PDF, "application/pdf")},
    )
    assert response.status_code == 303, response.text
    db.expire_all()
    invoice = db.scalars(select(Invoice).where(Invoice.number == "F-2026-001")).one()
    assert (invoice.amount_minor, invoice.due_date) == (123_456, dt.date(2026, 3, 31))
    assert invoice.pdf_path is not None
    assert (settings.documents_dir / invoice.pdf_path).read_bytes() == PDF
    edit = client.post(
        f"/admin/invoices/{invoice.id}/edit",
        data=invoice_form(amount="1000", due_date="2026-04-15"),
    )
    assert edit.status_code == 303
    [event] = events(db, "invoice.updated")
    assert event.details["changes"] == {
        "due_date": ["2026-03-31", "2026-04-15"],
        "amount_minor": [123_456, 100_000],
    }
    page = client.get(f"/admin/customers/{customer.id}").text
    assert "1 234,56 € → 1 000,00 €" in page.replace("\u202f", " ").replace("\xa0", " ")


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"due_date": "2026-02-01"}, "due_date", "La date d'échéance ne peut pas précéder"),
        ({"amount": "0"}, "amount", "Saisissez un montant supérieur à zéro."),
        ({"amount": "douze"}, "amount", "Saisissez un montant"),
        ({"currency": "EURO"}, "currency", "Saisissez un code de devise"),
        ({"issue_date": "01/03/2026"}, "issue_date", "Saisissez une date"),
    ],
)
def test_bad_invoices_are_refused_next_to_the_field(
    client: TestClient,
    db: Session,
    company: Company,
    values: dict[str, str],
    field: str,
    message: str,
) -> None:
    customer = make_customer(db, company)
    db.commit()
    log_in(client, db, Role.CREDIT_MANAGER)
    response = client.post(
        f"/admin/customers/{customer.id}/invoices/new", data=invoice_form(**values)
    )
    assert response.status_code == 400
    assert field_error(response.text, field).startswith(message.replace("'", "&#39;"))
    db.expire_all()
    assert db.scalar(select(func.count(Invoice.id))) == 0


def test_a_file_that_is_not_a_pdf_saves_nothing(
    client: TestClient, db: Session, company: Company, settings: Settings
) -> None:
    customer = make_customer(db, company)
    db.commit()
    log_in(client, db, Role.CREDIT_MANAGER)
    response = client.post(
        f"/admin/customers/{customer.id}/invoices/new",
        data=invoice_form(),
        files={"pdf": ("facture.pdf", b"<html>not a pdf</html>", "application/pdf")},
    )
    assert response.status_code == 400
    assert field_error(response.text, "pdf") == "Ce fichier n&#39;est pas un PDF."
    db.expire_all()
    assert db.scalar(select(func.count(Invoice.id))) == 0
    assert not (settings.documents_dir / "invoices").exists()


def test_an_upload_too_large_is_refused_before_it_is_read(
    client: TestClient, db: Session, company: Company
) -> None:
    customer = make_customer(db, company)
    db.commit()
    log_in(client, db, Role.CREDIT_MANAGER)
    big = b"%PDF-" + b"0" * (11 * 1024 * 1024)
    response = client.post(
        f"/admin/customers/{customer.id}/invoices/new",
        data=invoice_form(),
        files={"pdf": ("big.pdf", big, "application/pdf")},
    )
    assert response.status_code == 413
    assert "trop volumineux" in field_error(response.text, "pdf")
    db.expire_all()
    assert db.scalar(select(func.count(Invoice.id))) == 0


def test_cancelling_an_invoice_takes_it_out_of_what_is_owed(
    client: TestClient, db: Session, company: Company
) -> None:
    customer = make_customer(db, company)
    invoice = make_invoice(db, customer, number="F-CANCEL")
    db.commit()
    log_in(client, db, Role.CREDIT_MANAGER)
    page = client.get(f"/admin/invoices/{invoice.id}/edit").text
    assert "Annuler la facture" in page
    response = client.post(f"/admin/invoices/{invoice.id}/cancel", data={"reason": "doublon"})
    assert response.status_code == 303
    db.expire_all()
    assert db.get(Invoice, invoice.id).status is InvoiceStatus.CANCELLED  # type: ignore[union-attr]
    assert "Facture F-CANCEL annulée" in client.get(f"/admin/customers/{customer.id}").text
    edit = client.post(f"/admin/invoices/{invoice.id}/edit", data=invoice_form(number="F-CANCEL"))
    assert edit.status_code == 400


# --- credit notes and payments ----------------------------------------------------------------


def test_a_credit_note_reduces_the_invoice_it_names(
    client: TestClient, db: Session, company: Company
) -> None:
    customer = make_customer(db, company)
    invoice = make_invoice(db, customer, number="F-CN", amount_minor=100_00)
    db.commit()
    log_in(client, db, Role.CREDIT_MANAGER)
    form = client.get(f"/admin/customers/{customer.id}/credit-notes/new?invoice=F-CN").text
    assert 'value="F-CN" checked' in form
    data = {
        "number": "AV-1",
        "issue_date": clock.now().date().isoformat(),
        "amount": "25",
        "currency": "EUR",
        "applies_to": "F-CN",
        "reason": "remise",
    }
    assert (
        client.post(f"/admin/customers/{customer.id}/credit-notes/new", data=data).status_code
        == 303
    )
    db.expire_all()
    assert db.get(Invoice, invoice.id).remaining_minor == 75_00  # type: ignore[union-attr]
    again = client.post(f"/admin/customers/{customer.id}/credit-notes/new", data=data)
    assert again.status_code == 400
    assert field_error(again.text, "number") == "Un autre avoir porte déjà ce numéro."
    note = db.scalars(select(CreditNote)).one()
    assert client.post(f"/admin/credit-notes/{note.id}/cancel").status_code == 303
    db.expire_all()
    assert db.get(Invoice, invoice.id).remaining_minor == 100_00  # type: ignore[union-attr]


def test_a_cheque_is_recorded_once(client: TestClient, db: Session, company: Company) -> None:
    customer = make_customer(db, company)
    invoice = make_invoice(db, customer, amount_minor=300_00)
    db.commit()
    log_in(client, db, Role.CREDIT_MANAGER)
    url = f"/admin/customers/{customer.id}/payments/new"
    assert "Chèque" in client.get(url).text
    data = {
        "method": "cheque",
        "amount": "120,00",
        "currency": "EUR",
        "reference": "CHQ-42",
        "received_on": clock.today_in(customer.timezone).isoformat(),
        "invoice_ids": str(invoice.id),
    }
    first = client.post(url, data=data)
    assert first.headers["location"].endswith("done=payment-recorded#invoices")
    second = client.post(url, data=data)
    assert second.headers["location"].endswith("done=payment-known#invoices")
    db.expire_all()
    payment = db.scalars(select(Payment)).one()
    assert (payment.method, payment.amount_minor) == (PaymentMethod.CHEQUE, 120_00)
    assert db.get(Invoice, invoice.id).remaining_minor == 180_00  # type: ignore[union-attr]
    future = (clock.today_in(customer.timezone) + dt.timedelta(days=3)).isoformat()
    refused = client.post(url, data=dict(data, reference="CHQ-43", received_on=future))
    assert refused.status_code == 400
    assert field_error(refused.text, "received_on") == "La date ne peut pas être dans le futur."


def test_the_customer_page_shows_identifiers_and_address(
    client: TestClient, db: Session, company: Company, tmp_path: Path
) -> None:
    customer = make_customer(
        db,
        company,
        siren="732829320",
        address_line1="1 rue <Haute>",
        postcode="75001",
        city="Paris",
    )
    db.commit()
    log_in(client, db, Role.VIEWER)
    page = client.get(f"/admin/customers/{customer.id}").text
    assert "732829320" in page
    assert "1 rue &lt;Haute&gt;<br>75001 Paris" in page


def test_the_customer_page_lists_paid_and_cancelled_invoices_apart(
    client: TestClient, db: Session, company: Company
) -> None:
    customer = make_customer(db, company)
    make_invoice(db, customer, number="F-OPEN")
    paid = {"status": InvoiceStatus.PAID, "amount_minor": 5_000, "paid_minor": 5_000}
    make_invoice(db, customer, number="F-PAID", **paid)
    make_invoice(db, customer, number="F-<VOID>", status=InvoiceStatus.CANCELLED)
    db.commit()
    log_in(client, db, Role.VIEWER)
    page = client.get(f"/admin/customers/{customer.id}").text
    open_part, closed_part = page.split('id="closed-invoices"')
    assert "F-OPEN" in open_part
    assert "F-PAID" not in open_part
    assert "Factures réglées et annulées" in closed_part
    assert "F-PAID" in closed_part
    assert "F-&lt;VOID&gt;" in closed_part
    assert "F-OPEN" not in closed_part.split("</section>")[0]
    assert "Annulée" in closed_part or "Annulé" in closed_part
