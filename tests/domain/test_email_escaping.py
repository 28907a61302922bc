"""Every email's HTML part escapes every value; its text part and subject carry them plain.

Each email type rendered through the functions that send it (``mail.sender.compose`` and
``reminders.render.render_email``), with the real template environment, and a customer
whose name is markup."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest

from portal.cases.notify import DEBTOR_EVENTS, STAFF_EVENTS
from portal.links.service import FreshLink
from portal.mail.sender import OutgoingEmail, compose
from portal.payments.receipts import Receipt, ReceiptLine
from portal.reminders.render import DueInvoice, ReminderContent, Total, render_email
from portal.settings import CompanyIdentity, Settings, load_settings
from portal.templating import make_environment
from tests.conftest import TEST_SECRET

EVIL = "<b>Evil</b> & <script>"
ESCAPED = "&lt;b&gt;Evil&lt;/b&gt; &amp; &lt;script&gt;"
COMPANY = CompanyIdentity(name="Acme & <i>Sons</i>")
env = make_environment()


def _settings(tmp_path: Path) -> Settings:
    return load_settings(
        {
            "PORTAL_ENVIRONMENT": "test",
            "PORTAL_SECRET_KEYS": TEST_SECRET,
            "PORTAL_DOCUMENTS_DIR": str(tmp_path),
        }
    )


def _assert_escaped(subject: str, text: str, html: str) -> None:
    assert ESCAPED in html
    assert EVIL not in html
    assert "<b>" not in html
    assert "<script>" not in html
    assert "<i>Sons" not in html
    assert EVIL in text
    assert "&lt;" not in text
    assert "&amp;" not in text
    assert "&lt;" not in subject
    assert "&amp;" not in subject


def _case_context(event: str) -> dict[str, object]:
    return {
        "event": event,
        "person": EVIL,
        "customer_name": EVIL,
        "url": "http://testserver/l/1-1.abc.def",
        "case_id": 7,
        "kind": "dispute",
        "note": EVIL,
        "currency": "EUR",
        "total_minor": 12_345,
        "answer_by": dt.date(2026, 12, 10),
        "promised_date": dt.date(2026, 12, 20),
        "instalments": [(dt.date(2026, 12, 20), 6_000)],
        "instalment": (dt.date(2026, 12, 20), 6_000),
        "invoice_numbers": EVIL,
        "invoice_count": 1,
    }


def _compose(name: str, settings: Settings, language: str, **context: object) -> OutgoingEmail:
    return compose(
        env,
        name,
        "to@example.com",
        language,
        "testserver",
        company=COMPANY,
        settings=settings,
        language=language,
        **context,
    )


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("event", STAFF_EVENTS)
def test_staff_case_emails(tmp_path: Path, event: str, language: str) -> None:
    email = _compose("case_assigned", _settings(tmp_path), language, **_case_context(event))
    _assert_escaped(email.subject, email.text, email.html)
    assert EVIL in email.subject


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("event", DEBTOR_EVENTS)
def test_debtor_case_emails(tmp_path: Path, event: str, language: str) -> None:
    email = _compose("case_update", _settings(tmp_path), language, **_case_context(event))
    _assert_escaped(email.subject, email.text, email.html)


def test_fresh_link_and_receipt_emails(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    link = FreshLink("to@example.com", EVIL, "en", "http://testserver/l/x", EVIL)
    email = _compose("fresh_link", settings, "en", link=link)
    _assert_escaped(email.subject, email.text, email.html)
    receipt = Receipt(
        to="to@example.com",
        language="en",
        customer_name=EVIL,
        amount_minor=10_000,
        currency="EUR",
        received_at=dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
        reference="pi_123",
        lines=(ReceiptLine(EVIL, 10_000, 0),),
        credit_minor=0,
        balance_minor=0,
    )
    email = _compose("receipt", settings, "en", receipt=receipt)
    _assert_escaped(email.subject, email.text, email.html)


@pytest.mark.parametrize("template", ["reminder_courtesy", "reminder_overdue"])
def test_reminder_emails(template: str) -> None:
    invoice = DueInvoice(1, EVIL, dt.date(2026, 11, 1), "EUR", 10_000, 30)
    content = ReminderContent(
        customer_name=EVIL,
        contact_name=EVIL,
        language="en",
        step=template,
        link="http://testserver/l/x",
        today=dt.date(2026, 12, 1),
        invoices=[invoice],
        totals=[Total("EUR", 10_000, 0)],
    )
    email = render_email(env, template, content, replace(COMPANY, address=EVIL))
    _assert_escaped(email.subject, email.text, email.html)
