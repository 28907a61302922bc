"""Back-office queries: the customer list with its balances, and one customer's file.

Balances are computed by the database (SUM/COUNT grouped by customer and
currency), never by loading every invoice. Amounts in different currencies are
never added: a customer with invoices in two currencies has one row per currency.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

from sqlalchemy import Date, Select, case, func, literal, or_, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql.elements import ColumnElement

from portal import clock
from portal.customers.models import Customer
from portal.invoices import service as invoices
from portal.invoices.models import Invoice, InvoiceStatus
from portal.invoices.service import CurrencyTotals, InvoiceLine, Scope
from portal.timeline.models import Actor, TimelineEvent
from portal.timeline.service import customer_timeline
from portal.users.models import User

PAGE_SIZE = 50
SEARCH_MAX_LENGTH = 100
TIMELINE_LIMIT = 200
# First is the default: what a credit manager looks at first is what is late.
SORTS = ("overdue", "overdue_count", "open", "name")


@dataclass(frozen=True)
class CustomerBalance:
    """One row of the customer list: a customer and what it owes in one currency."""

    customer_id: int
    reference: str
    name: str
    currency: str | None  # None: nothing open
    open_minor: int
    overdue_minor: int
    open_count: int
    overdue_count: int


@dataclass(frozen=True)
class CustomerPage:
    rows: list[CustomerBalance]
    search: str
    sort: str
    page: int
    pages: int
    total: int
    per_page: int

    @property
    def first_index(self) -> int:
        return (self.page - 1) * self.per_page + 1 if self.rows else 0

    @property
    def last_index(self) -> int:
        return (self.page - 1) * self.per_page + len(self.rows)


def _today_by_customer(
    session: Session, company_id: int, company_timezone: str
) -> ColumnElement[Any]:
    """Today's date where each customer lives, as a SQL expression (CASE on the timezone).

    Whether an invoice is overdue depends on the debtor's timezone, as in the portal.
    """
    fallback = literal(clock.today_in(company_timezone), Date())
    zones = session.scalars(
        select(Customer.timezone).where(Customer.company_id == company_id).distinct()
    ).all()
    whens: dict[str, Any] = {}
    for zone in zones:
        try:
            whens[zone] = literal(clock.today_in(zone), Date())
        except (ZoneInfoNotFoundError, ValueError):
            continue  # an unknown zone falls back to the company's
    if not whens:
        return fallback
    return case(whens, value=Customer.timezone, else_=fallback)


def _balances_query(session: Session, company_id: int, company_timezone: str) -> Select[Any]:
    today = _today_by_customer(session, company_id, company_timezone)
    remaining = Invoice.amount_minor - Invoice.paid_minor
    overdue = Invoice.due_date < today
    per_currency = (
        select(
            Invoice.customer_id.label("customer_id"),
            Invoice.currency.label("currency"),
            func.sum(remaining).label("open_minor"),
            func.sum(case((overdue, remaining), else_=0)).label("overdue_minor"),
            func.count(Invoice.id).label("open_count"),
            func.sum(case((overdue, 1), else_=0)).label("overdue_count"),
        )
        .join(Customer, Customer.id == Invoice.customer_id)
        .where(
            Invoice.company_id == company_id,
            Invoice.status == InvoiceStatus.OPEN,
            Invoice.amount_minor > Invoice.paid_minor,
        )
        .group_by(Invoice.customer_id, Invoice.currency)
        .subquery("per_currency")
    )
    return (
        select(
            Customer.id.label("customer_id"),
            Customer.reference,
            Customer.name,
            per_currency.c.currency,
            func.coalesce(per_currency.c.open_minor, 0).label("open_minor"),
            func.coalesce(per_currency.c.overdue_minor, 0).label("overdue_minor"),
            func.coalesce(per_currency.c.open_count, 0).label("open_count"),
            func.coalesce(per_currency.c.overdue_count, 0).label("overdue_count"),
        )
        .outerjoin(per_currency, per_currency.c.customer_id == Customer.id)
        .where(Customer.company_id == company_id)
    )


def _ordering(query: Select[Any], sort: str) -> Select[Any]:
    columns = query.selected_columns
    by_name = (columns.name.asc(), columns.reference.asc())
    tie_break = (columns.customer_id.asc(), columns.currency.asc())
    if sort == "name":
        return query.order_by(*by_name, *tie_break)
    if sort == "open":
        return query.order_by(columns.open_minor.desc(), *by_name, *tie_break)
    if sort == "overdue_count":
        return query.order_by(
            columns.overdue_count.desc(), columns.overdue_minor.desc(), *by_name, *tie_break
        )
    return query.order_by(
        columns.overdue_minor.desc(), columns.overdue_count.desc(), *by_name, *tie_break
    )


def normalise_search(search: str | None) -> str:
    return " ".join((search or "").split())[:SEARCH_MAX_LENGTH]


def customer_balances(
    session: Session,
    company_id: int,
    *,
    company_timezone: str,
    search: str = "",
    sort: str = SORTS[0],
    page: int = 1,
    per_page: int = PAGE_SIZE,
) -> CustomerPage:
    """One page of customers with their open and overdue amounts, by name or reference."""
    search = normalise_search(search)
    sort = sort if sort in SORTS else SORTS[0]
    query = _balances_query(session, company_id, company_timezone)
    if search:
        query = query.where(
            or_(
                Customer.name.icontains(search, autoescape=True),
                Customer.reference.icontains(search, autoescape=True),
            )
        )
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    pages = max(1, math.ceil(total / per_page))
    page = min(max(page, 1), pages)
    rows = session.execute(_ordering(query, sort).limit(per_page).offset((page - 1) * per_page))
    return CustomerPage(
        rows=[
            CustomerBalance(
                customer_id=row.customer_id,
                reference=row.reference,
                name=row.name,
                currency=row.currency,
                # PostgreSQL's SUM of BIGINT is NUMERIC: back to exact integers.
                open_minor=int(row.open_minor),
                overdue_minor=int(row.overdue_minor),
                open_count=int(row.open_count),
                overdue_count=int(row.overdue_count),
            )
            for row in rows
        ],
        search=search,
        sort=sort,
        page=page,
        pages=pages,
        total=int(total),
        per_page=per_page,
    )


def get_customer(session: Session, company_id: int, customer_id: int) -> Customer | None:
    """The company's customer with its contacts; None for anything else (shown as 404)."""
    return session.scalar(
        select(Customer)
        .where(Customer.id == customer_id, Customer.company_id == company_id)
        .options(selectinload(Customer.contacts))
    )


