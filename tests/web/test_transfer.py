"""Paying by bank transfer from the portal: choose, see the details, declare."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient
from stdnum import iso11649

from portal import clock
from portal.company.models import Company
from portal.payments.models import PaymentRequest, PaymentRequestStatus
from portal.payments.requests import pending_invoice_ids
from portal.settings import Settings
from portal.timeline.models import TimelineEvent
from portal.web.app import create_app
from tests.factories import make_customer, make_invoice
from tests.web.helpers import open_portal


def _requests(db: Session) -> list[PaymentRequest]:
    return list(db.scalars(select(PaymentRequest).order_by(PaymentRequest.id)))


def _field(page: str, field_id: str) -> str:
    match = re.search(rf'id="{field_id}"[^>]*? value="([^"]*)"', page)
    assert match, field_id
    return match.group(1)


def _detail(page: str, detail_id: str) -> tuple[str, str]:
    """A transfer detail as shown (text) and as its copy button copies it."""
    match = re.search(rf'id="{detail_id}" data-copy-value="([^"]*)">([^<]*)<', page)
    assert match, detail_id
    return match.group(2), match.group(1)


def _start(client: TestClient, *invoice_ids: int) -> str:
    response = client.post("/pay/transfer", data={"invoice": [str(i) for i in invoice_ids]})
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert re.fullmatch(r"/pay/transfer/\d+", location)
    return location


def test_home_offers_the_open_invoices_all_checked(
    client: TestClient, db: Session, settings: Settings, company: Company
) -> None:
    customer = make_customer(db, company, language="en")
    a = make_invoice(db, customer, number="T-A", amount_minor=12_000, paid_minor=2_000)
    b = make_invoice(db, customer, number="T-B", amount_minor=5_000)
    open_portal(client, db, settings, customer)
    page = client.get("/").text
    # The buttons say what they pay: everything ticked, what remains on both.
    assert "Pay €150.00 by bank transfer" in page
    for invoice in (a, b):
        assert f'value="{invoice.id}" id="pay-invoice-{invoice.id}" checked' in page
    assert "Pay invoice T-A" in page


def test_choose_then_see_the_transfer_details(
    client: TestClient, db: Session, settings: Settings, company: Company
) -> None:
    customer = make_customer(db, company, language="en")
    a = make_invoice(db, customer, number="T-1", amount_minor=12_345)
    b = make_invoice(db, customer, number="T-2", amount_minor=10_000, paid_minor=1_000)
    open_portal(client, db, settings, customer)
    location = _start(client, a.id, b.id)
    (request,) = _requests(db)
    assert location == f"/pay/transfer/{request.id}"
    assert request.amount_minor == 21_345
    page = client.get(location)
    assert page.status_code == 200
    text = page.text
    for expected in ("T-1", "T-2", "€123.45", "€90.00", "€213.45"):
        assert expected in text
    # Shown in full as text (never cut in a read-only field), grouped by four for reading;
    # copied without the spaces.
    assert _detail(text, "transfer-iban") == (
        "FR76 3000 6000 0112 3456 7890 189",
        "FR7630006000011234567890189",
    )
    assert _detail(text, "transfer-bic") == ("AGRIFRPPXXX", "AGRIFRPPXXX")
    assert _detail(text, "transfer-amount") == ("213.45", "213.45")
    reference, copied = _detail(text, "transfer-reference")
    assert re.fullmatch(r"RF\d\d( \w{4})*( \w{1,4})", reference)
    assert copied == reference.replace(" ", "")
    assert iso11649.is_valid(copied)
    assert "readonly" not in text
    assert f'<img src="/pay/transfer/{request.id}/qr.svg"' in text
    assert "<script>" not in text  # no inline script; copy.js is optional
    # A refresh or double click gives the same request.
    assert _start(client, b.id, a.id) == location
    assert len(_requests(db)) == 1


def test_qr_code_is_svg_and_only_for_its_customer(
    client: TestClient, db: Session, settings: Settings, company: Company
) -> None:
    mine = make_customer(db, company)
    theirs = make_customer(db, company)
    their_invoice = make_invoice(db, theirs)
    my_invoice = make_invoice(db, mine)
    open_portal(client, db, settings, theirs)
    their_location = _start(client, their_invoice.id)
    client.cookies.clear()
    assert client.get(f"{their_location}/qr.svg").status_code == 404  # no session
    open_portal(client, db, settings, mine)
    assert client.get(their_location).status_code == 404
    assert client.get(f"{their_location}/qr.svg").status_code == 404
    today = clock.today_in(mine.timezone).isoformat()
    response = client.post(f"{their_location}/declare", data={"paid_on": today, "amount": "1"})
    assert response.status_code == 404
    (theirs_request,) = _requests(db)
    assert theirs_request.status is PaymentRequestStatus.OPEN
    qr = client.get(f"{_start(client, my_invoice.id)}/qr.svg")
    assert qr.status_code == 200
    assert qr.headers["content-type"].startswith("image/svg+xml")
    assert qr.text.lstrip().startswith("<?xml")
    assert "<svg" in qr.text
    assert "<script" not in qr.text


def test_bad_selections_show_an_error_and_create_nothing(
    client: TestClient, db: Session, settings: Settings, company: Company
) -> None:
    customer = make_customer(db, company, language="en")
    other = make_customer(db, company)
    mine = make_invoice(db, customer)
    euro = make_invoice(db, customer)
    dollars = make_invoice(db, customer, currency="USD")
    foreign = make_invoice(db, other)
    open_portal(client, db, settings, customer)
    cases = [
        ([], "Choose at least one invoice to pay."),
        ([str(mine.id), str(foreign.id)], "cannot be paid here"),
        ([str(euro.id), str(dollars.id)], "different currencies"),
        (["not-a-number"], "cannot be paid here"),
        (["999999999"], "cannot be paid here"),
    ]
    for selection, message in cases:
        response = client.post("/pay/transfer", data={"invoice": selection})
        assert response.status_code == 400, selection
        assert message in response.text
        assert 'role="alert"' in response.text
    assert _requests(db) == []
    assert not db.scalars(
        select(TimelineEvent).where(TimelineEvent.action == "payment_request.created")
    ).all()


def test_declare_then_pending_everywhere(
    client: TestClient, db: Session, settings: Settings, company: Company
) -> None:
    customer = make_customer(db, company, language="en")
    paid = make_invoice(db, customer, number="P-1", amount_minor=30_000, due_in_days=-32)
    other = make_invoice(db, customer, number="P-2")
    open_portal(client, db, settings, customer)
    location = _start(client, paid.id)
    page = client.get(location).text
    today = clock.today_in(customer.timezone)
    assert _field(page, "declare-paid-on") == today.isoformat()
    assert _field(page, "declare-amount") == "300.00"
    response = client.post(
        f"{location}/declare", data={"paid_on": today.isoformat(), "amount": "300,00"}
    )
    assert response.status_code == 303
    assert response.headers["location"] == location
    page = client.get(location).text
    assert "Declaration received: we will confirm when the money arrives." in page
    # The page changes with the declaration: what was declared, what happens next, until
    # when; nothing reads as settled before the money arrives; no form to declare again.
    assert '<h2 id="declared-title">Transfer declared</h2>' in page
    assert "What happens next" in page
    assert "we send you no reminder about these invoices" in page
    assert "Settled once received" in page
    assert ">Settled<" not in page
    assert 'action="/pay/transfer/' not in page.split("declared-title")[1]
    (request,) = _requests(db)
    db.refresh(request)
    assert request.status is PaymentRequestStatus.DECLARED
    assert request.declared_amount_minor == 30_000
    assert request.grace_until == today + dt.timedelta(days=settings.transfer_grace_days)
    assert pending_invoice_ids(db, customer.id, today) == {paid.id}
    event = db.scalars(
        select(TimelineEvent).where(TimelineEvent.action == "transfer.declared")
    ).one()
    assert event.details["invoices"] == ["P-1"]
    assert event.details["amount_minor"] == 30_000
    home = client.get("/").text
    table = home.split('id="invoice-table"')[1].split('id="help-title"')[0]
    row_paid = table.split(f'id="pay-invoice-{paid.id}"')[0].rsplit("<tr", 1)[1]
    row_paid += table.split(f'id="pay-invoice-{paid.id}"')[1].split("</tr>")[0]
    row_other = table.split("P-2")[1].split("</tr>")[0]
    assert "Payment pending" in row_paid
    assert "Payment pending" not in row_other
    # Not ticked again for payment, and never a red "days late" while the money travels.
    assert f'id="pay-invoice-{paid.id}" checked' not in table
    assert f'id="pay-invoice-{other.id}" checked' in table
    assert "badge overdue" not in row_paid
    assert "Payment pending" in client.get(f"/invoices/{paid.id}").text
    assert "Payment pending" not in client.get(f"/invoices/{other.id}").text
    # After the grace period the invoice is no longer pending.
    clock.freeze(dt.datetime.now(dt.UTC) + dt.timedelta(days=settings.transfer_grace_days + 1))
    later = clock.today_in(customer.timezone)
    assert pending_invoice_ids(db, customer.id, later) == set()


def test_declare_errors_change_nothing(
    client: TestClient, db: Session, settings: Settings, company: Company
) -> None:
    customer = make_customer(db, company, language="en")
    invoice = make_invoice(db, customer)
    open_portal(client, db, settings, customer)
    location = _start(client, invoice.id)
    today = clock.today_in(customer.timezone)
    tomorrow = (today + dt.timedelta(days=1)).isoformat()
    cases = [
        ({"paid_on": tomorrow, "amount": "100"}, "cannot be in the future"),
        ({"paid_on": today.isoformat(), "amount": "0"}, "must be more than zero"),
        ({"paid_on": today.isoformat(), "amount": "-3"}, "Enter the amount transferred"),
        ({"paid_on": today.isoformat(), "amount": "lots"}, "Enter the amount transferred"),
        ({"paid_on": "yesterday", "amount": "100"}, "Enter the date of the transfer"),
        ({"paid_on": today.isoformat()}, "Enter the amount transferred"),
    ]
    for data, message in cases:
        response = client.post(f"{location}/declare", data=data)
        assert response.status_code == 400, data
        assert message in response.text, data
        assert 'aria-invalid="true"' in response.text
    (request,) = _requests(db)
    db.refresh(request)
    assert request.status is PaymentRequestStatus.OPEN
    assert request.declared_at is None
    assert pending_invoice_ids(db, customer.id, today) == set()
    assert not db.scalars(
        select(TimelineEvent).where(TimelineEvent.action == "transfer.declared")
    ).all()


def test_cross_site_posts_are_refused(
    client: TestClient, db: Session, settings: Settings, company: Company
) -> None:
    customer = make_customer(db, company)
    invoice = make_invoice(db, customer)
    open_portal(client, db, settings, customer)
    location = _start(client, invoice.id)
    client.headers.pop("Sec-Fetch-Site")
    cross = {"Sec-Fetch-Site": "cross-site"}
    assert (
        client.post("/pay/transfer", data={"invoice": [str(invoice.id)]}, headers=cross).status_code
        == 403
    )
    today = clock.today_in(customer.timezone).isoformat()
    response = client.post(
        f"{location}/declare", data={"paid_on": today, "amount": "100"}, headers=cross
    )
    assert response.status_code == 403
    (request,) = _requests(db)
    db.refresh(request)
    assert request.status is PaymentRequestStatus.OPEN


def test_without_an_iban_the_transfer_is_not_offered(
    settings: Settings,
    session_factory: sessionmaker[Session],
    company: Company,
    db: Session,
) -> None:
    no_iban = dataclasses.replace(
        settings, company=dataclasses.replace(settings.company, iban="", bic="")
    )
    customer = make_customer(db, company, language="en")
    invoice = make_invoice(db, customer)
    db.commit()
    app = create_app(no_iban, session_factory=session_factory)
    with TestClient(
        app, follow_redirects=False, headers={"Sec-Fetch-Site": "same-origin"}
    ) as client:
        open_portal(client, db, no_iban, customer)
        assert "Pay by bank transfer" not in client.get("/").text
        response = client.post("/pay/transfer", data={"invoice": [str(invoice.id)]})
        assert response.status_code == 400
        assert "Payment by bank transfer is not available" in response.text
    assert db.scalar(select(func.count()).select_from(PaymentRequest)) == 0
