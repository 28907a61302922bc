"""Opening cases, deciding on them, and checking that plans and promises are kept.

Domain code: a Session and plain values in, ``CaseError`` (with a ``key``) out. Every change
records its timeline event in the same transaction; emails are the caller's job, after commit.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from portal import clock
from portal.cases import attachments as files
from portal.cases import policy as plans
from portal.cases.attachments import CheckedFile
from portal.cases.models import (
    LIVE_CASE_STATUSES,
    Agreement,
    Attachment,
    Case,
    CaseInvoice,
    CaseKind,
    CaseMessage,
    CaseStatus,
    DisputeReason,
    Instalment,
)
from portal.cases.policy import InstalmentState, ScheduledInstalment, Verdict
from portal.customers.models import Customer
from portal.db import on_rollback
from portal.holds.models import HoldKind
from portal.holds.service import place_hold, release_holds
from portal.invoices.models import Invoice, InvoiceStatus
from portal.payments.models import Payment, PaymentAllocation, PaymentStatus
from portal.settings import CaseSettings
from portal.timeline.models import Actor
from portal.timeline.service import record
from portal.users.models import Role, User

HOLD_SUBJECT = "case"
MESSAGE_MAX = 5000
NOTE_MAX = 2000
# Cases that still cover their invoices: an invoice is in at most one of them.
LIVE = LIVE_CASE_STATUSES
DECIDERS = (Role.ADMIN, Role.CREDIT_MANAGER)


class CaseError(Exception):
    """A case cannot be opened or changed as asked; ``key`` says why."""

    EMPTY_SELECTION = "empty_selection"
    UNKNOWN_INVOICE = "unknown_invoice"
    MIXED_CURRENCIES = "mixed_currencies"
    ALREADY_IN_CASE = "already_in_case"
    NOTHING_DUE = "nothing_due"
    MESSAGE_REQUIRED = "message_required"
    MESSAGE_TOO_LONG = "message_too_long"
    REASON_INVALID = "reason_invalid"
    DATE_PAST = "date_past"
    DATE_TOO_FAR = "date_too_far"
    WRONG_STATE = "wrong_state"
    AMOUNT_INVALID = "amount_invalid"
    INVOICE_NOT_IN_CASE = "invoice_not_in_case"
    OUTCOME_INVALID = "outcome_invalid"
    TOO_MANY_MESSAGES = "too_many_messages"

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass(frozen=True)
class AgreementInfo:
    """Where the debtor's agreement came from (recorded with its time)."""

    client_ip: str | None
    user_agent: str | None


# --- helpers ---------------------------------------------------------------------------------


def _event(
    session: Session,
    case: Case,
    action: str,
    actor: Actor,
    actor_id: str | None = None,
    **details: Any,
) -> None:
    record(
        session,
        company_id=case.company_id,
        customer_id=case.customer_id,
        actor=actor,
        actor_id=actor_id,
        action=action,
        subject_type="case",
        subject_id=case.id,
        details={"kind": case.kind.value, **details},
    )


def _user_id(user: User | None) -> str | None:
    return str(user.id) if user is not None else None


def _touch(case: Case) -> None:
    case.updated_at = clock.now()


def _selected(
    session: Session,
    customer: Customer,
    scope_invoice_ids: frozenset[int] | None,
    invoice_ids: Sequence[int],
) -> list[Invoice]:
    chosen = sorted(set(invoice_ids))
    if not chosen:
        raise CaseError(CaseError.EMPTY_SELECTION)
    if scope_invoice_ids is not None and not set(chosen) <= scope_invoice_ids:
        raise CaseError(CaseError.UNKNOWN_INVOICE)
    found = list(
        session.scalars(
            select(Invoice)
            .where(
                Invoice.id.in_(chosen),
                Invoice.customer_id == customer.id,
                Invoice.status == InvoiceStatus.OPEN,
            )
            .order_by(Invoice.due_date, Invoice.id)
        )
    )
    if len(found) != len(chosen):
        raise CaseError(CaseError.UNKNOWN_INVOICE)
    if len({i.currency for i in found}) != 1:
        raise CaseError(CaseError.MIXED_CURRENCIES)
    if sum(i.remaining_minor for i in found) <= 0:
        raise CaseError(CaseError.NOTHING_DUE)
    return found


