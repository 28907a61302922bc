"""Demo data: a company, sixteen customers and their invoices, seeded idempotently (the
last six, each with its own story, in portfolio.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import clock
from portal.company.models import Company
from portal.customers.models import Contact, Customer, RiskSegment
from portal.demo.portfolio import seed_portfolio
from portal.invoices.documents import invoice_pdf
from portal.invoices.models import Invoice
from portal.payments.models import Payment, PaymentMethod
from portal.payments.service import record_payment
from portal.users.models import Role, User
from portal.users.service import create_user, find_user

# Reminder scenarios shaped for the demo's invoices (see the file).
DEMO_SCENARIOS_FILE = Path(__file__).with_name("scenarios.toml")

# The demo's back-office login. Development only: seed_demo_admin refuses anything else.
DEMO_ADMIN_EMAIL = "admin@relance.example"
DEMO_ADMIN_PASSWORD = "relance-demo-admin"  # noqa: S105 - published demo login, development only


@dataclass(frozen=True)
class DemoCustomer:
    reference: str
    name: str
    language: str
    timezone: str
    risk: RiskSegment
    strategic: bool
    contact: str
    email: str
    phone: str


DEMO_CUSTOMERS = (
    DemoCustomer(
        "C-1001",
        "Boulangerie Martin SARL",
        "fr",
        "Europe/Paris",
        RiskSegment.LOW,
        False,
        "Claire Martin",
        "claire.martin@boulangerie-martin.example",
        "+33612345678",
    ),
    DemoCustomer(
        "C-1002",
        "Atelier Dubois",
        "fr",
        "Europe/Paris",
        RiskSegment.MEDIUM,
        False,
        "Julien Dubois",
        "julien@atelier-dubois.example",
        "+33698765432",
    ),
    DemoCustomer(
        "C-1003",
        "Northwind Traders Ltd",
        "en",
        "Europe/London",
        RiskSegment.MEDIUM,
        True,
        "Amelia Hughes",
        "accounts@northwind.example",
        "+447700900123",
    ),
    DemoCustomer(
        "C-1004",
        "Maple Leaf Supplies Inc.",
        "en",
        "America/Toronto",
        RiskSegment.LOW,
        False,
        "Liam Tremblay",
        "ap@mapleleaf.example",
        "+14165550142",
    ),
    DemoCustomer(
        "C-1005",
        "Transports Lefèvre",
        "fr",
        "Europe/Paris",
        RiskSegment.HIGH,
        False,
        "Sophie Lefèvre",
        "compta@transports-lefevre.example",
        "+33611223344",
    ),
    DemoCustomer(
        "C-1006",
        "Café du Port",
        "fr",
        "America/Martinique",
        RiskSegment.MEDIUM,
        False,
        "Marc Joseph",
        "cafeduport@example.com",
        "+596696112233",
    ),
    DemoCustomer(
        "C-1007",
        "Harbour Logistics Pty",
        "en",
        "Australia/Sydney",
        RiskSegment.MEDIUM,
        False,
        "Olivia Chen",
        "finance@harbour-logistics.example",
        "+61491570156",
    ),
    DemoCustomer(
        "C-1008",
        "Pharmacie Girard",
        "fr",
        "Indian/Reunion",
        RiskSegment.LOW,
        False,
        "Nathalie Girard",
        "pharmacie.girard@example.org",
        "+262692001122",
    ),
    DemoCustomer(
        "C-1009",
        "Brightside Studio LLC",
        "en",
        "America/New_York",
        RiskSegment.HIGH,
        False,
        "Jordan Blake",
        "billing@brightside.example",
        "+12125550199",
    ),
    DemoCustomer(
        "C-1010",
        "Menuiserie Roux",
        "fr",
        "Europe/Paris",
        RiskSegment.MEDIUM,
        True,
        "Paul Roux",
        "paul.roux@menuiserie-roux.example",
        "+33655443322",
    ),
)

# (days from today to the due date, amount in cents, share paid in percent, stored PDF)
INVOICE_PLAN = (
    (-75, 128_000, 100, True),
    (-32, 54_960, 0, False),
    (-9, 210_450, 40, True),
    (21, 87_300, 0, False),
)


# Each customer's size: invoice amounts are the plan's times this (the first, whose figures
# the browser tests read, keeps the plan's), rounded to ten cents, so no two customers look
# alike and the amounts do not climb in even steps.
CUSTOMER_SCALE = (1.0, 0.62, 1.47, 0.81, 2.35, 0.38, 1.13, 0.56, 1.92, 0.74)


def _amount(base_amount: int, index: int, position: int) -> int:
    if index == 0:
        return base_amount
    varied = base_amount * CUSTOMER_SCALE[index] * (1 + ((index * 7 + position * 3) % 11) / 40)
    return int(round(varied, -1))


def _ensure_customer(session: Session, company: Company, spec: DemoCustomer) -> Customer:
    customer = session.scalar(
        select(Customer).where(
            Customer.company_id == company.id, Customer.reference == spec.reference
        )
    )
    if customer is not None:
        return customer
    customer = Customer(
        company_id=company.id,
        reference=spec.reference,
        name=spec.name,
        language=spec.language,
        timezone=spec.timezone,
        risk_segment=spec.risk,
        strategic=spec.strategic,
        link_version=1,
        created_at=clock.now(),
    )
    customer.contacts.append(
        Contact(
            name=spec.contact,
            email=spec.email,
            phone=spec.phone,
            is_primary=True,
            receives_reminders=True,
        )
    )
    session.add(customer)
    session.flush()
    return customer


def seed_demo(session: Session, company: Company, documents_dir: Path) -> list[Customer]:
    """Create what is missing; leave what exists alone (safe to run at every start)."""
    today = clock.now().date()
    customers = []
    for index, spec in enumerate(DEMO_CUSTOMERS):
        customer = _ensure_customer(session, company, spec)
        customers.append(customer)
        for position, (due_in, base_amount, paid_percent, with_pdf) in enumerate(INVOICE_PLAN):
            number = f"F2026-{index + 1:02d}{position + 1:02d}"
            if session.scalar(
                select(Invoice.id).where(Invoice.company_id == company.id, Invoice.number == number)
            ):
                continue
            due = today + dt.timedelta(days=due_in - index)
            amount = _amount(base_amount, index, position)
            invoice = Invoice(
                company_id=company.id,
                customer_id=customer.id,
                number=number,
                issue_date=due - dt.timedelta(days=30),
                due_date=due,
                currency=company.currency,
                amount_minor=amount,
                paid_minor=0,
                created_at=clock.now(),
            )
            session.add(invoice)
            session.flush()
            if with_pdf and index % 2 == 0:
                relative = f"invoices/{number}.pdf"
                path = documents_dir / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(invoice_pdf(company, customer, invoice, customer.language))
                invoice.pdf_path = relative
            paid = amount * paid_percent // 100
            reference = f"demo-{number}"
            if paid and not session.scalar(
                select(Payment.id).where(
                    Payment.provider == "demo", Payment.provider_reference == reference
                )
            ):
                record_payment(
                    session,
                    customer,
                    amount_minor=paid,
                    currency=invoice.currency,
                    method=PaymentMethod.TRANSFER,
                    provider="demo",
                    provider_reference=reference,
                    received_at=clock.now() - dt.timedelta(days=max(1, -due_in - index)),
                    invoice_ids=[invoice.id],
                )
    return customers + seed_portfolio(session, company)


def seed_demo_admin(session: Session, company: Company, *, development: bool) -> User:
    """The demo administrator, created once; an existing one is left as it is."""
    if not development:
        raise RuntimeError("the demo administrator exists only in development")
    existing = find_user(session, DEMO_ADMIN_EMAIL)
    if existing is not None:
        return existing
    return create_user(
        session,
        DEMO_ADMIN_EMAIL,
        Role.ADMIN,
        DEMO_ADMIN_PASSWORD,
        name="Demo administrator",
        company_id=company.id,
        actor_id="demo",
    )
