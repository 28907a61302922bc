"""Cases through the web: the debtor's forms and threads, the back office's queues and decisions."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from portal import clock
from portal.cases.models import Attachment, Case, CaseStatus
from portal.company.models import Company
from portal.customers.models import Customer, RiskSegment
from portal.holds.service import held_invoice_ids
from portal.invoices.models import Invoice, InvoiceStatus
from portal.settings import load_settings
from portal.timeline.models import TimelineEvent
from portal.users.models import Role, User
from portal.web.app import create_app
from tests.conftest import TEST_SECRET
from tests.factories import make_customer, make_invoice
from tests.mail_sink import Inbox, smtp_server, text_body
from tests.web.helpers import open_portal
from tests.web.test_backoffice import _cheap_hashing, log_in, make_user  # noqa: F401

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def web(
    tmp_path: Path, session_factory: sessionmaker[Session], db: Session, company: Company
) -> Iterator[tuple[TestClient, Inbox, Path]]:
    """The app with a loopback SMTP sink and attachments in a temporary folder."""
    with smtp_server() as (inbox, port):
        settings = load_settings(
            {
                "PORTAL_ENVIRONMENT": "test",
                "PORTAL_SECRET_KEYS": TEST_SECRET,
                "PORTAL_BASE_URL": "http://testserver",
                "PORTAL_DOCUMENTS_DIR": str(tmp_path / "documents"),
                "PORTAL_ATTACHMENTS_DIR": str(tmp_path / "attachments"),
                "PORTAL_ATTACHMENT_MAX_BYTES": "1000",
                "PORTAL_ATTACHMENT_MAX_COUNT": "2",
                "PORTAL_SMTP_HOST": "127.0.0.1",
                "PORTAL_SMTP_PORT": str(port),
                "PORTAL_SMTP_SECURITY": "none",
            }
        )
        db.commit()
        app = create_app(settings, session_factory=session_factory)
        app.state.login_failure_delay = 0
        # Users have no language of their own: the back office follows the browser's.
        headers = {"Sec-Fetch-Site": "same-origin", "Accept-Language": "en"}
        with TestClient(app, follow_redirects=False, headers=headers) as client:
            yield client, inbox, tmp_path / "attachments"


def _debtor(
    client: TestClient, db: Session, company: Company, **values: object
) -> tuple[Customer, Invoice, Invoice]:
    customer = make_customer(db, company, email="payer@example.com", language="en", **values)
    a = make_invoice(db, customer, amount_minor=30_000, number="A-1")
    b = make_invoice(db, customer, amount_minor=12_000, number="B-2")
    db.commit()
    settings = client.app.state.settings  # type: ignore[attr-defined]
    open_portal(client, db, settings, customer)
    return customer, a, b


def _cases(db: Session, customer: Customer) -> list[Case]:
    db.expire_all()
    return list(db.scalars(select(Case).where(Case.customer_id == customer.id).order_by(Case.id)))


def _actions(db: Session) -> list[str]:
    return list(db.scalars(select(TimelineEvent.action).order_by(TimelineEvent.id)))


# --- the portal ------------------------------------------------------------------------------


def test_home_and_invoice_pages_lead_to_the_case_forms(
    web: tuple[TestClient, Inbox, Path], db: Session, company: Company
) -> None:
    client, _inbox, _dir = web
    _customer, a, _b = _debtor(client, db, company)
    home = client.get("/")
    for path in ("/disputes/new", "/plans/new", "/promises/new", "/cases"):
        assert f'href="{path}"' in home.text
    invoice = client.get(f"/invoices/{a.id}")
    assert f'href="/disputes/new?invoice={a.id}"' in invoice.text
    form = client.get(f"/disputes/new?invoice={a.id}")
    assert form.status_code == 200
    assert re.search(rf'value="{a.id}" id="dispute-invoice-{a.id}"\s+checked', form.text)
    for path in ("/plans/new", "/promises/new", "/cases"):
        assert client.get(path).status_code == 200


def test_case_pages_need_a_portal_session(web: tuple[TestClient, Inbox, Path]) -> None:
    client, _inbox, _dir = web
    for path in ("/cases", "/disputes/new", "/plans/new", "/promises/new", "/cases/1"):
        assert client.get(path).status_code == 401
    assert client.post("/disputes", data={"reason": "other"}).status_code == 401


def test_a_dispute_with_a_document_holds_the_invoice_and_tells_the_assignee(
    web: tuple[TestClient, Inbox, Path], db: Session, company: Company
) -> None:
    client, inbox, directory = web
    manager = make_user(db, Role.CREDIT_MANAGER, email="cm@relance.example")
    customer, a, b = _debtor(client, db, company)
    response = client.post(
        "/disputes",
        data={"invoice": str(a.id), "reason": "wrong_amount", "message": "We agreed on 250."},
        files=[("attachment", ("devis signé.txt", PDF, "text/plain"))],
    )
    assert response.status_code == 303, response.text
    [case] = _cases(db, customer)
    assert response.headers["location"] == f"/cases/{case.id}"
    assert case.assignee_id == manager.id
    assert held_invoice_ids(db, [a.id, b.id], clock.now().date()) == {a.id}
    page = client.get(f"/cases/{case.id}")
    assert "We agreed on 250." in page.text
    [attachment] = db.scalars(select(Attachment)).all()
    assert attachment.filename == "devis signé.pdf"
    assert attachment.content_type == "application/pdf"
    assert (directory / attachment.storage_name).read_bytes() == PDF
    download = client.get(f"/cases/{case.id}/attachments/{attachment.id}")
    assert download.status_code == 200
    assert download.content == PDF
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["content-disposition"] == (
        "attachment; filename=\"devis sign_.pdf\"; filename*=UTF-8''devis%20sign%C3%A9.pdf"
    )
    [message] = inbox.wait_for(1)
    assert message["To"] == "cm@relance.example"
    assert f"/admin/cases/{case.id}" in text_body(message)


def _html_body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def test_a_customer_name_with_markup_is_escaped_in_html_emails_and_plain_in_text(
    web: tuple[TestClient, Inbox, Path], db: Session, company: Company
) -> None:
    client, inbox, _dir = web
    evil, escaped = "<b>Evil</b> & <script>", "&lt;b&gt;Evil&lt;/b&gt; &amp; &lt;script&gt;"
    make_user(db, Role.CREDIT_MANAGER, email="cm@relance.example")
    customer, a, _b = _debtor(client, db, company, name=evil)
    response = client.post(
        "/disputes", data={"invoice": str(a.id), "reason": "other", "message": "No."}
    )
    assert response.status_code == 303, response.text
    [staff] = inbox.wait_for(1)
    assert staff["To"] == "cm@relance.example"
    assert escaped in _html_body(staff)
    assert evil not in _html_body(staff)
    assert evil in text_body(staff)
    assert "&lt;" not in text_body(staff)
    assert evil in str(staff["Subject"])
    # The debtor's answer: the credit manager's note comes back escaped too.
    [case] = _cases(db, customer)
    log_in(client, "cm@relance.example")
    client.post(f"/admin/cases/{case.id}/resolve", data={"outcome": "reject", "note": evil})
    debtor = inbox.wait_for(2)[-1]
    assert debtor["To"] == "payer@example.com"
    assert escaped in _html_body(debtor)
    assert evil not in _html_body(debtor)
    assert evil in text_body(debtor)


def test_another_customer_sees_neither_the_case_nor_its_files(
    web: tuple[TestClient, Inbox, Path], db: Session, company: Company
) -> None:
    client, _inbox, _dir = web
    customer, a, _b = _debtor(client, db, company)
    client.post(
        "/disputes",
        data={"invoice": str(a.id), "reason": "other", "message": "m"},
        files=[("attachment", ("p.png", PNG, "image/png"))],
    )
    [case] = _cases(db, customer)
    attachment = db.scalars(select(Attachment)).one()
    other = make_customer(db, company)
    make_invoice(db, other)
    db.commit()
    open_portal(client, db, client.app.state.settings, other)  # type: ignore[attr-defined]
    assert client.get(f"/cases/{case.id}").status_code == 404
    assert client.get(f"/cases/{case.id}/attachments/{attachment.id}").status_code == 404
    assert client.post(f"/cases/{case.id}/messages", data={"message": "hi"}).status_code == 404
    # The back office without a login: to the login page, never the file.
    response = client.get(f"/admin/cases/{case.id}/attachments/{attachment.id}")
    assert response.status_code == 303


@pytest.mark.parametrize(
    ("data", "files", "error"),
    [
        ({"reason": "other", "message": "m"}, [], "Choose at least one invoice."),
        ({"reason": "", "message": "m"}, [], "Choose a reason."),
        ({"reason": "other", "message": " "}, [], "Write a message."),
        (
            {"reason": "other", "message": "m"},
            [("attachment", ("x.pdf", b"MZ\x90\x00 not a pdf", "application/pdf"))],
            "Attach PDF documents or PNG or JPEG images only.",
        ),
        (
            {"reason": "other", "message": "m"},
            [("attachment", ("x.pdf", PDF + b"x" * 1000, "application/pdf"))],
            "A file is too large (1 MB at most).",
        ),
        (
            {"reason": "other", "message": "m"},
            [("attachment", (f"{n}.png", PNG, "image/png")) for n in range(3)],
            "Attach 2 files at most.",
        ),
    ],
)
def test_a_refused_dispute_says_why_and_changes_nothing(
    web: tuple[TestClient, Inbox, Path],
    db: Session,
    company: Company,
    data: dict[str, str],
    files: list[tuple[str, tuple[str, bytes, str]]],
    error: str,
) -> None:
    client, _inbox, directory = web
    customer, a, _b = _debtor(client, db, company)
    if error != "Choose at least one invoice.":
        data = {**data, "invoice": str(a.id)}
    response = client.post("/disputes", data=data, files=files or None)
    assert response.status_code == 400
    assert error in response.text
    assert 'role="alert"' in response.text
    assert _cases(db, customer) == []
    assert not directory.exists() or not any(directory.iterdir())


def test_a_french_debtor_reads_the_size_limit_in_french_units(
    web: tuple[TestClient, Inbox, Path], db: Session, company: Company
) -> None:
    client, _inbox, _dir = web
    customer = make_customer(db, company, email="payeur@example.com", language="fr")
    invoice = make_invoice(db, customer, amount_minor=30_000, number="A-1")
    db.commit()
    open_portal(client, db, client.app.state.settings, customer)  # type: ignore[attr-defined]
    response = client.post(
        "/disputes",
        data={"reason": "other", "message": "m", "invoice": str(invoice.id)},
        files=[("attachment", ("x.pdf", PDF + b"x" * 1000, "application/pdf"))],
    )
    assert response.status_code == 400
    assert "Un fichier est trop volumineux (1 Mo au maximum)." in response.text


def test_the_plan_form_previews_the_schedule_with_and_without_htmx(
    web: tuple[TestClient, Inbox, Path], db: Session, company: Company
) -> None:
    client, _inbox, _dir = web
    customer, a, _b = _debtor(client, db, company)
    first = (clock.now().date() + dt.timedelta(days=5)).isoformat()
    data = {"invoice": str(a.id), "mode": "count", "count": "3", "first_date": first}
    page = client.post("/plans", data={**data, "action": "preview"})
    assert page.status_code == 200
    assert "<h1>" in page.text
    assert "Within our usual terms" in page.text
    assert "€100.00" in page.text
    fragment = client.post("/plans", data=data, headers={"HX-Request": "true"})
    assert "<h1>" not in fragment.text
    assert "Within our usual terms" in fragment.text
    outside = client.post("/plans", data={**data, "count": "12"}, headers={"HX-Request": "true"})
    assert "Outside our usual terms" in outside.text
    assert "More than 6 instalments." in outside.text
    bad = client.post("/plans", data={**data, "first_date": "2001-01-01", "action": "preview"})
    assert bad.status_code == 400
    assert "The first payment date cannot be in the past." in bad.text
    assert _cases(db, customer) == []


def test_a_plan_within_policy_is_accepted_at_once_and_confirmed_by_email(
    web: tuple[TestClient, Inbox, Path], db: Session, company: Company
) -> None:
    client, inbox, _dir = web
    customer, a, _b = _debtor(client, db, company)
    first = (clock.now().date() + dt.timedelta(days=5)).isoformat()
    response = client.post(
        "/plans",
        data={
            "invoice": str(a.id),
            "mode": "monthly",
            "monthly": "120",
            "first_date": first,
            "action": "propose",
        },
        headers={"User-Agent": "PlanBrowser/1.0"},
    )
    assert response.status_code == 303, response.text
    [case] = _cases(db, customer)
    assert case.status is CaseStatus.ACTIVE
    assert [i.amount_minor for i in case.instalments] == [12_000, 12_000, 6_000]
    page = client.get(f"/cases/{case.id}")
    assert "Next instalment: €120.00" in page.text
    [message] = inbox.wait_for(1)
    assert message["To"] == "payer@example.com"
    body = text_body(message)
    assert "Your payment plan is accepted" in body
    assert "€60.00" in body
    assert re.search(r"http://testserver/l/\S+", body)
    agreed = [e for e in db.scalars(select(TimelineEvent)) if e.action == "case.agreed"]
    assert agreed[0].details["user_agent"] == "PlanBrowser/1.0"


def test_a_plan_outside_policy_is_reviewed_countered_and_accepted_in_the_portal(
    web: tuple[TestClient, Inbox, Path], db: Session, company: Company
) -> None:
    client, inbox, _dir = web
    make_user(db, Role.CREDIT_MANAGER, email="cm@relance.example")
    customer, a, _b = _debtor(client, db, company, risk_segment=RiskSegment.HIGH)
    first = (clock.now().date() + dt.timedelta(days=5)).isoformat()
    response = client.post(
        "/plans",
        data={
            "invoice": str(a.id),
            "mode": "count",
            "count": "3",
            "first_date": first,
            "action": "propose",
        },
    )
    assert response.status_code == 303
    [case] = _cases(db, customer)
    assert case.status is CaseStatus.REVIEW
    messages = inbox.wait_for(2)
    assert {m["To"] for m in messages} == {"payer@example.com", "cm@relance.example"}
    page = client.get(f"/cases/{case.id}")
    assert "Our answer by" in page.text

    # The credit manager counter-proposes from the back office, in another browser.
    with TestClient(
        client.app,
        follow_redirects=False,
        headers={"Sec-Fetch-Site": "same-origin", "Accept-Language": "en"},
    ) as staff:
        log_in(staff, "cm@relance.example")
        countered = staff.post(
            f"/admin/cases/{case.id}/counter",
            data={"mode": "count", "count": "2", "first_date": first, "note": "Two months."},
        )
        assert countered.status_code == 303, countered.text
    body = text_body(inbox.wait_for(3)[-1])
    assert "other terms" in body
    assert "Two months." in body
    page = client.get(f"/cases/{case.id}")
    assert "Accept these terms" in page.text
    accepted = client.post(f"/cases/{case.id}/accept")
    assert accepted.status_code == 303
    db.expire_all()
    assert db.get(Case, case.id).status is CaseStatus.ACTIVE  # type: ignore[union-attr]
    again = client.post(f"/cases/{case.id}/accept")
    assert again.status_code == 409


def test_a_promise_pauses_reminders_until_its_date_plus_grace(
    web: tuple[TestClient, Inbox, Path], db: Session, company: Company
) -> None:
    client, inbox, _dir = web
    customer, a, b = _debtor(client, db, company)
    today = clock.today_in(customer.timezone)
    too_far = (today + dt.timedelta(days=31)).isoformat()
    refused = client.post("/promises", data={"invoice": str(b.id), "promised_date": too_far})
    assert refused.status_code == 400
    assert "at most 30 days" in refused.text
    assert (
        client.post("/promises", data={"invoice": str(b.id), "promised_date": "soon"}).status_code
        == 400
    )
    date = today + dt.timedelta(days=10)
    response = client.post(
        "/promises", data={"invoice": str(b.id), "promised_date": date.isoformat()}
    )
    assert response.status_code == 303
    [case] = _cases(db, customer)
    assert case.promised_date == date
    assert held_invoice_ids(db, [a.id, b.id], date + dt.timedelta(days=3)) == {b.id}
    assert held_invoice_ids(db, [b.id], date + dt.timedelta(days=4)) == set()
    assert "noted your promise" in text_body(inbox.wait_for(1)[0])


def test_the_debtor_replies_in_the_thread(
    web: tuple[TestClient, Inbox, Path], db: Session, company: Company
) -> None:
    client, _inbox, _dir = web
    customer, a, _b = _debtor(client, db, company)
    client.post("/disputes", data={"invoice": str(a.id), "reason": "other", "message": "first"})
    [case] = _cases(db, customer)
    empty = client.post(f"/cases/{case.id}/messages", data={"message": "  "})
    assert empty.status_code == 400
    assert "Write a message." in empty.text
    response = client.post(f"/cases/{case.id}/messages", data={"message": "second"})
    assert response.status_code == 303
    assert "second" in client.get(f"/cases/{case.id}").text


# --- the back office -------------------------------------------------------------------------


def _dispute(db: Session, company: Company, manager: User | None = None) -> tuple[Case, Invoice]:
    from portal.cases import service

    customer = make_customer(db, company, email="payer@example.com", language="en")
    invoice = make_invoice(db, customer, amount_minor=10_000, number=f"D-{customer.id}")
    case = service.open_dispute(db, customer, None, [invoice.id], reason="other", message="Broken.")
    db.commit()
    return case, invoice


def test_queues_list_oldest_first_and_the_home_page_counts_them(
    web: tuple[TestClient, Inbox, Path], db: Session, company: Company
) -> None:
    client, _inbox, _dir = web
    make_user(db, Role.VIEWER, email="viewer@relance.example")
    first, _ = _dispute(db, company)
    second, _ = _dispute(db, company)
    log_in(client, "viewer@relance.example")
    home = client.get("/admin")
    assert re.search(r'href="/admin/queues/disputes">[^<]+</a>: <strong>2</strong>', home.text)
    for name in ("disputes", "plans", "transfers", "broken"):
        assert client.get(f"/admin/queues/{name}").status_code == 200
    page = client.get("/admin/queues/disputes").text
    assert page.index(f"/admin/cases/{first.id}") < page.index(f"/admin/cases/{second.id}")
    assert client.get("/admin/queues/nothing").status_code == 404


def test_resolving_a_dispute_by_rejecting_it_tells_the_debtor_why(
    web: tuple[TestClient, Inbox, Path], db: Session, company: Company
) -> None:
    client, inbox, _dir = web
    make_user(db, Role.CREDIT_MANAGER, email="cm@relance.example")
    case, invoice = _dispute(db, company)
    log_in(client, "cm@relance.example")
    refused = client.post(f"/admin/cases/{case.id}/resolve", data={"outcome": "reject", "note": ""})
    assert refused.status_code == 400
    assert "Write a message." in refused.text
    response = client.post(
        f"/admin/cases/{case.id}/resolve", data={"outcome": "reject", "note": "Delivered 3 May."}
    )
    assert response.status_code == 303
    db.expire_all()
    assert db.get(Case, case.id).status is CaseStatus.REJECTED  # type: ignore[union-attr]
    assert held_invoice_ids(db, [invoice.id], clock.now().date()) == set()
    body = text_body(inbox.wait_for(1)[-1])
    assert "cannot accept it" in body
    assert "Delivered 3 May." in body
    assert re.search(r"http://testserver/l/\S+", body)


@pytest.mark.parametrize(
    ("data", "status", "amount"),
    [
        ({"outcome": "cancel"}, InvoiceStatus.CANCELLED, 10_000),
        ({"outcome": "credit", "amount": "25.00"}, InvoiceStatus.OPEN, 7_500),
        ({"outcome": "adjust", "amount": "80"}, InvoiceStatus.OPEN, 8_000),
    ],
)
def test_resolving_a_dispute_corrects_the_invoice(
    web: tuple[TestClient, Inbox, Path],
    db: Session,
    company: Company,
    data: dict[str, str],
    status: InvoiceStatus,
    amount: int,
) -> None:
    client, _inbox, _dir = web
    make_user(db, Role.CREDIT_MANAGER, email="cm@relance.example")
    case, invoice = _dispute(db, company)
    log_in(client, "cm@relance.example")
    response = client.post(
        f"/admin/cases/{case.id}/resolve", data={**data, "invoice": str(invoice.id)}
    )
    assert response.status_code == 303, response.text
    db.expire_all()
    fresh = db.get(Invoice, invoice.id)
    assert fresh is not None
    assert (fresh.status, fresh.amount_minor) == (status, amount)


def test_a_bad_amount_is_refused_and_changes_nothing(
    web: tuple[TestClient, Inbox, Path], db: Session, company: Company
) -> None:
    client, _inbox, _dir = web
    make_user(db, Role.CREDIT_MANAGER, email="cm@relance.example")
    case, invoice = _dispute(db, company)
    log_in(client, "cm@relance.example")
    for amount in ("lots", "150", "0"):
        response = client.post(
            f"/admin/cases/{case.id}/resolve",
            data={"outcome": "credit", "invoice": str(invoice.id), "amount": amount},
        )
        assert response.status_code == 400
        assert 'aria-invalid="true"' in response.text
    db.expire_all()
    assert db.get(Invoice, invoice.id).amount_minor == 10_000  # type: ignore[union-attr]


def test_a_reply_emails_the_debtor_a_fresh_link(
    web: tuple[TestClient, Inbox, Path], db: Session, company: Company
) -> None:
    client, inbox, _dir = web
    make_user(db, Role.CREDIT_MANAGER, email="cm@relance.example")
    case, _invoice = _dispute(db, company)
    log_in(client, "cm@relance.example")
    response = client.post(
        f"/admin/cases/{case.id}/reply", data={"note": "Could you send a photo?"}
    )
    assert response.status_code == 303
    body = text_body(inbox.wait_for(1)[-1])
    assert "Could you send a photo?" in body
    link = re.search(r"http://testserver(/l/\S+)", body)
    assert link is not None
    # The fresh link opens the debtor's account, where the reply is in the thread.
    with TestClient(client.app, follow_redirects=False) as debtor:
        assert debtor.get(link.group(1)).status_code == 303
        assert "Could you send a photo?" in debtor.get(f"/cases/{case.id}").text


DECISIONS = [
    ("accept", {}),
    ("reject", {"note": "no"}),
    ("counter", {"mode": "count", "count": "2", "first_date": "2030-01-01"}),
    ("resolve", {"outcome": "reject", "note": "no"}),
    ("reply", {"note": "hello"}),
    ("close", {"note": "done"}),
]


@pytest.mark.parametrize(("action", "data"), DECISIONS)
def test_a_viewer_cannot_decide(
    web: tuple[TestClient, Inbox, Path],
    db: Session,
    company: Company,
    action: str,
    data: dict[str, str],
) -> None:
    client, inbox, _dir = web
    make_user(db, Role.VIEWER, email="viewer@relance.example")
    case, _invoice = _dispute(db, company)
    log_in(client, "viewer@relance.example")
    assert "Resolve the dispute" not in client.get(f"/admin/cases/{case.id}").text
    events = len(_actions(db))
    response = client.post(f"/admin/cases/{case.id}/{action}", data=data)
    assert response.status_code == 403
    assert len(_actions(db)) == events
    db.expire_all()
    assert db.get(Case, case.id).status is CaseStatus.OPEN  # type: ignore[union-attr]
    assert inbox.messages == []


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("desk/pause", {"until": "2030-01-01"}),
        ("desk/resume", {}),
        ("desk/note", {"note": "n"}),
        ("desk/pause-invoice", {"until": "2030-01-01"}),
    ],
)
def test_a_viewer_cannot_pause_or_write_notes(
    web: tuple[TestClient, Inbox, Path],
    db: Session,
    company: Company,
    path: str,
    data: dict[str, str],
) -> None:
    client, _inbox, _dir = web
    make_user(db, Role.VIEWER, email="viewer@relance.example")
    case, _invoice = _dispute(db, company)
    log_in(client, "viewer@relance.example")
    response = client.post(f"/admin/customers/{case.customer_id}/{path}", data=data)
    assert response.status_code == 403


def test_pausing_and_resuming_reminders_and_notes(
    web: tuple[TestClient, Inbox, Path], db: Session, company: Company
) -> None:
    client, _inbox, _dir = web
    make_user(db, Role.CREDIT_MANAGER, email="cm@relance.example")
    customer = make_customer(db, company)
    invoice = make_invoice(db, customer, number="P-1")
    db.commit()
    log_in(client, "cm@relance.example")
    today = clock.today_in(customer.timezone)
    until = (today + dt.timedelta(days=14)).isoformat()
    base = f"/admin/customers/{customer.id}/desk"
    assert client.post(f"{base}/pause", data={"until": until}).status_code == 303
    assert (
        client.post(
            f"{base}/pause-invoice", data={"invoice": str(invoice.id), "until": until}
        ).status_code
        == 303
    )
    db.expire_all()
    assert db.get(Customer, customer.id).reminders_paused_until.isoformat() == until  # type: ignore[union-attr]
    assert held_invoice_ids(db, [invoice.id], today) == {invoice.id}
    page = client.get(f"/admin/customers/{customer.id}")
    assert "Reminders paused" in page.text
    past = client.post(f"{base}/pause", data={"until": "2001-01-01"})
    assert past.status_code == 400
    assert "Choose a date between today" in past.text
    assert (
        client.post(f"{base}/resume-invoice", data={"invoice": str(invoice.id)}).status_code == 303
    )
    assert client.post(f"{base}/resume").status_code == 303
    db.expire_all()
    assert held_invoice_ids(db, [invoice.id], today) == set()
    assert db.get(Customer, customer.id).reminders_paused_until is None  # type: ignore[union-attr]
    assert client.post(f"{base}/note", data={"note": " "}).status_code == 400
    assert client.post(f"{base}/note", data={"note": "Called the accountant."}).status_code == 303
    page = client.get(f"/admin/customers/{customer.id}").text
    assert "Note: Called the accountant." in page
    assert "Reminders resumed" in page


def test_only_admins_manage_users(
    web: tuple[TestClient, Inbox, Path], db: Session, company: Company
) -> None:
    client, _inbox, _dir = web
    manager = make_user(db, Role.CREDIT_MANAGER, email="cm@relance.example")
    log_in(client, "cm@relance.example")
    assert client.get("/admin/users").status_code == 403
    data = {"email": "new@relance.example", "role": "admin", "password": "x" * 20}
    assert client.post("/admin/users", data=data).status_code == 403
    assert (
        client.post(f"/admin/users/{manager.id}", data={"role": "admin", "active": "1"}).status_code
        == 403
    )
    db.expire_all()
    assert db.get(User, manager.id).role is Role.CREDIT_MANAGER  # type: ignore[union-attr]
    assert db.scalar(select(User).where(User.email == "new@relance.example")) is None


def test_an_admin_adds_changes_and_deactivates_users(
    web: tuple[TestClient, Inbox, Path], db: Session, company: Company
) -> None:
    client, _inbox, _dir = web
    admin = make_user(db, Role.ADMIN, email="admin@relance.example")
    log_in(client, "admin@relance.example")
    assert client.get("/admin/users").status_code == 200
    short = client.post(
        "/admin/users", data={"email": "n@relance.example", "role": "viewer", "password": "short"}
    )
    assert short.status_code == 400
    assert "at least 12 characters" in short.text
    bad_role = client.post(
        "/admin/users", data={"email": "n@relance.example", "role": "boss", "password": "x" * 20}
    )
    assert bad_role.status_code == 400
    created = client.post(
        "/admin/users", data={"email": "N@relance.example", "role": "viewer", "password": "x" * 20}
    )
    assert created.status_code == 303
    user = db.scalar(select(User).where(User.email == "n@relance.example"))
    assert user is not None
    taken = client.post(
        "/admin/users", data={"email": "n@relance.example", "role": "viewer", "password": "x" * 20}
    )
    assert taken.status_code == 400
    assert (
        client.post(
            f"/admin/users/{user.id}", data={"role": "credit_manager", "active": "1"}
        ).status_code
        == 303
    )
    assert (
        client.post(f"/admin/users/{user.id}", data={"role": "credit_manager"}).status_code == 303
    )
    db.expire_all()
    user = db.get(User, user.id)
    assert user is not None
    assert (user.role, user.is_active) == (Role.CREDIT_MANAGER, False)
    myself = client.post(f"/admin/users/{admin.id}", data={"role": "viewer", "active": "1"})
    assert myself.status_code == 400
    assert "You cannot change your own role" in myself.text


def test_the_second_factor_is_set_up_then_required_at_login(
    web: tuple[TestClient, Inbox, Path], db: Session, company: Company
) -> None:
    client, _inbox, _dir = web
    user = make_user(db, Role.CREDIT_MANAGER, email="cm@relance.example")
    log_in(client, "cm@relance.example")
    page = client.get("/admin/account")
    secret = re.search(r'id="totp-secret" name="secret" value="([A-Z2-7]+)"', page.text)
    assert secret is not None
    assert "<svg" in page.text
    wrong = client.post(
        "/admin/account/totp/enable", data={"secret": secret.group(1), "code": "000000"}
    )
    assert wrong.status_code == 400
    assert secret.group(1) in wrong.text  # the same key again, never in a URL
    code = pyotp.TOTP(secret.group(1)).at(clock.now())
    assert (
        client.post(
            "/admin/account/totp/enable", data={"secret": secret.group(1), "code": code}
        ).status_code
        == 303
    )
    db.expire_all()
    assert db.get(User, user.id).totp_secret == secret.group(1)  # type: ignore[union-attr]
    client.post("/admin/logout")
    refused = client.post(
        "/admin/login",
        data={"email": "cm@relance.example", "password": "correct horse battery staple"},
    )
    assert refused.status_code == 400
    # Each code is good once: the next login takes the next 30-second code.
    clock.freeze(clock.now() + dt.timedelta(seconds=30))
    log_in(client, "cm@relance.example", code=pyotp.TOTP(secret.group(1)).at(clock.now()))
    off = client.post("/admin/account/totp/disable", data={"code": "123"})
    assert off.headers["location"].endswith("totp-disable-failed")
    clock.freeze(clock.now() + dt.timedelta(seconds=30))
    code = pyotp.TOTP(secret.group(1)).at(clock.now())
    assert (
        client.post("/admin/account/totp/disable", data={"code": code})
        .headers["location"]
        .endswith("totp-disabled")
    )


def test_a_debtor_session_never_opens_the_back_office(
    web: tuple[TestClient, Inbox, Path], db: Session, company: Company
) -> None:
    client, _inbox, _dir = web
    _debtor(client, db, company)
    for path in ("/admin/queues/disputes", "/admin/users", "/admin/cases/1"):
        response = client.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/admin/login")
