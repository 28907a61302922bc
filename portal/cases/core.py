"""What every case operation shares: errors, the case's timeline events, holds, messages.

Domain code: a Session and plain values in, ``CaseError`` (with a ``key``) out. Every change
records its timeline event in the same transaction; emails are the caller's job, after commit.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import clock
from portal.cases import attachments as files
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
    Instalment,
)
from portal.cases.policy import ScheduledInstalment
from portal.customers.models import Customer
from portal.db import on_rollback
from portal.holds.models import HoldKind
from portal.holds.service import place_hold, release_holds
from portal.invoices.models import Invoice, InvoiceStatus
from portal.timeline.models import Actor
from portal.timeline.service import record
from portal.users.models import Role, User

HOLD_SUBJECT = "case"
MESSAGE_MAX = 5000
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


def case_event(
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


def user_id_of(user: User | None) -> str | None:
    return str(user.id) if user is not None else None


def touch(case: Case) -> None:
    case.updated_at = clock.now()


def selected_invoices(
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


def existing_or_free(session: Session, invoices: list[Invoice], kind: CaseKind) -> Case | None:
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


def new_case(
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


def assign_if_unassigned(session: Session, case: Case, customer: Customer) -> None:
    if case.assignee_id is None:
        assignee = assignee_for(session, customer)
        case.assignee_id = assignee.id if assignee else None


def hold_invoices(
    session: Session, case: Case, kind: HoldKind, until: dt.date | None = None
) -> None:
    place_hold(
        session,
        customer_id=case.customer_id,
        invoice_ids=case.invoice_ids,
        kind=kind,
        subject_type=HOLD_SUBJECT,
        subject_id=case.id,
        until=until,
    )


def release_invoices(session: Session, case: Case) -> None:
    release_holds(session, subject_type=HOLD_SUBJECT, subject_id=case.id)


def message_text(body: str, *, required: bool) -> str:
    text = body.strip()
    if required and not text:
        raise CaseError(CaseError.MESSAGE_REQUIRED)
    if len(text) > MESSAGE_MAX:
        raise CaseError(CaseError.MESSAGE_TOO_LONG)
    return text


def add_message(
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


def record_agreement(
    session: Session, case: Case, info: AgreementInfo, terms: dict[str, Any]
) -> None:
    session.add(
        Agreement(
            case_id=case.id,
            agreed_at=clock.now(),
            client_ip=(info.client_ip or "")[:64] or None,
            user_agent=(info.user_agent or "")[:255] or None,
            terms=terms,
        )
    )
    case_event(
        session,
        case,
        "case.agreed",
        Actor.DEBTOR,
        ip=info.client_ip,
        user_agent=(info.user_agent or "")[:200],
        terms=terms,
    )


def schedule_terms(case: Case) -> dict[str, Any]:
    return {
        "currency": case.currency,
        "instalments": [
            {"seq": i.seq, "due_date": i.due_date.isoformat(), "amount_minor": i.amount_minor}
            for i in case.instalments
        ],
    }


def set_schedule(session: Session, case: Case, schedule: Sequence[ScheduledInstalment]) -> None:
    if case.instalments:
        case.instalments.clear()
        session.flush()  # the old rows go before the new ones take their numbers
    for item in schedule:
        case.instalments.append(
            Instalment(seq=item.seq, due_date=item.due_date, amount_minor=item.amount_minor)
        )
