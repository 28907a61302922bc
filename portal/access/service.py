"""Portal sessions: started by a link, ended by logout, idleness or revocation."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import JSON, Table, and_, bindparam, func, or_, select, update
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session

from portal import clock
from portal.access.models import DebtorSession
from portal.cases.models import LIVE_CASE_STATUSES, Case, CaseInvoice, CaseKind
from portal.customers.models import Customer
from portal.invoices.models import Invoice, InvoiceStatus
from portal.invoices.service import LINE_TABLE_COLUMNS, InvoiceLine
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
    embed_origin: str | None = None

    @property
    def embedded(self) -> bool:
        return self.embed_origin is not None


def start_session(
    session: Session,
    customer: Customer,
    scope_id: int | None,
    client_ip: str | None,
    user_agent: str | None,
    embed_origin: str | None = None,
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
            embed_origin=embed_origin,
        )
    )
    return secret


# The session's own columns the checks need; read as plain values, since a page view
# only ever updates last_seen_at or ended_at with one statement.
_SESSION_COLUMNS = (
    DebtorSession.link_version,
    DebtorSession.ended_at,
    DebtorSession.last_seen_at,
    DebtorSession.scope_id,
    DebtorSession.language,
    DebtorSession.embed_origin,
)
_SESSION_FIELDS = len(_SESSION_COLUMNS)

# Built once: every page view runs one of these, and building a statement costs about
# as much as SQLite takes to answer it.
_ACCESS_QUERY = (
    select(*_SESSION_COLUMNS, Customer)
    .join(Customer, Customer.id == DebtorSession.customer_id)
    .where(DebtorSession.id == bindparam("session_id"))
)
_invoices = cast(Table, Invoice.__table__)
_case_invoices = cast(Table, CaseInvoice.__table__)
_cases = cast(Table, Case.__table__)


def _live_case_column(column: Any) -> Any:
    """One column of the live case an invoice row is in (at most one: cases.service)."""
    return (
        select(column)
        .select_from(_case_invoices.join(_cases, _cases.c.id == _case_invoices.c.case_id))
        .where(
            _case_invoices.c.invoice_id == _invoices.c.id,
            # Equalities rather than IN: an IN list is expanded again at every execution.
            or_(*(_cases.c.status == status for status in LIVE_CASE_STATUSES)),
        )
        .limit(1)
        .scalar_subquery()
    )


# The columns of an open line in the home page's query, then the live case's two.
_OPEN_LINE_COLUMNS = (
    *LINE_TABLE_COLUMNS,
    _live_case_column(_cases.c.kind),
    _live_case_column(_cases.c.promised_date),
)
_OPEN_OF_CUSTOMER = and_(
    _invoices.c.customer_id == Customer.id, _invoices.c.status == InvoiceStatus.OPEN
)
_LINE_ORDER = (_invoices.c.due_date, _invoices.c.number)


def _open_lines_sqlite() -> Any:
    # SQLite does not flatten an ordered subquery into an aggregate: the array keeps its order.
    ordered = (
        select(*_OPEN_LINE_COLUMNS)
        .where(_OPEN_OF_CUSTOMER)
        .order_by(*_LINE_ORDER)
        .correlate(Customer)
        .subquery()
    )
    return select(func.json_group_array(func.json_array(*ordered.c), type_=JSON)).scalar_subquery()


def _open_lines_postgresql() -> Any:
    return (
        select(
            func.json_agg(
                aggregate_order_by(func.json_build_array(*_OPEN_LINE_COLUMNS), *_LINE_ORDER),
                type_=JSON,
            )
        )
        .where(_OPEN_OF_CUSTOMER)
        .correlate(Customer)
        .scalar_subquery()
    )


def _access_and_open_lines(open_lines: Any) -> Any:
    """The session's row, its customer, and the customer's open lines as one JSON array:
    one row however many invoices, so the driver builds (and SQLite steps through, releasing
    and taking the GIL each time) one row instead of the customer's columns once per invoice."""
    return (
        select(*_SESSION_COLUMNS, Customer, open_lines)
        .join(Customer, Customer.id == DebtorSession.customer_id)
        .where(DebtorSession.id == bindparam("session_id"))
    )


