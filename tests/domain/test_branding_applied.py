"""The admins' branding reaches what the worker sends: emails' colours and sender, and
letters' legal mentions."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

from pypdf import PdfReader
from sqlalchemy.orm import Session, sessionmaker

from portal.branding import service as branding
from portal.branding.service import BrandingForm, Texts
from portal.company.models import Company
from portal.mail.sender import OutgoingEmail, to_mime
from portal.reminders.render import DueInvoice, ReminderContent, Total, render_letter
from portal.reminders.worker import apply_branding
from portal.settings import Settings
from tests.factories import make_customer
from tests.reminders_helpers import context, reminder_settings


def test_the_worker_sends_in_the_company_look(
    db: Session,
    session_factory: sessionmaker[Session],
    company: Company,
    settings: Settings,
    tmp_path: Path,
) -> None:
    configured = reminder_settings(settings, tmp_path)
    form = BrandingForm(
        primary_colour="#5a1f79",
        sender_name="Acme billing",
        sender_email="billing@acme.example",
        texts={"fr": Texts(legal="Acme SAS, RCS Paris 123")},
    )
    branding.save(db, company.id, form, "", user_id=None)
    db.commit()
    ctx = context(configured)
    apply_branding(session_factory, company.id, ctx, configured)

    assert ctx.settings.company.primary_colour == "#5a1f79"
    assert ctx.settings.company.accent_colour == configured.company.accent_colour  # default
    assert ctx.mailer.sender_source is not None
    mime = to_mime(
        OutgoingEmail("a@b.example", "s", "t", "<p>t</p>", "<1@x>"), ctx.mailer.sender_source()
    )
    assert mime["From"] == "Acme billing <billing@acme.example>"

    assert ctx.brand is not None
    customer = make_customer(db, company, language="fr")
    content = ReminderContent(
        customer_name=customer.name,
        contact_name="",
        language="fr",
        step="formal_notice",
        link="http://testserver/l/x",
        today=dt.date(2026, 12, 1),
        invoices=[DueInvoice(1, "F-1", dt.date(2026, 11, 1), "EUR", 10_000, 30)],
        totals=[Total("EUR", 10_000, 0)],
    )
    pdf = render_letter(company, customer, content, ctx.brand.pdf_brand("fr"))
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "Acme SAS, RCS Paris 123" in text


def test_without_branding_the_environment_stays_the_default(
    session_factory: sessionmaker[Session], company: Company, settings: Settings, tmp_path: Path
) -> None:
    configured = reminder_settings(settings, tmp_path)
    ctx = context(configured)
    apply_branding(session_factory, company.id, ctx, configured)
    company_now = ctx.settings.company
    assert company_now.primary_colour == configured.company.primary_colour
    assert company_now.accent_colour == configured.company.accent_colour
    assert company_now.name == configured.company.name
    assert ctx.mailer.sender_source is not None
    assert ctx.mailer.sender_source() == configured.smtp.sender


def test_debtor_emails_carry_the_company_texts_in_their_language(
    db: Session, company: Company, settings: Settings
) -> None:
    from portal.links.service import FreshLink
    from portal.mail.sender import compose
    from portal.templating import make_environment

    form = BrandingForm(
        texts={
            "fr": Texts(support="Appelez le 01 02 03 04 05", legal="Acme SAS <capital>"),
            "en": Texts(support="Call +33 1 02 03 04 05"),
        }
    )
    branding.save(db, company.id, form, "", user_id=None)
    look = branding.load_look(db, company.id, settings)
    link = FreshLink("a@b.example", "Claire", "fr", "http://testserver/l/x", "Acme client")
    email = compose(
        make_environment(),
        "fresh_link",
        "a@b.example",
        "fr",
        "testserver",
        company=look.identity(settings.company),
        link=link,
        settings=settings,
    )
    assert "Appelez le 01 02 03 04 05" in email.text
    assert "Acme SAS <capital>" in email.text
    assert "Acme SAS &lt;capital&gt;" in email.html  # escaped in the HTML part
    assert "Call +33" not in email.text
