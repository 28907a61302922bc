"""Instalment reminders: a few days before an instalment falls due, and once when late."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import clock
from portal.cases import instalment_reminders
from portal.cases import service as cases
from portal.cases.models import InstalmentReminder
from portal.company.models import Company
from portal.links.tokens import LinkSigner
from portal.payments.models import PaymentMethod
from portal.payments.service import record_payment
from portal.settings import Settings
from tests.factories import make_customer, make_invoice

TODAY = dt.date(2026, 11, 23)


def _plan(db: Session, settings: Settings, company: Company) -> tuple[object, object, object]:
    clock.freeze(dt.datetime(2026, 11, 23, 9, tzinfo=dt.UTC))
    customer = make_customer(db, company, language="en")
    invoice = make_invoice(db, customer, amount_minor=30_000, due_in_days=-10)
    case = cases.propose_plan(
        db,
        customer,
        None,
        [invoice.id],
        first_date=TODAY + dt.timedelta(days=10),
        today=TODAY,
        policy=settings.cases,
        company_currency="EUR",
        agreement=cases.AgreementInfo("127.0.0.1", "test"),
        count=3,
    )
    return customer, invoice, case


def _collect(db: Session, settings: Settings, day: dt.date) -> list[object]:
    signer = LinkSigner(settings.secret_keys, settings.link_max_age_seconds)
    return list(instalment_reminders.collect(db, signer, settings, day))


def test_reminded_three_days_before_then_once_late_and_never_twice(
    db: Session, settings: Settings, company: Company
) -> None:
    _customer, _invoice, case = _plan(db, settings, company)
    due = TODAY + dt.timedelta(days=10)
    assert _collect(db, settings, due - dt.timedelta(days=4)) == []
    (soon,) = _collect(db, settings, due - dt.timedelta(days=3))
    assert soon.template == "case_update"  # type: ignore[attr-defined]
    assert soon.context["event"] == "instalment_due"  # type: ignore[attr-defined]
    assert soon.context["instalment"] == (due, 10_000)  # type: ignore[attr-defined]
    assert soon.context["url"].startswith(f"{settings.base_url}/l/")  # type: ignore[attr-defined]
    assert _collect(db, settings, due) == []  # the same reminder is not sent twice
    (late,) = _collect(db, settings, due + dt.timedelta(days=1))
    assert late.context["event"] == "instalment_overdue"  # type: ignore[attr-defined]
    assert _collect(db, settings, due + dt.timedelta(days=2)) == []
    kinds = db.scalars(
        select(InstalmentReminder.kind).where(InstalmentReminder.case_id == case.id)  # type: ignore[attr-defined]
    ).all()
    assert sorted(kinds) == ["due", "overdue"]


def test_a_paid_instalment_moves_the_reminders_to_the_next_one(
    db: Session, settings: Settings, company: Company
) -> None:
    customer, invoice, _case = _plan(db, settings, company)
    record_payment(
        db,
        customer,  # type: ignore[arg-type]
        amount_minor=10_000,
        currency="EUR",
        method=PaymentMethod.TRANSFER,
        provider="bank",
        provider_reference="RF-1",
        invoice_ids=[invoice.id],  # type: ignore[attr-defined]
    )
    first_due = TODAY + dt.timedelta(days=10)
    assert _collect(db, settings, first_due) == []  # the first is paid: nothing about it
    (reminder,) = _collect(db, settings, first_due + dt.timedelta(days=28))
    assert reminder.context["instalment"][1] == 10_000  # type: ignore[attr-defined]
    assert db.scalar(select(func.count()).select_from(InstalmentReminder)) == 1


def test_the_reminder_email_renders_in_both_languages(
    db: Session, settings: Settings, company: Company
) -> None:
    from portal.mail.sender import compose
    from portal.templating import make_environment

    _customer, _invoice, _case = _plan(db, settings, company)
    (soon,) = _collect(db, settings, TODAY + dt.timedelta(days=8))
    for language, expected in (
        ("en", "Your next instalment of €100.00 is due on"),
        ("fr", "Votre prochaine échéance de 100,00\xa0€ arrive le"),
    ):
        email = compose(
            make_environment(),
            "case_update",
            soon.to,  # type: ignore[attr-defined]
            language,
            "relance.example",
            company=settings.company,
            settings=settings,
            language=language,
            **soon.context,  # type: ignore[attr-defined]
        )
        assert expected in email.text
        assert "/l/" in email.text