# Paid and cancelled invoices shown on a customer's file: the rest stays in the timeline.
CLOSED_LIMIT = 50


@dataclass(frozen=True)
class CustomerFile:
    """What the back office shows of one customer."""

    customer: Customer
    today: dt.date
    open_invoices: list[InvoiceLine]
    totals: list[CurrencyTotals]
    timeline: list[TimelineEvent]
    # Emails of the users named by the timeline, by the actor_id they are recorded under.
    users: dict[str, str]
    timeline_truncated: bool
    # Open invoices whose reminders a user paused through some date from today on.
    paused_invoice_ids: frozenset[int] = frozenset()
    # The latest paid and cancelled invoices, newest due date first (CLOSED_LIMIT of them).
    closed_invoices: list[Invoice] = field(default_factory=list)
    closed_truncated: bool = False


def customer_file(session: Session, company_id: int, customer_id: int) -> CustomerFile | None:
    customer = get_customer(session, company_id, customer_id)
    if customer is None:
        return None
    today = clock.today_in(customer.timezone)
    open_items = invoices.open_invoices(session, Scope(customer.id))
    closed = list(
        session.scalars(
            select(Invoice)
            .where(Invoice.customer_id == customer.id, Invoice.status != InvoiceStatus.OPEN)
            .order_by(Invoice.due_date.desc(), Invoice.id.desc())
            .limit(CLOSED_LIMIT + 1)
        )
    )
    events = customer_timeline(session, customer.id, limit=TIMELINE_LIMIT + 1)
    user_ids = {
        int(event.actor_id)
        for event in events
        if event.actor is Actor.USER and event.actor_id and event.actor_id.isdigit()
    }
    users: dict[str, str] = {}
    if user_ids:
        users = {
            str(user_id): email
            for user_id, email in session.execute(
                select(User.id, User.email).where(User.id.in_(sorted(user_ids)))
            )
        }
    return CustomerFile(
        customer=customer,
        today=today,
        open_invoices=open_items,
        totals=invoices.summarise(open_items, today),
        timeline=events[:TIMELINE_LIMIT],
        users=users,
        timeline_truncated=len(events) > TIMELINE_LIMIT,
        closed_invoices=closed[:CLOSED_LIMIT],
        closed_truncated=len(closed) > CLOSED_LIMIT,
        paused_invoice_ids=frozenset(
            session.scalars(
                select(Invoice.id).where(
                    Invoice.customer_id == customer.id,
                    Invoice.status == InvoiceStatus.OPEN,
                    Invoice.reminders_paused_until >= today,
                )
            )
        ),
    )