def live_case_of(session: Session, invoice_ids: Sequence[int]) -> dict[int, Case]:
    """The live case (if any) each of these invoices is in."""
    if not invoice_ids:
        return {}
    rows = session.execute(
        select(CaseInvoice.invoice_id, Case)
        .join(Case, Case.id == CaseInvoice.case_id)
        .where(CaseInvoice.invoice_id.in_(sorted(set(invoice_ids))), Case.status.in_(LIVE))
    ).all()
    return {int(row[0]): row[1] for row in rows}


def _existing_or_free(session: Session, invoices: list[Invoice], kind: CaseKind) -> Case | None:
    """The same case again (double submit) or None; an overlap with another case is an error."""
    taken = live_case_of(session, [i.id for i in invoices])
    if not taken:
        return None
    cases = {case.id: case for case in taken.values()}
    if len(cases) == 1 and len(taken) == len(invoices):
        case = next(iter(cases.values()))
        if case.kind is kind and sorted(case.invoice_ids) == sorted(i.id for i in invoices):
            return case
    raise CaseError(CaseError.ALREADY_IN_CASE)


def assignee_for(session: Session, customer: Customer) -> User | None:
    """The customer's owner if active, else the next credit manager in turn (round-robin)."""
    if customer.owner_user_id is not None:
        owner = session.get(User, customer.owner_user_id)
        if owner is not None and owner.is_active and owner.role in DECIDERS:
            return owner
    managers = list(
        session.scalars(
            select(User)
            .where(User.role == Role.CREDIT_MANAGER, User.is_active.is_(True))
            .order_by(User.id)
        )
    )
    if not managers:
        return None
    ids = [m.id for m in managers]
    last = session.scalar(
        select(Case.assignee_id)
        .where(Case.company_id == customer.company_id, Case.assignee_id.in_(ids))
        .order_by(Case.id.desc())
        .limit(1)
    )
    if last is None:
        return managers[0]
    return managers[(ids.index(last) + 1) % len(managers)]


def _new_case(
    session: Session,
    customer: Customer,
    invoices: list[Invoice],
    kind: CaseKind,
    status: CaseStatus,
    *,
    assign: bool,
) -> Case:
    now = clock.now()
    assignee = assignee_for(session, customer) if assign else None
    case = Case(
        company_id=customer.company_id,
        customer_id=customer.id,
        kind=kind,
        status=status,
        currency=invoices[0].currency,
        total_minor=sum(i.remaining_minor for i in invoices),
        assignee_id=assignee.id if assignee else None,
        created_at=now,
        updated_at=now,
    )
    case.invoices = [CaseInvoice(invoice_id=i.id) for i in invoices]
    session.add(case)
    session.flush()
    return case


def _assign(session: Session, case: Case, customer: Customer) -> None:
    if case.assignee_id is None:
        assignee = assignee_for(session, customer)
        case.assignee_id = assignee.id if assignee else None


def _hold(session: Session, case: Case, kind: HoldKind, until: dt.date | None = None) -> None:
    place_hold(
        session,
        customer_id=case.customer_id,
        invoice_ids=case.invoice_ids,
        kind=kind,
        subject_type=HOLD_SUBJECT,
        subject_id=case.id,
        until=until,
    )


def _release(session: Session, case: Case) -> None:
    release_holds(session, subject_type=HOLD_SUBJECT, subject_id=case.id)


def _message_text(body: str, *, required: bool) -> str:
    text = body.strip()
    if required and not text:
        raise CaseError(CaseError.MESSAGE_REQUIRED)
    if len(text) > MESSAGE_MAX:
        raise CaseError(CaseError.MESSAGE_TOO_LONG)
    return text


def _add_message(
    session: Session,
    case: Case,
    body: str,
    author: Actor,
    user: User | None,
    checked: Sequence[CheckedFile],
    attachments_dir: Path | None,
) -> CaseMessage:
    now = clock.now()
    message = CaseMessage(
        case_id=case.id,
        author=author,
        user_id=user.id if user else None,
        body=body,
        created_at=now,
    )
    session.add(message)
    session.flush()
    for item in checked:
        assert attachments_dir is not None
        name = files.store(attachments_dir, item)
        on_rollback(session, functools.partial((attachments_dir / name).unlink, missing_ok=True))
        session.add(
            Attachment(
                case_id=case.id,
                message_id=message.id,
                filename=item.filename,
                content_type=item.content_type,
                size_bytes=len(item.data),
                storage_name=name,
                sha256=item.sha256,
                created_at=now,
            )
        )
    session.flush()
    return message


