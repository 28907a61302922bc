"""The creditor's row, kept in step with the configured identity."""

from __future__ import annotations

from dataclasses import asdict
from typing import cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from portal import clock
from portal.company.models import Company
from portal.db import conflict_insert
from portal.settings import CompanyIdentity

DEFAULT_SLUG = "default"
_companies = cast(Table, Company.__table__)
_STORED_FIELDS = [
    "name",
    "legal_name",
    "address",
    "registration",
    "vat_number",
    "email",
    "phone",
    "website",
    "iban",
    "bic",
    "country",
    "currency",
    "timezone",
]


def sync_company(session: Session, identity: CompanyIdentity, slug: str = DEFAULT_SLUG) -> Company:
    """Create or update the company row from the configured identity."""
    company = session.scalar(select(Company).where(Company.slug == slug))
    values = {k: v for k, v in asdict(identity).items() if k in _STORED_FIELDS}
    now = clock.now()
    if company is None:
        # Several workers start at once on a new database: each tries to create the row,
        # one does, the others wait for it and read it.
        session.execute(
            conflict_insert(session, _companies)
            .values(slug=slug, created_at=now, updated_at=now, **values)
            .on_conflict_do_nothing(index_elements=["slug"])
        )
        company = session.scalars(select(Company).where(Company.slug == slug)).one()
    changed = False
    for key, value in values.items():
        if getattr(company, key) != value:
            setattr(company, key, value)
            changed = True
    if changed:
        company.updated_at = now
    return company


def get_company(session: Session, slug: str = DEFAULT_SLUG) -> Company | None:
    return session.scalar(select(Company).where(Company.slug == slug))
