"""Promises to pay, and the daily check that plans and promises are kept (or broken)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from portal import clock
from portal.cases import policy as plans
from portal.cases.core import (
    AgreementInfo,
    CaseError,
    assign_if_unassigned,
    case_event,
    existing_or_free,
    hold_invoices,
    message_text,
    new_case,
    record_agreement,
    release_invoices,
    selected_invoices,
    touch,
)
from portal.cases.models import (
    Case,
    CaseKind,
    CaseStatus,
)
from portal.cases.payment_plans import instalment_states
from portal.customers.models import Customer
from portal.holds.models import HoldKind
from portal.invoices.models import Invoice, InvoiceStatus
from portal.settings import CaseSettings
from portal.timeline.models import Actor
from portal.users.models import User


def promise_to_pay(
    session: Session,
    customer: Customer,
    scope_invoice_ids: frozenset[int] | None,
    invoice_ids: Sequence[int],
    *,
    promised_date: dt.date,
    today: dt.date,
    policy: CaseSettings,
    agreement: AgreementInfo,
) -> Case:
    """Reminders of these invoices pause until the promised date plus the grace period."""
    if promised_date < today:
        raise CaseError(CaseError.DATE_PAST)
    if (promised_date - today).days > policy.promise_max_days:
        raise CaseError(CaseError.DATE_TOO_FAR)
    invoices = selected_invoices(session, customer, scope_invoice_ids, invoice_ids)
    existing = existing_or_free(session, invoices, CaseKind.PROMISE)
    if existing is not None:
        return existing
    case = new_case(session, customer, invoices, CaseKind.PROMISE, CaseStatus.ACTIVE, assign=False)
    case.promised_date = promised_date
    case.accepted_at = clock.now()
    until = promised_date + dt.timedelta(days=policy.promise_grace_days)
    hold_invoices(session, case, HoldKind.PROMISE, until)
    terms = {"promised_date": promised_date.isoformat(), "total_minor": case.total_minor}
    record_agreement(session, case, agreement, terms)
    case_event(
        session,
        case,
        "promise.made",
        Actor.DEBTOR,
        invoices=[i.number for i in invoices],
        promised_date=promised_date.isoformat(),
        hold_until=until.isoformat(),
    )
    return case


# --- commitments -----------------------------------------------------------------------------


@dataclass
class CheckResult:
    completed: list[int] = field(default_factory=list)
    broken: list[int] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return len(self.completed) + len(self.broken)


def _all_settled(session: Session, case: Case) -> bool:
    open_left = session.scalar(
        select(func.count(Invoice.id)).where(
            Invoice.id.in_(case.invoice_ids),
            Invoice.status == InvoiceStatus.OPEN,
            Invoice.amount_minor > Invoice.paid_minor,
        )
    )
    return not open_left


def check_commitments(
    session: Session, today: dt.date, policy: CaseSettings | None = None
) -> CheckResult:
    """Settle completed plans and kept promises; break missed ones (a case for a human).

    Holds are released either way, so normal reminders resume. Idempotent: a case it
    changed is no longer active, so a second run finds nothing more to do.
    """
    policy = policy or CaseSettings()
    result = CheckResult()
    active = list(
        session.scalars(
            select(Case)
            .where(
                Case.status == CaseStatus.ACTIVE, Case.kind.in_((CaseKind.PLAN, CaseKind.PROMISE))
            )
            .options(selectinload(Case.invoices), selectinload(Case.instalments))
            .order_by(Case.id)
            .with_for_update(skip_locked=True)
        )
    )
    for case in active:
        customer = session.get(Customer, case.customer_id)
        assert customer is not None
        if case.kind is CaseKind.PLAN:
            states = instalment_states(session, case)
            if all(s.paid for s in states) or _all_settled(session, case):
                _finish(session, case, CaseStatus.COMPLETED, "plan.completed")
                result.completed.append(case.id)
                continue
            missed = plans.first_missed(states, today, policy.plan_grace_days)
            if missed is not None:
                assign_if_unassigned(session, case, customer)
                case.answer_by = today + dt.timedelta(days=policy.review_days)
                _finish(session, case, CaseStatus.BROKEN, "plan.broken", instalment=missed)
                result.broken.append(case.id)
        else:
            assert case.promised_date is not None
            if _all_settled(session, case):
                _finish(session, case, CaseStatus.COMPLETED, "promise.kept")
                result.completed.append(case.id)
            elif case.promised_date + dt.timedelta(days=policy.promise_grace_days) < today:
                assign_if_unassigned(session, case, customer)
                case.answer_by = today + dt.timedelta(days=policy.review_days)
                _finish(session, case, CaseStatus.BROKEN, "promise.broken")
                result.broken.append(case.id)
    return result


def _finish(session: Session, case: Case, status: CaseStatus, action: str, **details: Any) -> None:
    case.status = status
    case.resolution = status.value
    if status is CaseStatus.COMPLETED:
        case.closed_at = clock.now()
    touch(case)
    release_invoices(session, case)
    case_event(session, case, action, Actor.SYSTEM, "commitments", **details)


def close_broken(session: Session, case: Case, user: User, note: str) -> Case:
    """A credit manager has dealt with a broken plan or promise: it leaves the queue."""
    if case.status is not CaseStatus.BROKEN:
        raise CaseError(CaseError.WRONG_STATE)
    text = message_text(note, required=True)
    case.status = CaseStatus.CLOSED
    case.answer_by = None
    case.closed_at = clock.now()
    case.resolution_note = text
    touch(case)
    case_event(session, case, "case.closed", Actor.USER, str(user.id), note=text)
    return case