def _agree(session: Session, case: Case, info: AgreementInfo, terms: dict[str, Any]) -> None:
    session.add(
        Agreement(
            case_id=case.id,
            agreed_at=clock.now(),
            client_ip=(info.client_ip or "")[:64] or None,
            user_agent=(info.user_agent or "")[:255] or None,
            terms=terms,
        )
    )
    _event(
        session,
        case,
        "case.agreed",
        Actor.DEBTOR,
        ip=info.client_ip,
        user_agent=(info.user_agent or "")[:200],
        terms=terms,
    )


def _schedule_terms(case: Case) -> dict[str, Any]:
    return {
        "currency": case.currency,
        "instalments": [
            {"seq": i.seq, "due_date": i.due_date.isoformat(), "amount_minor": i.amount_minor}
            for i in case.instalments
        ],
    }


def _set_schedule(session: Session, case: Case, schedule: Sequence[ScheduledInstalment]) -> None:
    if case.instalments:
        case.instalments.clear()
        session.flush()  # the old rows go before the new ones take their numbers
    for item in schedule:
        case.instalments.append(
            Instalment(seq=item.seq, due_date=item.due_date, amount_minor=item.amount_minor)
        )


# --- disputes --------------------------------------------------------------------------------


def open_dispute(
    session: Session,
    customer: Customer,
    scope_invoice_ids: frozenset[int] | None,
    invoice_ids: Sequence[int],
    *,
    reason: str,
    message: str,
    attachments: Sequence[CheckedFile] = (),
    attachments_dir: Path | None = None,
    answer_days: int = 2,
) -> Case:
    """A dispute on these invoices: holds their reminders (those only), assigned to a human."""
    try:
        why = DisputeReason(reason)
    except ValueError:
        raise CaseError(CaseError.REASON_INVALID) from None
    body = _message_text(message, required=True)
    invoices = _selected(session, customer, scope_invoice_ids, invoice_ids)
    existing = _existing_or_free(session, invoices, CaseKind.DISPUTE)
    if existing is not None:
        return existing
    case = _new_case(session, customer, invoices, CaseKind.DISPUTE, CaseStatus.OPEN, assign=True)
    case.reason = why
    case.answer_by = clock.today_in(customer.timezone) + dt.timedelta(days=answer_days)
    _add_message(session, case, body, Actor.DEBTOR, None, attachments, attachments_dir)
    _hold(session, case, HoldKind.DISPUTE)
    _event(
        session,
        case,
        "dispute.opened",
        Actor.DEBTOR,
        reason=why.value,
        invoices=[i.number for i in invoices],
        attachments=len(attachments),
        assignee_id=case.assignee_id,
    )
    return case


def post_message(
    session: Session,
    case: Case,
    body: str,
    *,
    author: Actor,
    user: User | None = None,
    attachments: Sequence[CheckedFile] = (),
    attachments_dir: Path | None = None,
) -> CaseMessage:
    """A message in the case's thread, from the debtor or a user."""
    text = _message_text(body, required=True)
    message = _add_message(session, case, text, author, user, attachments, attachments_dir)
    _touch(case)
    _event(
        session,
        case,
        "case.message",
        author,
        _user_id(user),
        message_id=message.id,
        attachments=len(attachments),
    )
    return message


DISPUTE_OUTCOMES = ("cancel", "credit", "adjust", "reject")


