"""Payment plans: previewed against the policy, proposed, decided, countered, then paid."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import clock
from portal.cases import policy as plans
from portal.cases.core import (
    AgreementInfo,
    CaseError,
    add_message,
    case_event,
    existing_or_free,
    hold_invoices,
    message_text,
    new_case,
    record_agreement,
    release_invoices,
    schedule_terms,
    selected_invoices,
    set_schedule,
    touch,
)
from portal.cases.models import (
    Case,
    CaseKind,
    CaseStatus,
)
from portal.cases.policy import InstalmentState, ScheduledInstalment, Verdict
from portal.customers.models import Customer
from portal.holds.models import HoldKind
from portal.invoices.models import Invoice, InvoiceStatus
from portal.payments.models import Payment, PaymentAllocation, PaymentStatus
from portal.settings import CaseSettings
from portal.timeline.models import Actor
from portal.users.models import User


@dataclass(frozen=True)
class PlanPreview:
    invoices: list[Invoice]
    currency: str
    total_minor: int
    schedule: list[ScheduledInstalment]
    verdict: Verdict


def preview_plan(
    session: Session,
    customer: Customer,
    scope_invoice_ids: frozenset[int] | None,
    invoice_ids: Sequence[int],
    *,
    first_date: dt.date,
    today: dt.date,
    policy: CaseSettings,
    company_currency: str,
    count: int | None = None,
    monthly_minor: int | None = None,
) -> PlanPreview:
    """The schedule these choices give and what the policy says of it; changes nothing."""
    invoices = selected_invoices(session, customer, scope_invoice_ids, invoice_ids)
    total = sum(i.remaining_minor for i in invoices)
    try:
        schedule = plans.build_schedule(
            total, first_date, today, count=count, monthly_minor=monthly_minor
        )
    except plans.PlanError as error:
        raise CaseError(error.key) from None
    verdict = plans.evaluate(
        schedule,
        total_minor=total,
        currency=invoices[0].currency,
        risk_segment=customer.risk_segment.value,
        today=today,
        policy=policy,
        company_currency=company_currency,
    )
    return PlanPreview(invoices, invoices[0].currency, total, schedule, verdict)


def propose_plan(
    session: Session,
    customer: Customer,
    scope_invoice_ids: frozenset[int] | None,
    invoice_ids: Sequence[int],
    *,
    first_date: dt.date,
    today: dt.date,
    policy: CaseSettings,
    company_currency: str,
    agreement: AgreementInfo,
    count: int | None = None,
    monthly_minor: int | None = None,
    message: str = "",
) -> Case:
    """Within policy: active at once. Outside: under review, answer expected by ``answer_by``.

    Either way the plan's invoices are held, and the debtor's agreement is recorded.
    """
    preview = preview_plan(
        session,
        customer,
        scope_invoice_ids,
        invoice_ids,
        first_date=first_date,
        today=today,
        policy=policy,
        company_currency=company_currency,
        count=count,
        monthly_minor=monthly_minor,
    )
    body = message_text(message, required=False)
    existing = existing_or_free(session, preview.invoices, CaseKind.PLAN)
    if existing is not None:
        return existing
    within = preview.verdict.within_policy
    case = new_case(
        session,
        customer,
        preview.invoices,
        CaseKind.PLAN,
        CaseStatus.ACTIVE if within else CaseStatus.REVIEW,
        assign=not within,
    )
    set_schedule(session, case, preview.schedule)
    session.flush()
    if body:
        add_message(session, case, body, Actor.DEBTOR, None, (), None)
    hold_invoices(session, case, HoldKind.PAYMENT_PLAN)
    record_agreement(session, case, agreement, schedule_terms(case))
    case_event(
        session,
        case,
        "plan.proposed",
        Actor.DEBTOR,
        invoices=[i.number for i in preview.invoices],
        total_minor=preview.total_minor,
        currency=preview.currency,
        instalments=len(preview.schedule),
        violations=list(preview.verdict.violations),
    )
    if within:
        case.accepted_at = clock.now()
        case_event(session, case, "plan.accepted", Actor.SYSTEM, "policy")
    else:
        case.answer_by = today + dt.timedelta(days=policy.review_days)
    return case


def decide_plan(session: Session, case: Case, user: User, *, accept: bool, note: str = "") -> Case:
    """A credit manager accepts the plan under review, or rejects it (holds released)."""
    if case.kind is not CaseKind.PLAN or case.status not in (
        CaseStatus.REVIEW,
        CaseStatus.COUNTERED,
    ):
        raise CaseError(CaseError.WRONG_STATE)
    text = message_text(note, required=not accept)
    if accept:
        if case.status is not CaseStatus.REVIEW:
            raise CaseError(CaseError.WRONG_STATE)  # a counter-proposal waits for the debtor
        case.status = CaseStatus.ACTIVE
        case.accepted_at = clock.now()
        case_event(session, case, "plan.accepted", Actor.USER, str(user.id), note=text)
    else:
        case.status = CaseStatus.REJECTED
        case.resolution = "rejected"
        case.resolution_note = text
        case.closed_at = clock.now()
        release_invoices(session, case)
        case_event(session, case, "plan.rejected", Actor.USER, str(user.id), note=text)
    case.answer_by = None
    touch(case)
    if text:
        add_message(session, case, text, Actor.USER, user, (), None)
    return case


def counter_propose(
    session: Session,
    case: Case,
    user: User,
    *,
    first_date: dt.date,
    today: dt.date,
    count: int | None = None,
    monthly_minor: int | None = None,
    note: str = "",
) -> Case:
    """Other terms for a plan under review; the debtor may accept them in the portal."""
    if case.kind is not CaseKind.PLAN or case.status not in (
        CaseStatus.REVIEW,
        CaseStatus.COUNTERED,
    ):
        raise CaseError(CaseError.WRONG_STATE)
    text = message_text(note, required=False)
    try:
        schedule = plans.build_schedule(
            case.total_minor, first_date, today, count=count, monthly_minor=monthly_minor
        )
    except plans.PlanError as error:
        raise CaseError(error.key) from None
    set_schedule(session, case, schedule)
    case.status = CaseStatus.COUNTERED
    case.answer_by = None
    touch(case)
    session.flush()
    if text:
        add_message(session, case, text, Actor.USER, user, (), None)
    case_event(
        session,
        case,
        "plan.countered",
        Actor.USER,
        str(user.id),
        **schedule_terms(case),
        note=text,
    )
    return case


def accept_counter_proposal(session: Session, case: Case, agreement: AgreementInfo) -> Case:
    """The debtor accepts the company's terms: the plan runs from now."""
    if case.kind is not CaseKind.PLAN or case.status is not CaseStatus.COUNTERED:
        raise CaseError(CaseError.WRONG_STATE)
    case.status = CaseStatus.ACTIVE
    case.accepted_at = clock.now()
    touch(case)
    record_agreement(session, case, agreement, schedule_terms(case))
    case_event(session, case, "plan.accepted", Actor.DEBTOR)
    return case


