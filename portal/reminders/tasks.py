"""The call-task queue: human steps of a scenario, done by credit managers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal import clock
from portal.customers.models import Contact, Customer
from portal.invoices.models import Invoice
from portal.reminders.models import ReminderMessageInvoice, ReminderTask, TaskStatus
from portal.timeline.models import Actor
from portal.timeline.service import record

NOTE_MAX = 2000


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


def list_tasks(
    session: Session, company_id: int, status: TaskStatus, limit: int = 200
) -> list[TaskRow]:
    phone = (
        select(func.min(Contact.phone))
        .where(Contact.customer_id == Customer.id, Contact.phone.is_not(None))
        .scalar_subquery()
    )
    order = ReminderTask.created_at if status is TaskStatus.OPEN else ReminderTask.done_at.desc()
    rows = session.execute(
        select(ReminderTask, Customer.name, Customer.reference, phone)
        .join(Customer, Customer.id == ReminderTask.customer_id)
        .where(ReminderTask.company_id == company_id, ReminderTask.status == status)
        .order_by(order, ReminderTask.id)
        .limit(limit)
    ).all()
    message_ids = [task.message_id for task, *_ in rows]
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
            invoices.get(task.message_id, []),
        )
        for task, name, reference, phone_number in rows
    ]


def complete_task(
    session: Session, company_id: int, task_id: int, *, user_id: int, note: str
) -> ReminderTask:
    """Mark a call done; the customer's scenario goes on at its next run."""
    if len(note) > NOTE_MAX:
        raise TaskError("note_too_long")
    task = session.scalar(
        select(ReminderTask)
        .where(ReminderTask.id == task_id, ReminderTask.company_id == company_id)
        .with_for_update()
    )
    if task is None:
        raise TaskError("not_found")
    if task.status is TaskStatus.DONE:
        raise TaskError("already_done")
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
        details={"step": task.step, "note": task.note[:500]},
    )
    return task
