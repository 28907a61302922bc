"""/admin/bank and "Bank lines to match" through the app, by role: credit managers and
admins import and answer, viewers read; bad files get their message and change nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from portal.bank.models import BankLine, LineStatus
from portal.company.models import Company
from portal.invoices.models import Invoice, InvoiceStatus
from portal.users.models import Role
from tests.bank_helpers import Entry, camt, csv_statement
from tests.bank_import import counts
from tests.factories import make_customer, make_invoice
from tests.web.test_backoffice_customers import log_in


def upload(client: TestClient, data: bytes, action: str = "import", **fields: str) -> object:
    return client.post(
        "/admin/bank/import",
        files={"file": ("statement.xml", data, "application/xml")},
        data={"action": action, **fields},
    )


def test_a_credit_manager_imports_checks_and_answers_the_queue(
    client: TestClient, db: Session, company: Company
) -> None:
    log_in(client, db, Role.CREDIT_MANAGER, language="en")
    customer = make_customer(db, company, name="Atelier Lune")
    paid = make_invoice(db, customer, amount_minor=2_500, number="AL-1")
    left = make_invoice(db, customer, amount_minor=4_000, number="AL-2")
    db.commit()
    data = camt(
        [Entry(2_500, "W1", remittance=("AL-1",)), Entry(4_000, "W2", name="?"), Entry(10, "W3")]
    )
    checked = upload(client, data, "check")
    assert checked.status_code == 200
    assert "nothing written" in checked.text
    assert db.scalars(select(BankLine)).all() == []
    done = upload(client, data)
    assert done.status_code == 303
    page = client.get(done.headers["location"])
    assert "3 new lines, 1 recorded as payments, 2 to match by hand" in page.text
    queue = client.get("/admin/bank/lines")
    assert queue.status_code == 200
    assert "Bank lines to match" in queue.text
    assert "AL-2" in queue.text  # suggested: the open invoice of exactly 40.00
    w2, w3 = db.scalars(
        select(BankLine).where(BankLine.status == LineStatus.REVIEW).order_by(BankLine.id)
    ).all()
    wrong = client.post(f"/admin/bank/lines/{w2.id}/match", data={"numbers": "NOPE-9"})
    assert wrong.status_code == 400
    assert "Name open invoices" in wrong.text
    assert (
        client.post(f"/admin/bank/lines/{w2.id}/match", data={"numbers": "AL-2"}).status_code == 303
    )
    assert client.post(f"/admin/bank/lines/{w3.id}/dismiss").status_code == 303
    db.expire_all()
    assert [db.get(Invoice, i.id).status for i in (paid, left)] == [InvoiceStatus.PAID] * 2  # type: ignore[union-attr]
    assert "No bank line waiting" in client.get("/admin/bank/lines").text


def test_a_split_in_french(client: TestClient, db: Session, company: Company) -> None:
    log_in(client, db, Role.ADMIN)
    customer = make_customer(db, company)
    a = make_invoice(db, customer, amount_minor=1_000, number="S-1")
    b = make_invoice(db, customer, amount_minor=2_000, number="S-2")
    db.commit()
    upload(client, camt([Entry(3_000, "X1")]))
    line = db.scalars(select(BankLine)).one()
    assert "Lignes bancaires à rapprocher" in client.get("/admin/bank/lines").text
    bad = client.post(
        f"/admin/bank/lines/{line.id}/split",
        data={"number_1": "S-1", "amount_1": "10,00", "number_2": "S-2", "amount_2": "5"},
    )
    assert bad.status_code == 400
    assert "montant de la ligne" in bad.text
    ok = client.post(
        f"/admin/bank/lines/{line.id}/split",
        data={"number_1": "S-1", "amount_1": "10,00", "number_2": "S-2", "amount_2": "20"},
    )
    assert ok.status_code == 303
    db.expire_all()
    assert db.get(Invoice, a.id).status is db.get(Invoice, b.id).status is InvoiceStatus.PAID  # type: ignore[union-attr]


def test_viewers_read_and_cannot_act(client: TestClient, db: Session, company: Company) -> None:
    log_in(client, db, Role.VIEWER, language="en")
    page = client.get("/admin/bank")
    assert page.status_code == 200
    assert "Statement file" not in page.text
    assert upload(client, camt([Entry(100, "V1")])).status_code == 403
    lines = client.get("/admin/bank/lines")
    assert lines.status_code == 200
    assert "Not a customer payment" not in lines.text
    assert client.post("/admin/bank/lines/1/dismiss").status_code == 403


def test_no_session_goes_to_the_login(client: TestClient) -> None:
    assert client.get("/admin/bank/lines").status_code == 303


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"<Document>broken", "is not a camt.053 or camt.054 statement"),
        (camt([Entry(100, "B1")], account="FR7630004000031234567890143"), "not the company"),
        (camt([Entry(100, "B1")], currency="USD"), "the account is in EUR"),
    ],
)
def test_bad_files_are_refused_with_their_message(
    client: TestClient, db: Session, company: Company, data: bytes, message: str
) -> None:
    log_in(client, db, Role.CREDIT_MANAGER, language="en")
    before = counts(db)
    response = upload(client, data)
    assert response.status_code == 400
    assert message in response.text
    db.expire_all()
    assert counts(db) == before


def test_a_csv_with_unknown_headers_is_mapped_once(
    client: TestClient, db: Session, company: Company
) -> None:
    log_in(client, db, Role.CREDIT_MANAGER, language="en")
    data = csv_statement([Entry(1_000, "C1")], header="Jour;Somme;Texte;Qui;Cpt;Num")
    refused = upload(client, data)
    assert refused.status_code == 400
    assert "Columns of this file: Jour, Somme" in refused.text
    mapped = upload(
        client, data, column_booked_on="Jour", column_amount="Somme", column_reference="Num"
    )
    assert mapped.status_code == 303
    again = csv_statement([Entry(2_000, "C2")], header="Jour;Somme;Texte;Qui;Cpt;Num")
    assert upload(client, again).status_code == 303
    assert len(db.scalars(select(BankLine)).all()) == 2
