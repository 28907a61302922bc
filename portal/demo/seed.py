"""Demo data: a company, sixteen customers, each with its own history, and their invoices,
seeded idempotently (customers.py and portfolio.py), and the demo's administrator."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from portal.company.models import Company
from portal.customers.models import Customer
from portal.demo.customers import FIRST_TEN
from portal.demo.portfolio import PROFILES, seed_portfolio
from portal.users.models import Role, User
from portal.users.service import create_user, find_user

# Reminder scenarios shaped for the demo's invoices (see the file).
DEMO_SCENARIOS_FILE = Path(__file__).with_name("scenarios.toml")

# The demo's back-office login. Development only: seed_demo_admin refuses anything else.
DEMO_ADMIN_EMAIL = "admin@relance.example"
DEMO_ADMIN_PASSWORD = "relance-demo-admin"  # noqa: S105 - published demo login, development only


# Every demo customer, in order: invoice numbers are F2026-<customer><invoice> (both from 01).
DEMO_PROFILES = FIRST_TEN + PROFILES


def seed_demo(session: Session, company: Company, documents_dir: Path) -> list[Customer]:
    """Create what is missing; leave what exists alone (safe to run at every start)."""
    return seed_portfolio(session, company, documents_dir, DEMO_PROFILES)


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
