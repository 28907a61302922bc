"""Portal sessions: started by a link, ended by logout, idleness or revocation."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session

from portal import clock
from portal.access.models import DebtorSession
from portal.customers.models import Customer
from portal.invoices.models import Invoice, InvoiceStatus
from portal.invoices.service import LINE_COLUMNS, InvoiceLine
from portal.links.models import LinkScope

# Writing last_seen_at on every page view would turn each read into a write.
TOUCH_INTERVAL = dt.timedelta(seconds=60)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class PortalAccess:
    """What the current debtor may see: one customer, optionally some of its invoices."""

    session_id: str
    customer: Customer
    invoice_ids: frozenset[int] | None
    language: str | None


def start_session(
    session: Session,
    customer: Customer,
    scope_id: int | None,
    client_ip: str | None,
    user_agent: str | None,
) -> str:
    """Create a session row; returns the cookie secret (never stored as is)."""
    secret = secrets.token_urlsafe(32)
    now = clock.now()
    session.add(
        DebtorSession(
            id=digest(secret),
            customer_id=customer.id,
            link_version=customer.link_version,
            scope_id=scope_id,
            created_at=now,
            last_seen_at=now,
            client_ip=client_ip,
            user_agent=(user_agent or "")[:255] or None,
        )
    )
    return secret


def load_access(session: Session, secret: str | None, idle: dt.timedelta) -> PortalAccess | None:
    """The live session behind a cookie secret, or None (unknown, ended, idle or revoked)."""
    if not secret or len(secret) > 128:
        return None
    row = session.execute(
        select(DebtorSession, Customer)
        .join(Customer, Customer.id == DebtorSession.customer_id)
        .where(DebtorSession.id == digest(secret))
    ).first()
    if row is None:
        return None
    return _accept(session, row[0], row[1], idle)


def load_access_and_open_invoices(
    session: Session, secret: str | None, idle: dt.timedelta
) -> tuple[PortalAccess | None, list[InvoiceLine]]:
    """The home page's data in one round trip: the session, its customer, their open invoices.

    Same answers as load_access() followed by invoices.service.open_invoices(); the page
    most debtors land on saves a round trip to the database.
    """
    if not secret or len(secret) > 128:
        return None, []
    rows = session.execute(
        select(DebtorSession, Customer, *LINE_COLUMNS)
        .join(Customer, Customer.id == DebtorSession.customer_id)
        .outerjoin(
            Invoice,
            and_(Invoice.customer_id == Customer.id, Invoice.status == InvoiceStatus.OPEN),
        )
        .where(DebtorSession.id == digest(secret))
        .order_by(Invoice.due_date, Invoice.number)
    ).all()
    if not rows:
        return None, []
    access = _accept(session, rows[0][0], rows[0][1], idle)
    if access is None:
        return None, []
    lines = [InvoiceLine(*row[2:]) for row in rows if row[2] is not None]
    if access.invoice_ids is not None:
        lines = [line for line in lines if line.id in access.invoice_ids]
    return access, lines


def _accept(
    session: Session, debtor_session: DebtorSession, customer: Customer, idle: dt.timedelta
) -> PortalAccess | None:
    now = clock.now()
    if debtor_session.ended_at is not None:
        return None
    if debtor_session.link_version != customer.link_version:
        return None
    if now - debtor_session.last_seen_at > idle:
        debtor_session.ended_at = now
        return None
    if now - debtor_session.last_seen_at > TOUCH_INTERVAL:
        debtor_session.last_seen_at = now
    invoice_ids = None
    if debtor_session.scope_id is not None:
        scope = session.get(LinkScope, debtor_session.scope_id)
        invoice_ids = frozenset(scope.invoice_ids) if scope else frozenset()
    return PortalAccess(debtor_session.id, customer, invoice_ids, debtor_session.language)


def set_language(session: Session, session_id: str, language: str) -> None:
    session.execute(
        update(DebtorSession).where(DebtorSession.id == session_id).values(language=language)
    )


def end_session(session: Session, session_id: str) -> None:
    session.execute(
        update(DebtorSession)
        .where(DebtorSession.id == session_id, DebtorSession.ended_at.is_(None))
        .values(ended_at=clock.now())
    )


def end_customer_sessions(session: Session, customer_id: int) -> int:
    result = session.execute(
        update(DebtorSession)
        .where(DebtorSession.customer_id == customer_id, DebtorSession.ended_at.is_(None))
        .values(ended_at=clock.now())
    )
    return int(getattr(result, "rowcount", 0) or 0)
