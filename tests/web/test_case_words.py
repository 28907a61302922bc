"""What a debtor and a credit manager read about a decision: sentences apart, the invoice
named, the company as sender, French that agrees ("Contestation refusée")."""

from __future__ import annotations

import re
from email.utils import parseaddr
from pathlib import Path

from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from portal.cases import service
from portal.cases.models import Case
from portal.company.models import Company
from portal.users.models import Role
from tests.factories import make_customer, make_invoice
from tests.mail_sink import Inbox, text_body
from tests.web.helpers import open_portal
from tests.web.test_backoffice import _cheap_hashing, log_in, make_user  # noqa: F401
from tests.web.test_cases import web  # noqa: F401

# Two sentences glued together: "La facture reste due.Le devis…"
GLUED = re.compile(r"[.!?][A-ZÀ-Ý]")


def _rejected_dispute(
    client: TestClient, db: Session, company: Company, inbox: Inbox
) -> tuple[int, str]:
    customer = make_customer(db, company, email="paie@atelier.example", language="fr")
    invoice = make_invoice(db, customer, amount_minor=64_000, number="F2026-0202")
    case = service.open_dispute(
        db, customer, None, [invoice.id], reason="other", message="Le prix était de 500 €."
    )
    db.commit()
    make_user(db, Role.CREDIT_MANAGER, email="cm@relance.example")
    log_in(client, "cm@relance.example")
    response = client.post(
        f"/admin/cases/{case.id}/resolve",
        data={"outcome": "reject", "note": "Le devis signé indique 640 €."},
    )
    assert response.status_code == 303, response.text
    return case.id, customer.reference


def test_a_decision_email_keeps_its_sentences_apart_names_the_invoice_and_comes_from_the_company(
    web: tuple[TestClient, Inbox, Path],  # noqa: F811
    db: Session,
    company: Company,
) -> None:
    client, inbox, _dir = web
    _rejected_dispute(client, db, company, inbox)
    message = inbox.wait_for(1)[-1]
    body = text_body(message)
    assert "Le devis signé indique 640 €." in body
    assert not GLUED.search(re.sub(r"https?://\S+", "", body)), body
    assert "F2026-0202" in body
    assert "F2026-0202" in str(message["Subject"])
    name, address = parseaddr(str(message["From"]))
    settings = client.app.state.settings  # type: ignore[attr-defined]
    assert name == settings.company.name
    assert address == parseaddr(settings.smtp.sender)[1]


def test_french_case_labels_agree_with_the_kind(
    web: tuple[TestClient, Inbox, Path],  # noqa: F811
    db: Session,
    company: Company,
) -> None:
    client, inbox, _dir = web
    case_id, _reference = _rejected_dispute(client, db, company, inbox)
    client.cookies.set("relance_lang", "fr")
    staff_page = client.get(f"/admin/cases/{case_id}", headers={"Accept-Language": "fr"}).text
    assert "Refusée" in staff_page
    assert "reject:" not in staff_page
    assert "reject" not in re.sub(r"<[^>]+>", " ", staff_page).split()
    client.post("/admin/logout")
    client.cookies.clear()
    customer = db.get(Case, case_id).customer_id  # type: ignore[union-attr]
    from portal.customers.models import Customer

    debtor = db.get(Customer, customer)
    assert debtor is not None
    open_portal(client, db, client.app.state.settings, debtor)  # type: ignore[attr-defined]
    listing = client.get("/cases").text
    assert "Refusée" in listing
    assert "Refusé<" not in listing