def paid_since_accepted(session: Session, case: Case) -> int:
    """What payments recorded since the plan was accepted allocated to its invoices."""
    if case.accepted_at is None:
        return 0
    total = session.scalar(
        select(func.coalesce(func.sum(PaymentAllocation.amount_minor), 0))
        .join(Payment, Payment.id == PaymentAllocation.payment_id)
        .where(
            PaymentAllocation.invoice_id.in_(case.invoice_ids),
            Payment.created_at >= case.accepted_at,
            Payment.status != PaymentStatus.REFUNDED,
        )
    )
    return int(total or 0)


def instalment_states(session: Session, case: Case) -> list[InstalmentState]:
    """The schedule with what is paid of each instalment (payments cover them in order)."""
    paid = paid_since_accepted(session, case)
    return plans.cover([(i.seq, i.due_date, i.amount_minor) for i in case.instalments], paid)


@dataclass(frozen=True)
class NextInstalment:
    """What to pay next on a plan: for the card and transfer payment pages."""

    case_id: int
    seq: int
    due_date: dt.date
    amount_minor: int
    currency: str
    invoice_ids: list[int]


def next_instalment(session: Session, customer_id: int, case_id: int) -> NextInstalment | None:
    """The first instalment not fully paid of the customer's active plan, or None."""
    case = session.get(Case, case_id)
    if (
        case is None
        or case.customer_id != customer_id
        or case.kind is not CaseKind.PLAN
        or case.status is not CaseStatus.ACTIVE
    ):
        return None
    open_ids = list(
        session.scalars(
            select(Invoice.id)
            .where(Invoice.id.in_(case.invoice_ids), Invoice.status == InvoiceStatus.OPEN)
            .order_by(Invoice.due_date, Invoice.id)
        )
    )
    for state in instalment_states(session, case):
        if not state.paid and open_ids:
            return NextInstalment(
                case.id, state.seq, state.due_date, state.remaining_minor, case.currency, open_ids
            )
    return None
