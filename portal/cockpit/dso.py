"""Days sales outstanding, per currency, by two methods.

- **Simple formula** over N days (30 and 90): receivables at the end of the day seen from,
  divided by what was invoiced over the N days up to it, times N.
- **Count-back**: walk back day by day from that day, taking each day's invoicing off the
  receivables; DSO is the number of days it takes to account for all of them (the last day
  counts in part). Over a year of invoicing it stops and says "more than 365".

The month-by-month trend gives both at each of the last 12 month ends. Receivables on an
earlier day come from today's by taking back what was invoiced and adding back what was
paid since (an allocation counts from the later of its payment and its invoice), so the
trend costs two grouped queries, not one aging per month.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from portal.cockpit.aging import aging
from portal.cockpit.filters import Filters
from portal.cockpit.sql import date_of, day_number, day_of, utc_day_number, utc_midnight_after
from portal.invoices.models import Invoice, InvoiceStatus
from portal.payments.models import Payment, PaymentAllocation

WINDOWS = (30, 90)
COUNT_BACK_LIMIT = 365
TREND_MONTHS = 12
# Invoicing read back from the day seen from: the trend's year plus a count-back's year.
HISTORY_DAYS = 366 + COUNT_BACK_LIMIT + 31


@dataclasses.dataclass(frozen=True)
class DsoFigures:
    day: dt.date
    receivable_minor: int
    simple: dict[int, float | None]  # window in days -> DSO (None: nothing invoiced)
    count_back: float | None  # None: more than COUNT_BACK_LIMIT days


@dataclasses.dataclass(frozen=True)
class DsoPanel:
    currency: str
    now: DsoFigures
    trend: list[DsoFigures]  # oldest first, month ends


def simple_dso(receivable: int, invoiced: int, days: int) -> float | None:
    if invoiced <= 0:
        return None if receivable else 0.0
    return receivable * days / invoiced


def count_back_dso(receivable: int, daily_sales: list[int]) -> float | None:
    """``daily_sales[0]`` is the day seen from, then each day before it."""
    left = receivable
    for index, sales in enumerate(daily_sales):
        if left <= 0:
            return float(index)
        if sales >= left:
            return index + left / sales
        left -= sales
    return None if left > 0 else float(len(daily_sales))


def figures_on(day: dt.date, receivable: int, sales_by_day: dict[int, int]) -> DsoFigures:
    last = day_of(day)
    simple = {
        window: simple_dso(
            receivable, sum(sales_by_day.get(last - k, 0) for k in range(window)), window
        )
        for window in WINDOWS
    }
    daily = [sales_by_day.get(last - k, 0) for k in range(COUNT_BACK_LIMIT)]
    return DsoFigures(day, receivable, simple, count_back_dso(receivable, daily))


def month_ends(day: dt.date, months: int = TREND_MONTHS) -> list[dt.date]:
    """The last ``months`` month ends before ``day``, oldest first."""
    ends = []
    end = day.replace(day=1) - dt.timedelta(days=1)
    for _ in range(months):
        ends.append(end)
        end = end.replace(day=1) - dt.timedelta(days=1)
    return ends[::-1]


def _sales(session: Session, filters: Filters, start: int) -> dict[str, dict[int, int]]:
    day = day_number(session, Invoice.issue_date)
    rows = session.execute(
        select(Invoice.currency, day, func.sum(Invoice.amount_minor))
        .where(
            Invoice.company_id == filters.company_id,
            Invoice.status != InvoiceStatus.CANCELLED,
            Invoice.issue_date > date_of(start),
            Invoice.issue_date <= filters.as_of,
            filters.customers(Invoice.customer_id),
            filters.currencies(Invoice.currency),
        )
        .group_by(Invoice.currency, day)
    ).all()
    sales: dict[str, dict[int, int]] = defaultdict(dict)
    for currency, number, amount in rows:
        sales[currency][int(number)] = int(amount)
    return sales


def _paid(session: Session, filters: Filters, start: int) -> dict[str, dict[int, int]]:
    issued = day_number(session, Invoice.issue_date)
    received = utc_day_number(session, Payment.received_at)
    effective = case((issued > received, issued), else_=received)
    rows = session.execute(
        select(Invoice.currency, effective, func.sum(PaymentAllocation.amount_minor))
        .select_from(PaymentAllocation)
        .join(Payment, Payment.id == PaymentAllocation.payment_id)
        .join(Invoice, Invoice.id == PaymentAllocation.invoice_id)
        .where(
            Invoice.company_id == filters.company_id,
            Invoice.status != InvoiceStatus.CANCELLED,
            Invoice.issue_date <= filters.as_of,
            Payment.received_at < utc_midnight_after(filters.as_of),
            Payment.received_at >= utc_midnight_after(date_of(start)),
            filters.customers(Invoice.customer_id),
            filters.currencies(Invoice.currency),
        )
        .group_by(Invoice.currency, effective)
    ).all()
    paid: dict[str, dict[int, int]] = defaultdict(dict)
    for currency, number, amount in rows:
        paid[currency][int(number)] = paid[currency].get(int(number), 0) + int(amount)
    return paid


def dso(session: Session, filters: Filters) -> list[DsoPanel]:
    as_of = filters.as_of
    receivable = {row.currency: row.total_minor for row in aging(session, filters)}
    sales = _sales(session, filters, day_of(as_of) - HISTORY_DAYS)
    ends = month_ends(as_of)
    paid = _paid(session, filters, day_of(ends[0]))
    panels = []
    for currency in sorted(set(receivable) | set(sales)):
        by_day = sales.get(currency, {})
        paid_by_day = paid.get(currency, {})
        today_ar = receivable.get(currency, 0)
        trend = []
        for end in ends:
            since = day_of(end)
            invoiced_after = sum(v for d, v in by_day.items() if d > since)
            paid_after = sum(v for d, v in paid_by_day.items() if d > since)
            trend.append(figures_on(end, today_ar - invoiced_after + paid_after, by_day))
        panels.append(DsoPanel(currency, figures_on(as_of, today_ar, by_day), trend))
    return panels
