"""Every page is valid HTML, as the W3C Nu checker (npm package vnu-jar, run with Java)
reads it: the portal, the back office, error pages and the widget's pages, in one batch.
The card page renders with a real PaymentIntent (localstripe on loopback), the
development outbox is switched on, imports are uploaded in each of their states, and the
500 page comes from a handler that really crashes.

htmx attributes are written ``data-hx-*``, which HTML allows and htmx reads: a bare
``hx-*`` attribute fails here even where the checker would not look.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import httpx2 as httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from portal import clock
from portal.cases import service as cases
from portal.company.models import Company
from portal.imports.models import Import, ImportStatus
from portal.payments.requests import prepare_transfer
from portal.reminders.models import ReminderMessage
from portal.settings import PROJECT_ROOT, Settings, StripeSettings
from portal.users.models import Role
from portal.web import login as login_pages
from portal.webhooks.endpoints import create_endpoint
from tests.factories import make_customer, make_invoice, make_sent_reminder
from tests.stripe_server import TEST_API_KEY, LocalStripe, localstripe_server
from tests.web.embed_helpers import log_in, make_staff
from tests.web.helpers import open_portal

VNU_JAR = PROJECT_ROOT / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"
# Pages whose answer is a refusal, checked as such; every other page must answer 200.
REFUSED_PAGES = {
    "error-404": 404,
    "admin-404": 404,
    "link-refused": 400,
    "admin-reset": 400,
    "admin-unlock": 400,
    "embed": 403,
    "error-413": 413,
    "error-500": 500,
}
BARE_HTMX = re.compile(r"<[a-z][^>]*\shx-[a-z-]+=", re.IGNORECASE)
INVOICES_EXPORT = (
    "Code client;Raison sociale;N° facture;Date facture;Date d'échéance;Montant TTC\r\n"
    "C-1;Café Éole;F-1;01/11/2026;01/12/2026;1 234,56\r\n"
    "C-2;Dupont;F-2;01/11/2026;01/10/2026;10,00\r\n"
).encode("cp1252")
UNMAPPED_EXPORT = (
    b"Ref;Client;Nom;Emise le;Payable le;Somme\nF-9;C-9;Dupont;01/11/2026;01/12/2026;10\n"
)


@pytest.fixture(scope="module")
def localstripe() -> Iterator[LocalStripe]:
    with localstripe_server() as server:
        yield server


@pytest.fixture
def settings(settings: Settings, localstripe: LocalStripe) -> Settings:
    """Card payments through localstripe, and the development outbox viewer on."""
    stripe = StripeSettings(
        secret_key=TEST_API_KEY,
        publishable_key="pk_test_12345",
        webhook_secret="whsec_valid_html",
        api_base=localstripe.api_base,
        js_url=f"{localstripe.api_base}/js.stripe.com/v3/",
        automatic_payment_methods=False,
    )
    return dataclasses.replace(settings, stripe=stripe, dev_outbox=True)


def _checker() -> list[str]:
    java = shutil.which("java")
    if java is None or not VNU_JAR.is_file():
        if os.environ.get("CI"):
            pytest.fail("CI needs Java and node_modules/vnu-jar (.ci/run installs them)")
        pytest.skip("Java or vnu-jar is not installed (npm ci; apt-get install default-jre)")
    return [java, "-Xss2m", "-jar", str(VNU_JAR)]


def _portal_pages(
    client: TestClient, db: Session, settings: Settings, company: Company
) -> dict[str, Any]:
    today = clock.now().date()
    customer = make_customer(db, company, email="anne@example.com", language="fr", country="FR")
    overdue = make_invoice(db, customer, amount_minor=54_960, due_in_days=-32, number="V-1")
    disputed = make_invoice(db, customer, amount_minor=64_000, due_in_days=-9, number="V-2")
    planned = make_invoice(db, customer, amount_minor=120_000, due_in_days=-3, number="V-3")
    upcoming = make_invoice(db, customer, amount_minor=8_730, due_in_days=21, number="V-4")
    dispute = cases.open_dispute(
        db, customer, None, [disputed.id], reason="other", message="Le prix était de 500 €."
    )
    plan = cases.propose_plan(
        db,
        customer,
        None,
        [planned.id],
        first_date=today + dt.timedelta(days=7),
        today=today,
        policy=settings.cases,
        company_currency="EUR",
        agreement=cases.AgreementInfo("127.0.0.1", "test"),
        count=3,
    )
    transfer = prepare_transfer(db, customer, None, [overdue.id])
    db.commit()
    open_portal(client, db, settings, customer)
    # The card page as the choice form leads to it: a PaymentIntent created in localstripe.
    card = client.post("/pay/card", data={"invoice": [str(upcoming.id)]})
    assert card.status_code == 303, card.text
    paths = {
        "portal-home": "/",
        "portal-paid": "/paid",
        "portal-invoice": f"/invoices/{overdue.id}",
        "portal-cases": "/cases",
        "portal-dispute": f"/cases/{dispute.id}",
        "portal-plan": f"/cases/{plan.id}",
        "portal-new-dispute": "/disputes/new",
        "portal-new-plan": "/plans/new",
        "portal-new-promise": "/promises/new",
        "portal-transfer": f"/pay/transfer/{transfer.id}",
        "portal-card": card.headers["location"],
        "error-404": "/no-such-page",
    }
    pages = {name: client.get(path) for name, path in paths.items()}
    assert 'id="payment-element"' in pages["portal-card"].text, "no PaymentIntent"
    client.post("/logout")
    client.cookies.clear()
    pages["portal-logged-out"] = client.get("/logged-out")
    pages["link-refused"] = client.get("/l/not-a-token")
    pages["embed"] = client.get("/embed")
    return {"customer": customer, "invoice": overdue, "cases": (dispute, plan), "pages": pages}


def _back_office_pages(
    client: TestClient, db: Session, seeded: dict[str, Any]
) -> dict[str, httpx.Response]:
    customer, invoice = seeded["customer"], seeded["invoice"]
    dispute, plan = seeded["cases"]
    pages = {
        "admin-login": client.get("/admin/login"),
        "admin-forgot": client.get("/admin/password/forgot"),
        "admin-reset": client.get("/admin/password/reset?token=bad"),
        "admin-unlock": client.get("/admin/unlock?token=bad"),
    }
    admin = make_staff(db, Role.ADMIN)
    log_in(client, admin)
    contact = customer.contacts[0]
    hook = create_endpoint(
        db,
        customer.company_id,
        url="http://127.0.0.1:9/hooks",
        events=["invoice.paid"],
        description="ERP",
        user_id=admin.id,
        allowed=("127.0.0.0/8",),  # no name resolution here: a loopback receiver
    )
    db.commit()
    paths = {
        "admin-dashboard": "/admin",
        "admin-customers": "/admin/customers",
        "admin-account": "/admin/account",
        "admin-customer": f"/admin/customers/{customer.id}",
        "admin-customer-new": "/admin/customers/new",
        "admin-customer-edit": f"/admin/customers/{customer.id}/edit",
        "admin-contact-new": f"/admin/customers/{customer.id}/contacts/new",
        "admin-contact-edit": f"/admin/customers/{customer.id}/contacts/{contact.id}/edit",
        "admin-invoice-new": f"/admin/customers/{customer.id}/invoices/new",
        "admin-invoice-edit": f"/admin/invoices/{invoice.id}/edit",
        "admin-credit-note-new": f"/admin/customers/{customer.id}/credit-notes/new",
        "admin-payment-new": f"/admin/customers/{customer.id}/payments/new",
        "admin-embed": "/admin/embed",
        "admin-branding": "/admin/branding",
        "admin-transfers": "/admin/transfers",
        "admin-bank": "/admin/bank",
        "admin-bank-lines": "/admin/bank/lines",
        "admin-tasks": "/admin/tasks",
        "admin-queue-disputes": "/admin/queues/disputes",
        "admin-queue-plans": "/admin/queues/plans",
        "admin-queue-transfers": "/admin/queues/transfers",
        "admin-queue-broken": "/admin/queues/broken",
        "admin-dispute": f"/admin/cases/{dispute.id}",
        "admin-plan": f"/admin/cases/{plan.id}",
        "admin-users": "/admin/users",
        "admin-imports": "/admin/imports",
        "admin-api-keys": "/admin/api-keys",
        "admin-webhooks": "/admin/webhooks",
        "admin-webhook": f"/admin/webhooks/{hook.id}",
        "admin-scenarios": "/admin/scenarios",
        "admin-scenario": "/admin/scenarios/standard",
        "admin-scenarios-history": "/admin/scenarios/history",
        "admin-messages": "/admin/messages",
        "admin-message": "/admin/messages/email/reminder_overdue/fr",
        "admin-message-sms": "/admin/messages/sms/reminder_overdue/en",
        "admin-reminder-policy": "/admin/reminders/policy",
        "admin-outbox": "/admin/outbox",
        "admin-remind": f"/admin/customers/{customer.id}/remind",
        "admin-call": f"/admin/customers/{customer.id}/call",
        "admin-404": "/admin/customers/999999",
        "api-docs": "/api/v1/docs",
    }
    pages.update({name: client.get(path) for name, path in paths.items()})
    # A body over the form limit: the translated 413 page, before the body is read.
    pages["error-413"] = client.post(
        "/fresh-link",
        content=b"x" * (1024 * 1024),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    return pages


def _upload(client: TestClient, db: Session, data: bytes, name: str) -> Import:
    answer = client.post("/admin/imports", files={"file": (name, data, "text/csv")})
    assert answer.status_code == 303, answer.text
    db.expire_all()
    found = db.scalars(select(Import).order_by(Import.id.desc())).first()
    assert found is not None
    return found


def _outbox_and_import_pages(
    client: TestClient, db: Session, seeded: dict[str, Any]
) -> dict[str, httpx.Response]:
    """The development outbox and an import in each state (the back office still logged in)."""
    customer, invoice = seeded["customer"], seeded["invoice"]
    make_sent_reminder(db, customer, clock.now(), [invoice])
    message = db.scalars(select(ReminderMessage).order_by(ReminderMessage.id.desc())).first()
    assert message is not None
    message.recipient = "anne@example.com"
    message.subject = "Facture V-1 : un rappel"
    message.body_text = "Bonjour,\n<V-1> reste à payer : http://testserver/l/abc.def\n"
    db.commit()
    states = {}
    preview = _upload(client, db, INVOICES_EXPORT, "export.csv")
    states["admin-import-preview"] = (preview, ImportStatus.READY)
    states["admin-import-mapping"] = (
        _upload(client, db, UNMAPPED_EXPORT, "columns.csv"),
        ImportStatus.NEEDS_MAPPING,
    )
    states["admin-import-failed"] = (
        _upload(client, db, b"\x00\x01binary\x00" * 50, "photo.csv"),
        ImportStatus.FAILED,
    )
    running = _upload(client, db, INVOICES_EXPORT, "running.csv")
    running.status = ImportStatus.APPLYING
    running.total_rows, running.processed_rows = 4000, 1000
    db.commit()
    states["admin-import-running"] = (running, ImportStatus.APPLYING)
    done = _upload(client, db, INVOICES_EXPORT.replace(b"F-1;", b"F-7;"), "done.csv")
    assert client.post(f"/admin/imports/{done.id}/confirm").status_code == 303
    states["admin-import-done"] = (done, ImportStatus.DONE)
    db.expire_all()
    pages = {}
    for name, (record, status) in states.items():
        db.refresh(record)
        assert record.status is status, (name, record.status)
        pages[name] = client.get(f"/admin/imports/{record.id}")
    # The mapping form sent back incomplete: the same page with its errors.
    mapping = states["admin-import-mapping"][0]
    pages["admin-import-mapping-errors"] = client.post(
        f"/admin/imports/{mapping.id}/mapping", data={"kind": "invoices", "column-0": "number"}
    )
    assert "Choisissez une colonne pour" in pages["admin-import-mapping-errors"].text
    pages["dev-outbox"] = client.get("/dev/outbox")
    pages["dev-outbox-message"] = client.get(f"/dev/outbox/{message.id}")
    return pages


def _server_error_page(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> httpx.Response:
    """A page whose handler crashes: the translated 500 page, never a trace."""

    def broken(*_args: object, **_kwargs: object) -> NoReturn:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(login_pages, "_login_page", broken)
    crashing = TestClient(
        client.app,
        base_url="http://testserver",
        raise_server_exceptions=False,
        headers={"Accept-Language": "fr"},
    )
    page = crashing.get("/admin/login")
    assert "Une erreur est survenue" in page.text
    assert "database" not in page.text
    return page


def test_every_page_is_valid_html(
    client: TestClient,
    db: Session,
    settings: Settings,
    company: Company,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    command = _checker()
    seeded = _portal_pages(client, db, settings, company)
    pages = {
        **seeded["pages"],
        **_back_office_pages(client, db, seeded),
        **_outbox_and_import_pages(client, db, seeded),
        "error-500": _server_error_page(client, monkeypatch),
    }
    folder = tmp_path / "pages"
    folder.mkdir()
    bare_htmx = []
    for name, response in pages.items():
        expected = REFUSED_PAGES.get(name, 200)
        assert response.status_code == expected, (name, response.status_code)
        assert "text/html" in response.headers["content-type"], name
        (folder / f"{name}.html").write_text(response.text, encoding="utf-8")
        if BARE_HTMX.search(response.text):
            bare_htmx.append(name)
    result = subprocess.run(
        [*command, "--errors-only", "--format", "json", "--exit-zero-always", str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    messages = json.loads(result.stderr or result.stdout)["messages"]
    errors = [
        f"{Path(m.get('url', '')).name}:{m.get('lastLine')}: {m['message']}"
        for m in messages
        if m.get("type") == "error"
    ]
    assert not errors, f"{len(errors)} errors:\n" + "\n".join(errors[:80])
    assert not bare_htmx, f"hx-* attributes (write data-hx-*) on {bare_htmx}"
