"""The back office's work queues: oldest first, with their due dates and counts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.cases.models import Case, CaseInvoice, CaseKind, CaseStatus
from portal.customers.models import Customer
from portal.invoices.models import Invoice
from portal.payments import requests as payment_requests
from portal.payments.models import PaymentRequest
from portal.reminders.models import ReminderTask, TaskStatus
from portal.timeline.models import TimelineEvent
from portal.users.models import User

QUEUES = ("disputes", "plans", "transfers", "broken")
QUEUE_FILTERS = {
    "disputes": (CaseKind.DISPUTE.value, (CaseStatus.OPEN,)),
    "plans": (CaseKind.PLAN.value, (CaseStatus.REVIEW, CaseStatus.COUNTERED)),
    "broken": (None, (CaseStatus.BROKEN,)),
}


@dataclass(frozen=True)
class QueueRow:
    case: Case
    customer_name: str
    invoice_numbers: list[str]
    oldest_due: dt.date | None
    assignee: str | None


@dataclass(frozen=True)
class TransferRow:
    request: PaymentRequest
    customer_id: int
    customer_name: str
    invoice_numbers: list[str]
    # Invoices of this transfer the debtor disputes: confirming may settle what is contested.
    disputed_numbers: list[str] = field(default_factory=list)


def _pairs(rows: Any) -> dict[Any, Any]:
    return {row[0]: row[1] for row in rows}


def _case_query(company_id: int, queue: str):  # type: ignore[no-untyped-def]
    kind, statuses = QUEUE_FILTERS[queue]
    query = select(Case).where(Case.company_id == company_id, Case.status.in_(statuses))
    if kind is not None:
        query = query.where(Case.kind == kind)
    return query


def case_queue(session: Session, company_id: int, queue: str) -> list[QueueRow]:
    """Oldest first: the case opened (or broken) longest ago leads."""
    cases = list(
        session.scalars(_case_query(company_id, queue).order_by(Case.updated_at, Case.id))
        if queue == "broken"
        else session.scalars(_case_query(company_id, queue).order_by(Case.created_at, Case.id))
    )
    if not cases:
        return []
    ids = [c.id for c in cases]
    numbers: dict[int, list[str]] = {}
    oldest: dict[int, dt.date] = {}
    for case_id, number, due in session.execute(
        select(CaseInvoice.case_id, Invoice.number, Invoice.due_date)
        .join(Invoice, Invoice.id == CaseInvoice.invoice_id)
        .where(CaseInvoice.case_id.in_(ids))
        .order_by(Invoice.due_date, Invoice.number)
    ):
        numbers.setdefault(case_id, []).append(number)
        oldest.setdefault(case_id, due)
    names = _pairs(
        session.execute(
            select(Customer.id, Customer.name).where(
                Customer.id.in_({c.customer_id for c in cases})
            )
        )
    )
    assignee_ids = {c.assignee_id for c in cases if c.assignee_id is not None}
    emails = (
        _pairs(session.execute(select(User.id, User.email).where(User.id.in_(assignee_ids))))
        if assignee_ids
        else {}
    )
    return [
        QueueRow(
            case=c,
            customer_name=names.get(c.customer_id, ""),
            invoice_numbers=numbers.get(c.id, []),
            oldest_due=oldest.get(c.id),
            assignee=emails.get(c.assignee_id) if c.assignee_id is not None else None,
        )
        for c in cases
    ]


def transfer_queue(session: Session, company_id: int) -> list[TransferRow]:
    """Declared transfers to confirm (the payments module's list), oldest declaration first."""
    declared = payment_requests.declared_transfers_to_confirm(session, company_id)
    if not declared:
        return []
    names = _pairs(
        session.execute(
            select(Customer.id, Customer.name).where(
                Customer.id.in_({r.customer_id for r in declared})
            )
        )
    )
    invoice_ids = {i for r in declared for i in r.invoice_ids}
    numbers = _pairs(
        session.execute(select(Invoice.id, Invoice.number).where(Invoice.id.in_(invoice_ids)))
    )
    disputed = set(
        session.scalars(
            select(CaseInvoice.invoice_id)
            .join(Case, Case.id == CaseInvoice.case_id)
            .where(
                CaseInvoice.invoice_id.in_(sorted(invoice_ids)),
                Case.kind == CaseKind.DISPUTE,
                Case.status == CaseStatus.OPEN,
            )
        )
    )
    return [
        TransferRow(
            request=r,
            customer_id=r.customer_id,
            customer_name=names.get(r.customer_id, ""),
            invoice_numbers=[numbers[i] for i in r.invoice_ids if i in numbers],
            disputed_numbers=[numbers[i] for i in r.invoice_ids if i in disputed and i in numbers],
        )
        for r in declared
    ]


@dataclass(frozen=True)
class QueueCount:
    name: str
    count: int
    oldest: dt.date | None  # the earliest answer-by date in the queue


def counts(session: Session, company_id: int) -> list[QueueCount]:
    """How many items wait in each queue, and the earliest date one should be answered by."""
    out = []
    for name in QUEUES:
        if name == "transfers":
            declared = payment_requests.declared_transfers_to_confirm(session, company_id)
            dates = [r.grace_until for r in declared if r.grace_until is not None]
            out.append(QueueCount(name, len(declared), min(dates) if dates else None))
            continue
        sub = _case_query(company_id, name).subquery()
        count, oldest = session.execute(select(func.count(), func.min(sub.c.answer_by))).one()
        out.append(QueueCount(name, int(count), oldest))
    # The reminder engine's call tasks (their own page, /admin/tasks), oldest first too.
    count, first = session.execute(
        select(func.count(), func.min(ReminderTask.created_at)).where(
            ReminderTask.company_id == company_id, ReminderTask.status == TaskStatus.OPEN
        )
    ).one()
    out.append(QueueCount("tasks", int(count), first.date() if first is not None else None))
    return out


def proposed_violations(session: Session, case: Case) -> list[str]:
    """The policy rules (policy.py keys) the debtor's plan broke when they proposed it: what
    the portal told them before it went to review."""
    details = session.scalar(
        select(TimelineEvent.details)
        .where(
            TimelineEvent.subject_type == "case",
            TimelineEvent.subject_id == str(case.id),
            TimelineEvent.action == "plan.proposed",
        )
        .order_by(TimelineEvent.id.desc())
        .limit(1)
    )
    if not isinstance(details, dict):
        return []
    return [str(key) for key in details.get("violations") or []]
