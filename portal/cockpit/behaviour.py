"""How each customer pays, and the risk segment that suggests.

Over the invoices that fell due in the 365 days up to the day computed (cancelled ones
aside): a paid invoice is late by the days between its due date and its last payment, an
open one past due by the days it is late so far. From those:

- average days late (whole days, on-time invoices count as 0) and the share paid late;
- broken promises (promised dates in that year) and disputes opened in that year.

``suggest`` turns the figures into low, medium or high risk with the reasons, as codes
with their values (``reason_text`` says them in words). ``recompute`` (the worker, each
night) stores every customer's figures and applies the suggestion to customers whose
segment no credit manager pinned, recording each change on the timeline. The strategic
flag is never touched: it stays a human choice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, cast

from sqlalchemy import Table, case, delete, func, insert, select, update
from sqlalchemy.orm import Session

from portal import clock
from portal.cases.models import Case, CaseKind
from portal.cockpit.commitments import broken_condition
from portal.cockpit.models import CustomerBehaviour
from portal.cockpit.sql import day_number, day_of, last_payment_days
from portal.customers.models import Customer, RiskSegment
from portal.invoices.models import Invoice, InvoiceStatus
from portal.timeline.models import Actor
from portal.timeline.service import record_many

YEAR = 365
MIN_HISTORY = 3  # invoices on record before a customer can be called low risk


@dataclasses.dataclass(frozen=True)
class Figures:
    invoices: int = 0
    late: int = 0
    days_late: int = 0  # summed
    broken_promises: int = 0
    disputes: int = 0

    @property
    def avg_days_late(self) -> int:
        return round(self.days_late / self.invoices) if self.invoices else 0

    @property
    def late_percent(self) -> int:
        return round(100 * self.late / self.invoices) if self.invoices else 0


def suggest(f: Figures) -> tuple[RiskSegment, list[list[Any]]]:
    """The segment these figures suggest, and why (pure)."""
    high: list[list[Any]] = []
    medium: list[list[Any]] = []
    if f.avg_days_late > 30:
        high.append(["avg_late", f.avg_days_late])
    elif f.avg_days_late > 7:
        medium.append(["avg_late", f.avg_days_late])
    if f.invoices >= MIN_HISTORY and f.late_percent >= 50:
        high.append(["late_share", f.late_percent])
    elif f.invoices >= MIN_HISTORY and f.late_percent >= 25:
        medium.append(["late_share", f.late_percent])
    if f.broken_promises >= 2:
        high.append(["broken", f.broken_promises])
    elif f.broken_promises == 1:
        medium.append(["broken", 1])
    if f.disputes >= 3:
        medium.append(["disputes", f.disputes])
    if high:
        return RiskSegment.HIGH, high
    if medium:
        return RiskSegment.MEDIUM, medium
    if f.invoices < MIN_HISTORY:
        return RiskSegment.MEDIUM, [["little_history", f.invoices]]
    return RiskSegment.LOW, [["on_time", 100 - f.late_percent]]


def figures(session: Session, company_id: int, today: dt.date) -> dict[int, Figures]:
    """Every customer's figures (customers without any history are left out)."""
    since = today - dt.timedelta(days=YEAR)
    paid_on = last_payment_days(
        session,
        Invoice.company_id == company_id,
        Invoice.due_date > since,
        Invoice.due_date <= today,
    )
    due_day = day_number(session, Invoice.due_date)
    lateness = case(
        (Invoice.status == InvoiceStatus.OPEN, day_of(today) - due_day),
        else_=func.coalesce(paid_on.c.day, due_day) - due_day,
    )
    late = case((lateness > 0, lateness), else_=0)
    rows = session.execute(
        select(
            Invoice.customer_id,
            func.count(),
            func.count().filter(lateness > 0),
            func.sum(late),
        )
        .select_from(Invoice)
        .outerjoin(paid_on, paid_on.c.invoice_id == Invoice.id)
        .where(
            Invoice.company_id == company_id,
            Invoice.status != InvoiceStatus.CANCELLED,
            Invoice.due_date > since,
            Invoice.due_date <= today,
            (Invoice.status == InvoiceStatus.PAID) | (Invoice.due_date < today),
        )
        .group_by(Invoice.customer_id)
    ).all()
    found = {cid: Figures(int(n), int(k), int(d or 0)) for cid, n, k, d in rows}
    cases = session.execute(
        select(
            Case.customer_id,
            func.count().filter(
                (Case.kind == CaseKind.PROMISE) & broken_condition() & (Case.promised_date > since)
            ),
            func.count().filter(
                (Case.kind == CaseKind.DISPUTE)
                & (Case.created_at >= dt.datetime.combine(since, dt.time(), tzinfo=dt.UTC))
            ),
        )
        .where(Case.company_id == company_id)
        .group_by(Case.customer_id)
    ).all()
    for cid, broken, disputes in cases:
        if broken or disputes:
            base = found.get(cid, Figures())
            found[cid] = dataclasses.replace(
                base, broken_promises=int(broken), disputes=int(disputes)
            )
    return found


