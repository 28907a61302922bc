"""A credit manager's phone call with a debtor, logged from the customer's page.

A promise is the portal's promise (``cases.service.promise_to_pay``: the same case, the
same hold until the promised date plus the grace period); a dispute is the portal's
dispute; a wrong number stops calls and texts to that number. Logging a call also closes
the customer's open call steps: the call they asked for has happened.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import clock
from portal.cases import service as cases
from portal.cases.models import Case
from portal.customers.models import Customer
from portal.reminders.models import ReminderTask, TaskKind, TaskStatus
from portal.reminders.tasks import NOTE_MAX, TaskError
from portal.settings import CaseSettings
from portal.timeline.models import Actor
from portal.timeline.service import record


class CallOutcome(enum.StrEnum):
    PROMISE = "promise"
    DISPUTE = "dispute"
    NO_ANSWER = "no_answer"
    WRONG_NUMBER = "wrong_number"


def log_call(
    session: Session,
    customer: Customer,
    *,
    user_id: int,
    outcome: CallOutcome,
    note: str,
    invoice_ids: Sequence[int] = (),
    promised_date: dt.date | None = None,
    dispute_reason: str = "",
    today: dt.date,
    policy: CaseSettings,
    client_ip: str | None = None,
) -> Case | None:
    """Record the call and what it led to; raises TaskError or cases' CaseError (then the
    caller rolls back: nothing is changed)."""
    note = note.strip()
    if len(note) > NOTE_MAX:
        raise TaskError("note_too_long")
    case: Case | None = None
    if outcome is CallOutcome.PROMISE:
        if promised_date is None:
            raise TaskError("date_required")
        case = cases.promise_to_pay(
            session,
            customer,
            None,
            invoice_ids,
            promised_date=promised_date,
            today=today,
            policy=policy,
            agreement=cases.AgreementInfo(client_ip, f"phone call logged by user {user_id}"),
        )
    elif outcome is CallOutcome.DISPUTE:
        case = cases.open_dispute(
            session,
            customer,
            None,
            invoice_ids,
            reason=dispute_reason or "other",
            message=note or "Raised on the phone.",
        )
    elif outcome is CallOutcome.WRONG_NUMBER:
        for contact in customer.contacts:
            if contact.phone and contact.accepts_calls:
                contact.accepts_calls = False
                contact.accepts_sms = False
    closed = _close_call_steps(session, customer, user_id, note, outcome)
    record(
        session,
        company_id=customer.company_id,
        customer_id=customer.id,
        actor=Actor.USER,
        actor_id=str(user_id),
        action="call.logged",
        subject_type="case" if case is not None else "customer",
        subject_id=case.id if case is not None else customer.id,
        details={"outcome": outcome.value, "note": note[:500], "tasks_closed": closed},
    )
    return case


def _close_call_steps(
    session: Session, customer: Customer, user_id: int, note: str, outcome: CallOutcome
) -> list[int]:
    tasks = list(
        session.scalars(
            select(ReminderTask)
            .where(
                ReminderTask.customer_id == customer.id,
                ReminderTask.status == TaskStatus.OPEN,
                ReminderTask.kind.in_((TaskKind.STEP, TaskKind.FOLLOW_UP)),
            )
            .with_for_update()
        )
    )
    now = clock.now()
    for task in tasks:
        task.status = TaskStatus.DONE
        task.done_at = now
        task.done_by_user_id = user_id
        task.note = f"[{outcome.value}] {note}".strip()
    return [task.id for task in tasks]
