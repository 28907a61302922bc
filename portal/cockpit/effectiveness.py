"""Do the reminders work? For each scenario step and channel: of the invoices a sent
message reminded about, the share paid in full within 7 days after it was sent.

An invoice is paid on the (UTC) day of the last payment allocated to it, and counts only
if it is paid now. Messages sent less than 7 days before the day seen from are left out:
their week is not over yet.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from portal.cockpit.filters import Filters
from portal.cockpit.sql import last_payment_days, utc_day_number, utc_midnight_after
from portal.invoices.models import Invoice
from portal.payments.models import PaymentAllocation
from portal.reminders.models import MessageStatus, ReminderMessage, ReminderMessageInvoice

WITHIN_DAYS = 7


@dataclasses.dataclass(frozen=True)
class StepEffect:
    scenario: str
    step: str
    channel: str
    reminded: int
    paid_within: int

    @property
    def percent(self) -> int | None:
        return round(100 * self.paid_within / self.reminded) if self.reminded else None


def effectiveness(session: Session, filters: Filters) -> list[StepEffect]:
    window_closed = utc_midnight_after(filters.as_of - dt.timedelta(days=WITHIN_DAYS + 1))
    paid_on = last_payment_days(
        session,
        Invoice.company_id == filters.company_id,
        PaymentAllocation.invoice_id.in_(select(ReminderMessageInvoice.invoice_id)),
    )
    sent_day = utc_day_number(session, ReminderMessage.sent_at)
    within = and_(paid_on.c.day >= sent_day, paid_on.c.day <= sent_day + WITHIN_DAYS)
    rows = session.execute(
        select(
            ReminderMessage.scenario,
            ReminderMessage.step,
            ReminderMessage.channel,
            func.count(),
            func.count(paid_on.c.invoice_id).filter(within),
        )
        .select_from(ReminderMessage)
        .join(ReminderMessageInvoice, ReminderMessageInvoice.message_id == ReminderMessage.id)
        .join(Invoice, Invoice.id == ReminderMessageInvoice.invoice_id)
        .outerjoin(paid_on, paid_on.c.invoice_id == ReminderMessageInvoice.invoice_id)
        .where(
            ReminderMessage.company_id == filters.company_id,
            ReminderMessage.status == MessageStatus.SENT,
            ReminderMessage.sent_at < window_closed,
            filters.customers(ReminderMessage.customer_id),
            filters.currencies(Invoice.currency),
        )
        .group_by(ReminderMessage.scenario, ReminderMessage.step, ReminderMessage.channel)
        .order_by(ReminderMessage.scenario, ReminderMessage.step, ReminderMessage.channel)
    ).all()
    return [
        StepEffect(scenario, step, str(channel), int(n), int(paid))
        for scenario, step, channel, n, paid in rows
    ]
