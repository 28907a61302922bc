"""The demo's portfolio: customers who behave as real ones do, and their seeding.

Each customer has its own history (the first ten are in customers.py): payers who are
always on time, some weeks late, some months late, a large account, small invoices paid in
part, a new customer with nothing due yet, a disputed invoice and a payment plan running.
Fixed figures, seeded idempotently: every run and every test sees the same portfolio.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import clock
from portal.cases import service as cases
from portal.cases.models import Case
from portal.company.models import Company
from portal.customers.models import Contact, Customer, RiskSegment
from portal.invoices.documents import invoice_pdf
from portal.invoices.models import Invoice
from portal.payments.models import Payment, PaymentMethod
from portal.payments.service import record_payment
from portal.settings import CaseSettings


@dataclass(frozen=True)
class DemoInvoice:
    due_in: int  # days from today to the due date (negative: overdue)
    amount_minor: int
    paid_percent: int = 0
    paid_days_before_due: int = 0  # when it was paid, relative to its due date
    pdf: bool = False  # a PDF stored with it (else the portal generates one on demand)


@dataclass(frozen=True)
class Profile:
    reference: str
    name: str
    language: str
    country: str  # ISO 3166 code, or "" when not known
    timezone: str
    risk: RiskSegment
    contact: str
    email: str
    invoices: tuple[DemoInvoice, ...]
    story: str = ""  # "dispute" or "plan": a case opened on its overdue invoices
    phone: str = ""
    strategic: bool = False


PROFILES = (
    Profile(
        "C-1011",
        "Clinique Vétérinaire des Alpes",
        "fr",
        "FR",
        "Europe/Paris",
        RiskSegment.LOW,
        "Dr Hélène Favre",
        "compta@clinique-alpes.example",
        # Pays every month, a few days early.
        (
            DemoInvoice(-150, 41_880, 100, 3),
            DemoInvoice(-120, 39_600, 100, 5),
            DemoInvoice(-90, 44_250, 100, 2),
            DemoInvoice(-60, 38_940, 100, 4),
            DemoInvoice(-30, 42_120, 100, 1),
            DemoInvoice(12, 40_560),
        ),
    ),
    Profile(
        "C-1012",
        "Dupont Électricité",
        "fr",
        "FR",
        "Europe/Paris",
        RiskSegment.HIGH,
        "Marc Dupont",
        "marc@dupont-electricite.example",
        # Months behind.
        (
            DemoInvoice(-143, 386_400),
            DemoInvoice(-97, 129_900),
            DemoInvoice(-61, 74_508, 25),
        ),
    ),
    Profile(
        "C-1013",
        "Oakwood Interiors Ltd",
        "en",
        "GB",
        "Europe/London",
        RiskSegment.MEDIUM,
        "Priya Patel",
        "accounts@oakwood-interiors.example",
        (DemoInvoice(-47, 215_000, 100, -6), DemoInvoice(-18, 97_450)),
        story="dispute",
    ),
    Profile(
        "C-1014",
        "Boucherie Lambert",
        "fr",
        "FR",
        "Europe/Paris",
        RiskSegment.MEDIUM,
        "Isabelle Lambert",
        "isabelle@boucherie-lambert.example",
        (DemoInvoice(-40, 168_300), DemoInvoice(-11, 92_415), DemoInvoice(19, 31_200)),
        story="plan",
    ),
    Profile(
        "C-1015",
        "Nordic Parts AB",
        "en",
        "SE",
        "Europe/Stockholm",
        RiskSegment.LOW,
        "Erik Lindqvist",
        "ap@nordic-parts.example",
        (
            DemoInvoice(-64, 890_000, 100, 0),
            DemoInvoice(-3, 1_245_000),
            DemoInvoice(27, 612_750),
        ),
    ),
    Profile(
        "C-1016",
        "Les Jardins de Provence",
        "fr",
        "FR",
        "Europe/Paris",
        RiskSegment.MEDIUM,
        "Lucie Arnaud",
        "lucie@jardins-provence.example",
        (DemoInvoice(-22, 6_490, 50, -10), DemoInvoice(-5, 12_800), DemoInvoice(8, 3_950)),
    ),
)


def invoice_number(index: int, position: int) -> str:
    """The number of a customer's invoice: both count from 1, in the demo's order."""
    return f"F2026-{index:02d}{position:02d}"


def seed_portfolio(
    session: Session, company: Company, documents_dir: Path, profiles: tuple[Profile, ...]
) -> list[Customer]:
    today = clock.now().date()
    customers = []
    for index, profile in enumerate(profiles, start=1):
        customer = _customer(session, company, profile)
        customers.append(customer)
        invoices = [
            _invoice(
                session,
                company,
                customer,
                invoice_number(index, position),
                spec,
                today,
                documents_dir,
            )
            for position, spec in enumerate(profile.invoices, start=1)
        ]
        if profile.story:
            _story(session, company, customer, profile.story, invoices, today)
    return customers


def _customer(session: Session, company: Company, profile: Profile) -> Customer:
    existing = session.scalar(
        select(Customer).where(
            Customer.company_id == company.id, Customer.reference == profile.reference
        )
    )
    if existing is not None:
        return existing
    customer = Customer(
        company_id=company.id,
        reference=profile.reference,
        name=profile.name,
        language=profile.language,
        # No country given: the company's default (the model's).
        **({"country": profile.country} if profile.country else {}),
        timezone=profile.timezone,
        risk_segment=profile.risk,
        strategic=profile.strategic,
        link_version=1,
        created_at=clock.now(),
    )
    customer.contacts.append(
        Contact(
            name=profile.contact,
            email=profile.email,
            phone=profile.phone or None,
            is_primary=True,
            receives_reminders=True,
        )
    )
    session.add(customer)
    session.flush()
    return customer


def _invoice(
    session: Session,
    company: Company,
    customer: Customer,
    number: str,
    spec: DemoInvoice,
    today: dt.date,
    documents_dir: Path,
) -> Invoice:
    existing = session.scalar(
        select(Invoice).where(Invoice.company_id == company.id, Invoice.number == number)
    )
    if existing is not None:
        return existing
    due = today + dt.timedelta(days=spec.due_in)
    invoice = Invoice(
        company_id=company.id,
        customer_id=customer.id,
        number=number,
        issue_date=due - dt.timedelta(days=30),
        due_date=due,
        currency=company.currency,
        amount_minor=spec.amount_minor,
        paid_minor=0,
        created_at=clock.now(),
    )
    session.add(invoice)
    session.flush()
    if spec.pdf:
        relative = f"invoices/{number}.pdf"
        path = documents_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(invoice_pdf(company, customer, invoice, customer.language))
        invoice.pdf_path = relative
    paid = spec.amount_minor * spec.paid_percent // 100
    reference = f"demo-{number}"
    if paid and not session.scalar(
        select(Payment.id).where(
            Payment.provider == "demo", Payment.provider_reference == reference
        )
    ):
        paid_on = min(due - dt.timedelta(days=spec.paid_days_before_due), today)
        record_payment(
            session,
            customer,
            amount_minor=paid,
            currency=invoice.currency,
            method=PaymentMethod.TRANSFER,
            provider="demo",
            provider_reference=reference,
            received_at=dt.datetime.combine(paid_on, dt.time(10), dt.UTC),
            invoice_ids=[invoice.id],
        )
    return invoice


def _story(
    session: Session,
    company: Company,
    customer: Customer,
    story: str,
    invoices: list[Invoice],
    today: dt.date,
) -> None:
    if session.scalar(select(Case.id).where(Case.customer_id == customer.id)):
        return
    overdue = [i.id for i in invoices if i.due_date < today and i.remaining_minor > 0]
    if story == "dispute":
        cases.open_dispute(
            session,
            customer,
            None,
            overdue[-1:],
            reason="wrong_amount",
            message="Two of the twelve chairs arrived damaged; we returned them on the 14th.",
        )
    else:
        cases.propose_plan(
            session,
            customer,
            None,
            overdue,
            first_date=today + dt.timedelta(days=5),
            today=today,
            policy=CaseSettings(),
            company_currency=company.currency,
            agreement=cases.AgreementInfo(None, "demo"),
            count=3,
            message="Nous réglerons en trois fois, la saison a été difficile.",
        )
