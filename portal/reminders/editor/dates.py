"""The dates a real customer would get their next reminders on, if nobody paid: the daily
planning's rules (the furthest step reached per invoice, one message a day for the most
advanced step, the minimum gap) played day by day from today. Business hours and
holidays move a message within its day only, so they are left out; so are pauses."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import clock
from portal.customers.models import Customer
from portal.invoices.models import Invoice, InvoiceStatus
from portal.reminders.models import Channel, ReminderMessageInvoice
from portal.reminders.scenarios import Scenario, ScenarioBook, Step, StepFacts

HORIZON_DAYS = 400


@dataclass(frozen=True)
class OpenInvoice:
    number: str
    due_date: dt.date
    currency: str
    remaining_minor: int
    last_days: int | None  # the last step's offset it already had


@dataclass(frozen=True)
class PlannedDate:
    on: dt.date
    step: Step
    invoices: tuple[str, ...]


def open_invoices(session: Session, customer: Customer) -> list[OpenInvoice]:
    last = (
        select(func.max(ReminderMessageInvoice.offset_days))
        .where(ReminderMessageInvoice.invoice_id == Invoice.id)
        .scalar_subquery()
    )
    rows = session.execute(
        select(
            Invoice.number,
            Invoice.due_date,
            Invoice.currency,
            Invoice.amount_minor - Invoice.paid_minor,
            last,
        )
        .where(
            Invoice.customer_id == customer.id,
            Invoice.status == InvoiceStatus.OPEN,
            Invoice.amount_minor > Invoice.paid_minor,
        )
        .order_by(Invoice.due_date, Invoice.id)
    ).all()
    return [OpenInvoice(str(n), d, str(c), int(r), lst) for n, d, c, r, lst in rows]


def scenario_of(book: ScenarioBook, customer: Customer) -> Scenario:
    return book.for_customer(
        customer.reminder_scenario, str(customer.risk_segment), bool(customer.strategic)
    )


def planned_dates(
    scenario: Scenario,
    min_gap_days: int,
    customer: Customer,
    invoices: list[OpenInvoice],
    today: dt.date | None = None,
) -> list[PlannedDate]:
    today = today or clock.now().astimezone(ZoneInfo(customer.timezone)).date()
    last = {invoice.number: invoice.last_days for invoice in invoices}
    last_message: dt.date | None = None
    planned: list[PlannedDate] = []
    for offset in range(HORIZON_DAYS):
        day = today + dt.timedelta(days=offset)
        best: Step | None = None
        at_step: dict[str, list[str]] = {}
        for invoice in invoices:
            step = scenario.latest_step(
                (day - invoice.due_date).days,
                last[invoice.number],
                StepFacts(
                    str(customer.risk_segment),
                    bool(customer.strategic),
                    invoice.currency,
                    invoice.remaining_minor,
                ),
            )
            if step is None:
                continue
            at_step.setdefault(step.key, []).append(invoice.number)
            if best is None or step.days > best.days:
                best = step
        if best is None:
            continue
        in_gap = last_message is not None and (day - last_message).days < min_gap_days
        if in_gap and best.channel is not Channel.TASK:
            continue
        planned.append(PlannedDate(day, best, tuple(at_step[best.key])))
        for number in at_step[best.key]:
            last[number] = best.days
        if best.channel is not Channel.TASK:
            last_message = day
    return planned