def recompute(session: Session, company_id: int, today: dt.date) -> int:
    """Store every customer's figures, apply the suggestions; the number of segments changed."""
    now = clock.now()
    by_customer = figures(session, company_id, today)
    customers = session.execute(
        select(Customer.id, Customer.risk_segment, Customer.risk_segment_pinned).where(
            Customer.company_id == company_id
        )
    ).all()
    rows: list[dict[str, Any]] = []
    changes: dict[RiskSegment, list[int]] = {}
    events: list[dict[str, Any]] = []
    for customer_id, segment, pinned in customers:
        f = by_customer.get(customer_id, Figures())
        suggested, reasons = suggest(f)
        rows.append(
            {
                "customer_id": customer_id,
                "company_id": company_id,
                "paid_invoices": f.invoices,
                "late_invoices": f.late,
                "avg_days_late": f.avg_days_late,
                "broken_promises": f.broken_promises,
                "disputes": f.disputes,
                "suggested_segment": suggested.value,
                "reasons": reasons,
                "computed_at": now,
            }
        )
        if not pinned and suggested != segment:
            changes.setdefault(suggested, []).append(customer_id)
            events.append(
                {
                    "company_id": company_id,
                    "customer_id": customer_id,
                    "actor": Actor.SYSTEM,
                    "action": "customer.segment_suggested",
                    "subject_type": "customer",
                    "subject_id": customer_id,
                    "details": {
                        "changes": {"risk_segment": [str(segment), suggested.value]},
                        "reasons": reasons,
                    },
                }
            )
    table = cast(Table, CustomerBehaviour.__table__)
    session.execute(delete(table).where(table.c.company_id == company_id))
    for start in range(0, len(rows), 5000):
        session.execute(insert(table), rows[start : start + 5000])
    for segment, ids in changes.items():
        for start in range(0, len(ids), 5000):
            session.execute(
                update(Customer)
                .where(Customer.id.in_(ids[start : start + 5000]))
                .values(risk_segment=segment, updated_at=now)
                .execution_options(synchronize_session=False)
            )
    record_many(session, events)
    return len(events)


def behaviour_of(session: Session, customer_id: int) -> CustomerBehaviour | None:
    return session.get(CustomerBehaviour, customer_id)


def pin_segment(
    session: Session, customer: Customer, segment: RiskSegment | None, user_id: int
) -> None:
    """A credit manager's choice (``None``: let the nightly suggestion decide again)."""
    before = (customer.risk_segment.value, customer.risk_segment_pinned)
    if segment is None:
        customer.risk_segment_pinned = False
    else:
        customer.risk_segment = segment
        customer.risk_segment_pinned = True
    customer.updated_at = clock.now()
    after = (customer.risk_segment.value, customer.risk_segment_pinned)
    if before == after:
        return
    from portal.timeline.service import record

    record(
        session,
        company_id=customer.company_id,
        customer_id=customer.id,
        actor=Actor.USER,
        actor_id=str(user_id),
        action="customer.segment_pinned" if segment else "customer.segment_unpinned",
        subject_type="customer",
        subject_id=customer.id,
        details={"changes": {"risk_segment": [before[0], after[0]]}},
    )