def resolve_dispute(
    session: Session,
    case: Case,
    user: User,
    *,
    outcome: str,
    note: str,
    invoice_id: int | None = None,
    amount_minor: int | None = None,
) -> Case:
    """Cancel, credit or adjust an invoice of the dispute, or reject it; holds are released.

    ``note`` is told to the debtor (required when rejecting).
    """
    if case.kind is not CaseKind.DISPUTE or case.status is not CaseStatus.OPEN:
        raise CaseError(CaseError.WRONG_STATE)
    if outcome not in DISPUTE_OUTCOMES:
        raise CaseError(CaseError.OUTCOME_INVALID)
    text = _message_text(note, required=outcome == "reject")
    details: dict[str, Any] = {"outcome": outcome}
    if outcome != "reject":
        if invoice_id is None or invoice_id not in case.invoice_ids:
            raise CaseError(CaseError.INVOICE_NOT_IN_CASE)
        invoice = session.get(Invoice, invoice_id, with_for_update=True)
        assert invoice is not None
        if invoice.status is not InvoiceStatus.OPEN:
            raise CaseError(CaseError.WRONG_STATE)
        before = invoice.amount_minor
        if outcome == "cancel":
            invoice.status = InvoiceStatus.CANCELLED
        else:
            if amount_minor is None:
                raise CaseError(CaseError.AMOUNT_INVALID)
            if outcome == "credit":
                if not 0 < amount_minor <= invoice.remaining_minor:
                    raise CaseError(CaseError.AMOUNT_INVALID)
                invoice.amount_minor -= amount_minor
            else:
                if not invoice.paid_minor <= amount_minor < invoice.amount_minor:
                    raise CaseError(CaseError.AMOUNT_INVALID)
                invoice.amount_minor = amount_minor
            if invoice.amount_minor == invoice.paid_minor:
                invoice.status = (
                    InvoiceStatus.PAID if invoice.paid_minor else InvoiceStatus.CANCELLED
                )
        action = {"cancel": "cancelled", "credit": "credited", "adjust": "adjusted"}[outcome]
        record(
            session,
            company_id=case.company_id,
            customer_id=case.customer_id,
            actor=Actor.USER,
            actor_id=str(user.id),
            action=f"invoice.{action}",
            subject_type="invoice",
            subject_id=invoice.id,
            details={
                "number": invoice.number,
                "amount_before_minor": before,
                "amount_after_minor": invoice.amount_minor,
                "currency": invoice.currency,
                "case_id": case.id,
            },
        )
        details.update(number=invoice.number, amount_after_minor=invoice.amount_minor)
    case.status = CaseStatus.REJECTED if outcome == "reject" else CaseStatus.RESOLVED
    case.resolution = outcome
    case.resolution_note = text or None
    case.answer_by = None
    case.closed_at = clock.now()
    _touch(case)
    if text:
        _add_message(session, case, text, Actor.USER, user, (), None)
    _release(session, case)
    action = "dispute.rejected" if outcome == "reject" else "dispute.resolved"
    _event(session, case, action, Actor.USER, str(user.id), note=text, **details)
    return case