_ACCESS_AND_OPEN_INVOICES_QUERIES = {
    "sqlite": _access_and_open_lines(_open_lines_sqlite()),
    "postgresql": _access_and_open_lines(_open_lines_postgresql()),
}


def _open_line(values: Sequence[Any]) -> InvoiceLine:
    """An InvoiceLine from its JSON array (_OPEN_LINE_COLUMNS; dates as ISO text)."""
    (
        invoice_id,
        number,
        issue_date,
        due_date,
        currency,
        amount_minor,
        paid_minor,
        status,
        transfer_pending_until,
        hold_kind,
        hold_promised_date,
    ) = values
    return InvoiceLine(
        invoice_id,
        number,
        dt.date.fromisoformat(issue_date),
        dt.date.fromisoformat(due_date),
        currency,
        amount_minor,
        paid_minor,
        InvoiceStatus(status),
        _date_or_none(transfer_pending_until),
        True,
        None if hold_kind is None else CaseKind(hold_kind),
        _date_or_none(hold_promised_date),
    )


def _date_or_none(value: str | None) -> dt.date | None:
    return None if value is None else dt.date.fromisoformat(value)


def load_access(session: Session, secret: str | None, idle: dt.timedelta) -> PortalAccess | None:
    """The live session behind a cookie secret, or None (unknown, ended, idle or revoked)."""
    if not secret or len(secret) > 128:
        return None
    session_id = digest(secret)
    row = session.execute(_ACCESS_QUERY, {"session_id": session_id}).first()
    if row is None:
        return None
    return _accept(session, session_id, row, idle)


def load_access_and_open_invoices(
    session: Session, secret: str | None, idle: dt.timedelta
) -> tuple[PortalAccess | None, list[InvoiceLine]]:
    """The home page's data in one round trip: the session, its customer, their open invoices
    and the live case each is in.

    Same answers as load_access() followed by invoices.service.open_invoices(); the page
    most debtors land on saves a round trip to the database.
    """
    if not secret or len(secret) > 128:
        return None, []
    session_id = digest(secret)
    query = _ACCESS_AND_OPEN_INVOICES_QUERIES[session.get_bind().dialect.name]
    row = session.execute(query, {"session_id": session_id}).first()
    if row is None:
        return None, []
    access = _accept(session, session_id, row, idle)
    if access is None:
        return None, []
    # PostgreSQL's json_agg of no rows is NULL, SQLite's json_group_array an empty array.
    lines = [_open_line(values) for values in row[-1] or ()]
    if access.invoice_ids is not None:
        lines = [line for line in lines if line.id in access.invoice_ids]
    return access, lines


def _accept(
    session: Session, session_id: str, row: Sequence[Any], idle: dt.timedelta
) -> PortalAccess | None:
    """Checks a session row (its _SESSION_COLUMNS, then its customer)."""
    link_version, ended_at, last_seen_at, scope_id, language, embed_origin = row[:_SESSION_FIELDS]
    customer: Customer = row[_SESSION_FIELDS]
    now = clock.now()
    if ended_at is not None:
        return None
    if link_version != customer.link_version:
        return None
    if now - last_seen_at > idle:
        end_session(session, session_id)
        return None
    if now - last_seen_at > TOUCH_INTERVAL:
        session.execute(
            update(DebtorSession).where(DebtorSession.id == session_id).values(last_seen_at=now)
        )
    invoice_ids = None
    if scope_id is not None:
        scope = session.get(LinkScope, scope_id)
        invoice_ids = frozenset(scope.invoice_ids) if scope else frozenset()
    return PortalAccess(session_id, customer, invoice_ids, language, embed_origin)


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
