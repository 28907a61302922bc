"""Imports in the back office: upload -> preview -> confirm, by role; the history; the
original file for admins only; mapping unrecognised columns; size limits."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from portal.imports.models import Import, ImportMapping, ImportStatus
from portal.invoices.models import Invoice
from portal.settings import Settings
from portal.users import service as users
from portal.users.models import Role
from portal.users.service import create_user

PASSWORD = "correct horse battery staple"
EXPORT = (
    "Code client;Raison sociale;N° facture;Date facture;Date d'échéance;Montant TTC\r\n"
    "C-1;Café Éole;F-1;01/11/2026;01/12/2026;1 234,56\r\n"
    "C-2;Dupont;F-2;01/11/2026;01/10/2026;10,00\r\n"
).encode("cp1252")


@pytest.fixture(autouse=True)
def _cheap_hashing() -> Iterator[None]:
    previous = users.set_password_hasher(
        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    yield
    users.set_password_hasher(previous)


def log_in(client: TestClient, db: Session, role: Role) -> None:
    client.app.state.login_failure_delay = 0  # type: ignore[attr-defined]
    client.headers["Accept-Language"] = "en"
    email = f"{role.value}@relance.example"
    create_user(db, email, role, PASSWORD)
    db.commit()
    response = client.post("/admin/login", data={"email": email, "password": PASSWORD})
    assert response.status_code == 303


def upload(client: TestClient, data: bytes = EXPORT, name: str = "export.csv", **form: str):  # type: ignore[no-untyped-def]
    return client.post("/admin/imports", data=form, files={"file": (name, data, "text/csv")})


def only_import(db: Session) -> Import:
    db.expire_all()
    return db.scalars(select(Import)).one()


@pytest.mark.parametrize("role", [Role.CREDIT_MANAGER, Role.ADMIN])
def test_upload_previews_then_confirm_imports(client: TestClient, db: Session, role: Role) -> None:
    log_in(client, db, role)
    response = upload(client)
    assert response.status_code == 303
    record = only_import(db)
    assert response.headers["location"] == f"/admin/imports/{record.id}"
    # The background task read the file after the response: the preview, nothing written.
    assert record.status is ImportStatus.READY
    assert db.scalars(select(Invoice)).all() == []
    page = client.get(response.headers["location"])
    assert page.status_code == 200
    text = page.text
    assert "1 new row" in text
    assert "1 rejected row" in text
    assert "Line 3: The due date cannot be before the issue date." in text
    assert "Café Éole" in text  # the first rows as they will be read
    assert f'action="/admin/imports/{record.id}/confirm"' in text
    confirmed = client.post(f"/admin/imports/{record.id}/confirm")
    assert confirmed.status_code == 303
    record = only_import(db)
    assert record.status is ImportStatus.DONE
    assert record.confirmed_by_user_id is not None
    assert [i.number for i in db.scalars(select(Invoice))] == ["F-1"]
    history = client.get("/admin/imports").text
    assert "export.csv" in history
    assert f"{role.value}@relance.example" in history


def test_viewers_read_the_history_but_cannot_import(client: TestClient, db: Session) -> None:
    log_in(client, db, Role.VIEWER)
    page = client.get("/admin/imports")
    assert page.status_code == 200
    assert 'enctype="multipart/form-data"' not in page.text
    assert upload(client).status_code == 403
    assert db.scalars(select(Import)).all() == []


def test_viewers_cannot_confirm_and_only_admins_download_originals(
    client: TestClient, db: Session, settings: Settings
) -> None:
    log_in(client, db, Role.CREDIT_MANAGER)
    upload(client)
    record = only_import(db)
    assert client.get(f"/admin/imports/{record.id}/original").status_code == 403
    client.post("/admin/logout")
    log_in(client, db, Role.VIEWER)
    assert client.get(f"/admin/imports/{record.id}").status_code == 200
    assert client.post(f"/admin/imports/{record.id}/confirm").status_code == 403
    assert only_import(db).status is ImportStatus.READY
    assert client.get(f"/admin/imports/{record.id}/original").status_code == 403
    client.post("/admin/logout")
    log_in(client, db, Role.ADMIN)
    original = client.get(f"/admin/imports/{record.id}/original")
    assert original.status_code == 200
    assert original.content == EXPORT
    assert original.headers["content-disposition"].startswith('attachment; filename="export.csv"')


def test_unrecognised_columns_are_mapped_once_and_kept(client: TestClient, db: Session) -> None:
    log_in(client, db, Role.CREDIT_MANAGER)
    data = b"Ref;Client;Nom;Emise le;Payable le;Somme\nF-1;C-1;Dupont;01/11/2026;01/12/2026;10\n"
    upload(client, data)
    record = only_import(db)
    assert record.status is ImportStatus.NEEDS_MAPPING
    page = client.get(f"/admin/imports/{record.id}").text
    assert "Column “Emise le”" in page
    incomplete = client.post(
        f"/admin/imports/{record.id}/mapping", data={"kind": "invoices", "column-0": "number"}
    )
    assert incomplete.status_code == 200
    assert "Choose a column for:" in incomplete.text
    fields = ["number", "customer_reference", "customer_name", "issue_date", "due_date", "amount"]
    mapped = client.post(
        f"/admin/imports/{record.id}/mapping",
        data={"kind": "invoices", **{f"column-{i}": f for i, f in enumerate(fields)}},
    )
    assert mapped.status_code == 303
    assert only_import(db).status is ImportStatus.READY
    assert db.scalars(select(ImportMapping)).one().kind == "invoices"
    upload(client, data, "next-month.csv")
    db.expire_all()
    latest = db.scalars(select(Import).order_by(Import.id.desc())).first()
    assert latest is not None
    assert latest.status is ImportStatus.READY
    assert latest.counts == {"new": 1, "customers_new": 1}


def test_an_unreadable_file_says_why(client: TestClient, db: Session) -> None:
    log_in(client, db, Role.CREDIT_MANAGER)
    upload(client, b"\x00\x01binary\x00" * 50, "photo.csv")
    record = only_import(db)
    page = client.get(f"/admin/imports/{record.id}").text
    assert "This file is not a CSV or XLSX spreadsheet." in page


def test_uploads_past_the_limit_are_refused_before_being_read(
    client: TestClient, db: Session, settings: Settings
) -> None:
    log_in(client, db, Role.CREDIT_MANAGER)
    limit = settings.import_max_bytes
    response = client.post(
        "/admin/imports",
        content=b"x" * 10,
        headers={
            "Content-Type": "multipart/form-data; boundary=x",
            "Content-Length": str(limit + 10**6),
        },
    )
    assert response.status_code == 413
    assert re.search(r"larger than \d+ MB", response.text)
    assert db.scalars(select(Import)).all() == []


def test_the_page_polls_while_the_import_runs_and_works_without_javascript(
    client: TestClient, db: Session
) -> None:
    log_in(client, db, Role.CREDIT_MANAGER)
    upload(client)
    record = only_import(db)
    record.status = ImportStatus.APPLYING
    record.total_rows, record.processed_rows = 4000, 1000
    db.commit()
    page = client.get(f"/admin/imports/{record.id}")
    assert 'hx-trigger="every 1s"' in page.text
    assert '<meta http-equiv="refresh"' in page.text
    assert 'value="25"' in page.text
    fragment = client.get(f"/admin/imports/{record.id}", headers={"HX-Request": "true"})
    assert fragment.text.lstrip().startswith('<div id="import-status"')


def test_several_e_invoices_uploaded_together_are_one_import(
    client: TestClient, db: Session
) -> None:
    from tests.einvoice_samples import DATA, cii_xml, facturx_pdf

    log_in(client, db, Role.CREDIT_MANAGER)
    response = client.post(
        "/admin/imports",
        files=[
            ("file", ("FA-2026-0042.pdf", facturx_pdf(cii_xml()), "application/pdf")),
            ("file", ("ubl.xml", (DATA / "ubl-invoice.xml").read_bytes(), "application/xml")),
        ],
    )
    assert response.status_code == 303
    record = only_import(db)
    assert (record.kind, record.filename) == ("einvoices", "einvoices-2.zip")
    assert record.status is ImportStatus.READY
    assert record.counts["new"] == 2
    page = client.get(response.headers["location"]).text
    assert "FA-2026-0042" in page
    assert "2 new rows" in page