# --- payment plans ---------------------------------------------------------------------------


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
    invoices = _selected(session, customer, scope_invoice_ids, invoice_ids)
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
    body = _message_text(message, required=False)
    existing = _existing_or_free(session, preview.invoices, CaseKind.PLAN)
    if existing is not None:
        return existing
    within = preview.verdict.within_policy
    case = _new_case(
        session,
        customer,
        preview.invoices,
        CaseKind.PLAN,
        CaseStatus.ACTIVE if within else CaseStatus.REVIEW,
        assign=not within,
    )
    _set_schedule(session, case, preview.schedule)
    session.flush()
    if body:
        _add_message(session, case, body, Actor.DEBTOR, None, (), None)
    _hold(session, case, HoldKind.PAYMENT_PLAN)
    _agree(session, case, agreement, _schedule_terms(case))
    _event(
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
        _event(session, case, "plan.accepted", Actor.SYSTEM, "policy")
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
    text = _message_text(note, required=not accept)
    if accept:
        if case.status is not CaseStatus.REVIEW:
            raise CaseError(CaseError.WRONG_STATE)  # a counter-proposal waits for the debtor
        case.status = CaseStatus.ACTIVE
        case.accepted_at = clock.now()
        _event(session, case, "plan.accepted", Actor.USER, str(user.id), note=text)
    else:
        case.status = CaseStatus.REJECTED
        case.resolution = "rejected"
        case.resolution_note = text
        case.closed_at = clock.now()
        _release(session, case)
        _event(session, case, "plan.rejected", Actor.USER, str(user.id), note=text)
    case.answer_by = None
    _touch(case)
    if text:
        _add_message(session, case, text, Actor.USER, user, (), None)
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
    text = _message_text(note, required=False)
    try:
        schedule = plans.build_schedule(
            case.total_minor, first_date, today, count=count, monthly_minor=monthly_minor
        )
    except plans.PlanError as error:
        raise CaseError(error.key) from None
    _set_schedule(session, case, schedule)
    case.status = CaseStatus.COUNTERED
    case.answer_by = None
    _touch(case)
    session.flush()
    if text:
        _add_message(session, case, text, Actor.USER, user, (), None)
    _event(
        session,
        case,
        "plan.countered",
        Actor.USER,
        str(user.id),
        **_schedule_terms(case),
        note=text,
    )
    return case


def accept_counter_proposal(session: Session, case: Case, agreement: AgreementInfo) -> Case:
    """The debtor accepts the company's terms: the plan runs from now."""
    if case.kind is not CaseKind.PLAN or case.status is not CaseStatus.COUNTERED:
        raise CaseError(CaseError.WRONG_STATE)
    case.status = CaseStatus.ACTIVE
    case.accepted_at = clock.now()
    _touch(case)
    _agree(session, case, agreement, _schedule_terms(case))
    _event(session, case, "plan.accepted", Actor.DEBTOR)
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


# --- promises --------------------------------------------------------------------------------


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
    invoices = _selected(session, customer, scope_invoice_ids, invoice_ids)
    existing = _existing_or_free(session, invoices, CaseKind.PROMISE)
    if existing is not None:
        return existing
    case = _new_case(session, customer, invoices, CaseKind.PROMISE, CaseStatus.ACTIVE, assign=False)
    case.promised_date = promised_date
    case.accepted_at = clock.now()
    until = promised_date + dt.timedelta(days=policy.promise_grace_days)
    _hold(session, case, HoldKind.PROMISE, until)
    terms = {"promised_date": promised_date.isoformat(), "total_minor": case.total_minor}
    _agree(session, case, agreement, terms)
    _event(
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
                _assign(session, case, customer)
                case.answer_by = today + dt.timedelta(days=policy.review_days)
                _finish(session, case, CaseStatus.BROKEN, "plan.broken", instalment=missed)
                result.broken.append(case.id)
        else:
            assert case.promised_date is not None
            if _all_settled(session, case):
                _finish(session, case, CaseStatus.COMPLETED, "promise.kept")
                result.completed.append(case.id)
            elif case.promised_date + dt.timedelta(days=policy.promise_grace_days) < today:
                _assign(session, case, customer)
                case.answer_by = today + dt.timedelta(days=policy.review_days)
                _finish(session, case, CaseStatus.BROKEN, "promise.broken")
                result.broken.append(case.id)
    return result


def _finish(session: Session, case: Case, status: CaseStatus, action: str, **details: Any) -> None:
    case.status = status
    case.resolution = status.value
    if status is CaseStatus.COMPLETED:
        case.closed_at = clock.now()
    _touch(case)
    _release(session, case)
    _event(session, case, action, Actor.SYSTEM, "commitments", **details)


def close_broken(session: Session, case: Case, user: User, note: str) -> Case:
    """A credit manager has dealt with a broken plan or promise: it leaves the queue."""
    if case.status is not CaseStatus.BROKEN:
        raise CaseError(CaseError.WRONG_STATE)
    text = _message_text(note, required=True)
    case.status = CaseStatus.CLOSED
    case.answer_by = None
    case.closed_at = clock.now()
    case.resolution_note = text
    _touch(case)
    _event(session, case, "case.closed", Actor.USER, str(user.id), note=text)
    return case


# --- reading ---------------------------------------------------------------------------------


def customer_cases(session: Session, customer_id: int) -> list[Case]:
    """A customer's cases, newest first."""
    return list(
        session.scalars(
            select(Case)
            .where(Case.customer_id == customer_id)
            .options(selectinload(Case.invoices))
            .order_by(Case.created_at.desc(), Case.id.desc())
        )
    )


def get_case(session: Session, company_id: int, case_id: int) -> Case | None:
    case = session.get(Case, case_id)
    return case if case is not None and case.company_id == company_id else None


def debtor_case(
    session: Session, customer_id: int, case_id: int, scope_invoice_ids: frozenset[int] | None
) -> Case | None:
    """The customer's case (within the link's scope); None for anything else (404)."""
    case = session.get(Case, case_id)
    if case is None or case.customer_id != customer_id:
        return None
    if scope_invoice_ids is not None and not set(case.invoice_ids) <= scope_invoice_ids:
        return None
    return case


def thread(session: Session, case_id: int) -> list[CaseMessage]:
    return list(
        session.scalars(
            select(CaseMessage)
            .where(CaseMessage.case_id == case_id)
            .options(selectinload(CaseMessage.attachments))
            .order_by(CaseMessage.created_at, CaseMessage.id)
        )
    )


def agreements(session: Session, case_id: int) -> list[Agreement]:
    return list(
        session.scalars(
            select(Agreement).where(Agreement.case_id == case_id).order_by(Agreement.id)
        )
    )


def case_invoices(session: Session, case: Case) -> list[Invoice]:
    return list(
        session.scalars(
            select(Invoice)
            .where(Invoice.id.in_(case.invoice_ids))
            .order_by(Invoice.due_date, Invoice.id)
        )
    )


def attachment_for_case(session: Session, case: Case, attachment_id: int) -> Attachment | None:
    attachment = session.get(Attachment, attachment_id)
    return attachment if attachment is not None and attachment.case_id == case.id else None
