"""The debtor's paying screens and what credit managers see of the debtor's requests:
amounts in the debtor's language, pay buttons that say what they pay, one invoice list,
badges and totals for what is on hold, the case forms, the back office's warnings."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from portal import clock
from portal.cases.models import Case
from portal.company.models import Company
from portal.customers.models import Customer, RiskSegment
from portal.payments.models import PaymentRequest
from portal.payments.requests import declare_transfer, prepare_transfer
from portal.settings import Settings
from tests.factories import make_customer, make_invoice
from tests.mail_sink import Inbox
from tests.web import test_cases
from tests.web.helpers import open_portal
from tests.web.test_backoffice import _cheap_hashing, log_in, make_user  # noqa: F401

Web = tuple[TestClient, Inbox, Path]
web = test_cases.web  # the app with a loopback SMTP sink and attachments (a fixture)


def _row(page: str, invoice_id: int) -> str:
    """The table row holding the pay checkbox of this invoice."""
    before, after = page.split(f'id="pay-invoice-{invoice_id}"', 1)
    return before.rsplit("<tr", 1)[1] + after.split("</tr>", 1)[0]


def test_french_amounts_in_fields_use_a_decimal_comma(
    client: TestClient, db: Session, settings: Settings, company: Company
) -> None:
    customer = make_customer(db, company, language="fr")
    invoice = make_invoice(db, customer, amount_minor=54_960)
    open_portal(client, db, settings, customer)
    location = client.post("/pay/transfer", data={"invoice": str(invoice.id)}).headers["location"]
    page = client.get(location).text
    # What a French debtor copies into their banking app, and the declared amount.
    assert 'id="transfer-amount" data-copy-value="549,60">549,60<' in page
    assert re.search(r'id="declare-amount"[^>]*value="549,60"', page)
    today = clock.today_in(customer.timezone).isoformat()
    response = client.post(f"{location}/declare", data={"paid_on": today, "amount": "549,60"})
    assert response.status_code == 303
    request = db.scalars(select(PaymentRequest)).one()
    db.refresh(request)
    assert request.declared_amount_minor == 54_960


def test_an_invoice_page_leads_with_paying_it(
    client: TestClient, db: Session, settings: Settings, company: Company
) -> None:
    customer = make_customer(db, company, language="en")
    invoice = make_invoice(db, customer, amount_minor=26_853, number="L-1")
    open_portal(client, db, settings, customer)
    page = client.get(f"/invoices/{invoice.id}").text
    main = page.split('<main id="main"', 1)[1]
    first_button = re.search(r'<(a|button)[^>]*class="button[^"]*"[^>]*>([^<]*)<', main)
    assert first_button is not None
    assert first_button.group(2) == "Pay €268.53 by bank transfer"
    assert f'<input type="hidden" name="invoice" value="{invoice.id}">' in main
    assert main.index("Pay €268.53") < main.index("Download the invoice (PDF)")


def test_pay_buttons_say_what_they_pay_and_follow_the_ticks(
    client: TestClient, db: Session, settings: Settings, company: Company
) -> None:
    customer = make_customer(db, company, language="fr")
    a = make_invoice(db, customer, amount_minor=200_000, due_in_days=-5)
    b = make_invoice(db, customer, amount_minor=68_530, due_in_days=5)
    open_portal(client, db, settings, customer)
    home = client.get("/").text
    assert "Payer 2\u202f685,30\xa0€ par virement" in home
    # htmx asks again for the buttons alone when a tick changes.
    fragment = client.get(
        "/",
        params={"part": "pay", "choose": "1", "invoice": str(b.id)},
        headers={"HX-Request": "true"},
    ).text
    assert fragment.lstrip().startswith('<div id="pay-actions"')
    assert "Payer 685,30\xa0€ par virement" in fragment
    # Without JavaScript: "Update the amount" asks for the page with the ticks it sent.
    again = client.get("/", params={"choose": "1", "invoice": str(a.id)}).text
    assert "Payer 2\u202f000,00\xa0€ par virement" in again
    assert f'id="pay-invoice-{a.id}" checked' in again
    assert f'id="pay-invoice-{b.id}" checked' not in again
    assert 'formaction="/" formmethod="get" name="choose" value="1"' in again


def test_the_home_page_lists_each_invoice_once(
    client: TestClient, db: Session, settings: Settings, company: Company
) -> None:
    customer = make_customer(db, company, language="en")
    make_invoice(db, customer, number="ONCE-1")
    make_invoice(db, customer, number="ONCE-2")
    open_portal(client, db, settings, customer)
    page = client.get("/").text
    for number in ("ONCE-1", "ONCE-2"):
        assert page.count(f">{number}<") == 1
        assert f"Invoice {number}," not in page  # no second list of checkboxes
    assert page.count('name="invoice"') == 2


def test_the_home_page_reflects_what_the_debtor_asked(
    web: Web, db: Session, company: Company
) -> None:
    client, _inbox, _dir = web
    customer = make_customer(db, company, language="en")
    disputed = make_invoice(db, customer, amount_minor=30_000, due_in_days=-32, number="H-1")
    promised = make_invoice(db, customer, amount_minor=12_000, due_in_days=-3, number="H-2")
    free = make_invoice(db, customer, amount_minor=5_000, due_in_days=-3, number="H-3")
    db.commit()
    open_portal(client, db, client.app.state.settings, customer)  # type: ignore[attr-defined]
    sent = client.post(
        "/disputes", data={"invoice": str(disputed.id), "reason": "other", "message": "Wrong."}
    )
    assert sent.status_code == 303
    by = (clock.today_in(customer.timezone) + dt.timedelta(days=10)).isoformat()
    sent = client.post("/promises", data={"invoice": str(promised.id), "promised_date": by})
    assert sent.status_code == 303
    page = client.get("/").text
    assert "Disputed" in _row(page, disputed.id)
    assert "Promised for" in _row(page, promised.id)
    # Not ticked for payment; the free one is.
    assert f'id="pay-invoice-{disputed.id}" checked' not in page
    assert f'id="pay-invoice-{promised.id}" checked' not in page
    assert f'id="pay-invoice-{free.id}" checked' in page
    # Not red "32 days" as if nothing had been asked.
    assert "badge overdue" not in _row(page, disputed.id)
    assert "badge overdue" in _row(page, free.id)
    # The totals say what is on hold.
    summary = page.split('id="summary-title"', 1)[1].split("</section>", 1)[0]
    assert "On hold" in summary
    assert "€420.00" in summary
    assert "2 invoices you disputed" in summary


def test_the_promise_button_says_why_it_is_off_when_nothing_is_free(
    web: Web, db: Session, company: Company
) -> None:
    client, _inbox, _dir = web
    customer = make_customer(db, company, language="en")
    a = make_invoice(db, customer)
    b = make_invoice(db, customer)
    db.commit()
    open_portal(client, db, client.app.state.settings, customer)  # type: ignore[attr-defined]
    free_page = client.get("/promises/new").text
    assert 'disabled aria-describedby="promise-none-free"' not in free_page
    client.post(
        "/disputes",
        data={"invoice": [str(a.id), str(b.id)], "reason": "other", "message": "Both wrong."},
    )
    page = client.get("/promises/new").text
    assert 'disabled aria-describedby="promise-none-free"' in page
    assert 'id="promise-none-free"' in page
    assert "Every open invoice is already in a request" in page


def _staff(client: TestClient) -> TestClient:
    return TestClient(
        client.app,
        follow_redirects=False,
        headers={"Sec-Fetch-Site": "same-origin", "Accept-Language": "en"},
    )


def test_a_plan_under_review_lists_the_rules_it_breaks(
    web: Web, db: Session, company: Company
) -> None:
    client, _inbox, _dir = web
    make_user(db, email="cm-plan@relance.example")
    customer = make_customer(db, company, language="en", risk_segment=RiskSegment.HIGH)
    invoice = make_invoice(db, customer, amount_minor=30_000)
    db.commit()
    open_portal(client, db, client.app.state.settings, customer)  # type: ignore[attr-defined]
    first = (clock.now().date() + dt.timedelta(days=5)).isoformat()
    data = {"invoice": str(invoice.id), "mode": "count", "count": "3", "first_date": first}
    assert client.post("/plans", data={**data, "action": "propose"}).status_code == 303
    case = db.scalars(select(Case).where(Case.customer_id == customer.id)).one()
    with _staff(client) as staff:
        log_in(staff, "cm-plan@relance.example")
        page = staff.get(f"/admin/cases/{case.id}").text
    assert "Outside the plan policy" in page
    assert "risk segment is not among those accepted at once" in page


def _declared_with_a_dispute(
    client: TestClient, db: Session, customer: Customer, numbers: tuple[str, str]
) -> None:
    disputed = make_invoice(db, customer, number=numbers[0], due_in_days=-10)
    other = make_invoice(db, customer, number=numbers[1], due_in_days=-9)
    db.commit()
    open_portal(client, db, client.app.state.settings, customer)  # type: ignore[attr-defined]
    client.post(
        "/disputes", data={"invoice": str(disputed.id), "reason": "other", "message": "No."}
    )
    today = clock.today_in(customer.timezone)
    request = prepare_transfer(db, customer, None, [disputed.id, other.id])
    declare_transfer(db, request, today, request.amount_minor, today, 10)
    db.commit()


def test_a_transfer_to_confirm_warns_of_a_disputed_invoice(
    web: Web, db: Session, company: Company
) -> None:
    client, _inbox, _dir = web
    make_user(db, email="cm-transfer@relance.example")
    _declared_with_a_dispute(client, db, make_customer(db, company), ("DSP-1", "DSP-2"))
    _declared_plain = make_customer(db, company)
    plain_invoice = make_invoice(db, _declared_plain, number="CLEAN-1")
    today = clock.today_in(_declared_plain.timezone)
    request = prepare_transfer(db, _declared_plain, None, [plain_invoice.id])
    declare_transfer(db, request, today, request.amount_minor, today, 10)
    db.commit()
    with _staff(client) as staff:
        log_in(staff, "cm-transfer@relance.example")
        page = staff.get("/admin/transfers").text
    assert "Disputed by the customer: invoice DSP-1." in page
    assert page.count("Disputed by the customer") == 1  # not on the undisputed transfer
