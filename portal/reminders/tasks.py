"""The call-task queue: human steps of a scenario, done by credit managers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import clock
from portal.customers.models import Contact, Customer
from portal.invoices.models import Invoice
from portal.reminders.models import ReminderMessageInvoice, ReminderTask, TaskKind, TaskStatus
from portal.timeline.models import Actor
from portal.timeline.service import record

NOTE_MAX = 2000
TRACKING_MAX = 64


class TaskError(Exception):
    """A task action was refused; ``key`` names why (translated by the web layer)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass(frozen=True)
class TaskRow:
    id: int
    customer_id: int
    customer_name: str
    customer_reference: str
    phone: str
    step: str
    status: TaskStatus
    created_at: dt.datetime
    done_at: dt.datetime | None
    note: str
    invoices: list[tuple[str, int, str]]  # number, remaining, currency
    kind: TaskKind = TaskKind.STEP
    due_on: dt.date | None = None
    # A call step open past the configured wait (the scenario went on without it), or a
    # follow-up past its date.
    overdue: bool = False
    tracking_number: str = ""


def _overdue(task: ReminderTask, now: dt.datetime, call_wait_days: int) -> bool:
    if task.status is not TaskStatus.OPEN:
        return False
    if task.due_on is not None:
        return task.due_on < now.date()
    return task.kind is TaskKind.STEP and now - task.created_at > dt.timedelta(days=call_wait_days)


def list_tasks(
    session: Session,
    company_id: int,
    status: TaskStatus,
    limit: int = 200,
    *,
    call_wait_days: int = 7,
    customer_id: int | None = None,
) -> list[TaskRow]:
    phone = (
        select(func.min(Contact.phone))
        .where(Contact.customer_id == Customer.id, Contact.phone.is_not(None))
        .scalar_subquery()
    )
    order = ReminderTask.created_at if status is TaskStatus.OPEN else ReminderTask.done_at.desc()
    query = (
        select(ReminderTask, Customer.name, Customer.reference, phone)
        .join(Customer, Customer.id == ReminderTask.customer_id)
        .where(ReminderTask.company_id == company_id, ReminderTask.status == status)
        .order_by(order, ReminderTask.id)
        .limit(limit)
    )
    if customer_id is not None:
        query = query.where(ReminderTask.customer_id == customer_id)
    rows = session.execute(query).all()
    now = clock.now()
    message_ids = [task.message_id for task, *_ in rows if task.message_id is not None]
    invoices: dict[int, list[tuple[str, int, str]]] = {}
    if message_ids:
        for message_id, number, amount, paid, currency in session.execute(
            select(
                ReminderMessageInvoice.message_id,
                Invoice.number,
                Invoice.amount_minor,
                Invoice.paid_minor,
                Invoice.currency,
            )
            .join(Invoice, Invoice.id == ReminderMessageInvoice.invoice_id)
            .where(ReminderMessageInvoice.message_id.in_(message_ids))
            .order_by(Invoice.due_date)
        ):
            invoices.setdefault(message_id, []).append((number, max(amount - paid, 0), currency))
    return [
        TaskRow(
            task.id,
            task.customer_id,
            name,
            reference,
            phone_number or "",
            task.step,
            task.status,
            task.created_at,
            task.done_at,
            task.note,
            invoices.get(task.message_id, []) if task.message_id is not None else [],
            task.kind,
            task.due_on,
            _overdue(task, now, call_wait_days),
            task.tracking_number or "",
        )
        for task, name, reference, phone_number in rows
    ]


def complete_task(
    session: Session,
    company_id: int,
    task_id: int,
    *,
    user_id: int,
    note: str,
    tracking_number: str = "",
) -> ReminderTask:
    """Mark a call done (the customer's scenario goes on at its next run), or a registered
    letter posted, with its tracking number."""
    if len(note) > NOTE_MAX:
        raise TaskError("note_too_long")
    tracking_number = tracking_number.strip()
    if len(tracking_number) > TRACKING_MAX:
        raise TaskError("tracking_too_long")
    task = session.scalar(
        select(ReminderTask)
        .where(ReminderTask.id == task_id, ReminderTask.company_id == company_id)
        .with_for_update()
    )
    if task is None:
        raise TaskError("not_found")
    if task.status is TaskStatus.DONE:
        raise TaskError("already_done")
    if task.kind is TaskKind.POST_LETTER and not tracking_number:
        raise TaskError("tracking_required")
    task.tracking_number = tracking_number or None
    task.status = TaskStatus.DONE
    task.done_at = clock.now()
    task.done_by_user_id = user_id
    task.note = note.strip()
    record(
        session,
        company_id=company_id,
        customer_id=task.customer_id,
        actor=Actor.USER,
        actor_id=str(user_id),
        action="reminder.task_done",
        subject_type="reminder_task",
        subject_id=task.id,
        details={
            "step": task.step,
            "kind": task.kind.value,
            "note": task.note[:500],
            **({"tracking_number": tracking_number} if tracking_number else {}),
        },
    )
    return task


def schedule_follow_up(
    session: Session, company_id: int, customer_id: int, *, user_id: int, on: dt.date, note: str
) -> ReminderTask:
    """A call a credit manager plans on a date: it shows in the call queue from then (and
    as overdue after). It holds no invoice back."""
    if len(note) > NOTE_MAX:
        raise TaskError("note_too_long")
    if on < clock.now().date():
        raise TaskError("date_past")
    customer = session.get(Customer, customer_id)
    if customer is None or customer.company_id != company_id:
        raise TaskError("not_found")
    task = ReminderTask(
        company_id=company_id,
        customer_id=customer_id,
        message_id=None,
        kind=TaskKind.FOLLOW_UP,
        due_on=on,
        step="follow-up",
        title=f"{customer.name}: {note.strip()[:200]}" if note.strip() else customer.name,
        created_at=clock.now(),
        note="",
    )
    session.add(task)
    session.flush()
    record(
        session,
        company_id=company_id,
        customer_id=customer_id,
        actor=Actor.USER,
        actor_id=str(user_id),
        action="reminder.follow_up_scheduled",
        subject_type="reminder_task",
        subject_id=task.id,
        details={"on": on.isoformat(), "note": note.strip()[:500]},
    )
    return task
