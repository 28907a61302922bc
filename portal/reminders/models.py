"""The reminder outbox, the invoices each message covers, call tasks and planning runs."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, BigId, UTCDateTime, enum_column


class Channel(enum.StrEnum):
    EMAIL = "email"
    SMS = "sms"
    LETTER = "letter"  # a PDF letter, written to the letters folder for posting
    TASK = "task"  # a human step: a task in the back office's queue


class MessageStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for its send time (or its next attempt)
    SENDING = "sending"  # claimed by a worker until claimed_until
    SENT = "sent"
    FAILED = "failed"  # gave up after the last attempt
    BOUNCED = "bounced"  # the recipient was refused
    CANCELLED = "cancelled"  # nothing left to remind about at send time


class TaskStatus(enum.StrEnum):
    OPEN = "open"
    DONE = "done"


class TaskKind(enum.StrEnum):
    STEP = "step"  # a call step of a scenario
    FOLLOW_UP = "follow_up"  # a call a credit manager scheduled on a date
    POST_LETTER = "post_letter"  # a registered letter to post, its tracking number recorded


class ReminderMessage(Base):
    """One planned message to a customer for one step of a scenario (the outbox).

    Exactly one per (customer, step, cycle): the cycle is the day the run planned it in
    the customer's timezone, so a second run on the same day adds nothing.
    """

    __tablename__ = "reminder_messages"
    __table_args__ = (
        UniqueConstraint("customer_id", "step", "cycle"),
        # The unique key leads with customer_id: it also serves the planner's per-customer
        # lookups (last message, for the minimum gap), so no second index is kept for them.
        Index("ix_reminder_messages_due", "status", "next_attempt_at"),
        # The last delivery, for the back office's outbox and the health check.
        Index("ix_reminder_messages_sent_at", "sent_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    scenario: Mapped[str] = mapped_column(String(64))
    step: Mapped[str] = mapped_column(String(64))
    cycle: Mapped[str] = mapped_column(String(16))
    channel: Mapped[Channel] = mapped_column(enum_column(Channel))
    template: Mapped[str] = mapped_column(String(64))
    status: Mapped[MessageStatus] = mapped_column(
        enum_column(MessageStatus), default=MessageStatus.PENDING
    )
    # Earliest instant it may leave (business hours in the customer's timezone), then the
    # time of the next attempt after a failure.
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Filled at send time, from the invoices still due then.
    recipient: Mapped[str | None] = mapped_column(String(254), nullable=True)
    subject: Mapped[str | None] = mapped_column(String(255), nullable=True)
    body_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    body_html: Mapped[str | None] = mapped_column(Text, nullable=True)
    external_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # A reminder sent by hand: who asked, and the text as they edited it ({link} marks
    # where the fresh portal link goes at send time).
    requested_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    edited_subject: Mapped[str | None] = mapped_column(String(255), nullable=True)
    edited_text: Mapped[str | None] = mapped_column(Text, nullable=True)


class ReminderMessageInvoice(Base):
    """An invoice a message reminds about, at one step; an invoice gets each step once."""

    __tablename__ = "reminder_message_invoices"
    # The unique key leads with invoice_id: it serves "the furthest step of this invoice".
    __table_args__ = (UniqueConstraint("invoice_id", "step"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("reminder_messages.id", ondelete="CASCADE"), index=True
    )
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"))
    step: Mapped[str] = mapped_column(String(64))
    # The step's position relative to the due date: the planner moves an invoice forward only.
    offset_days: Mapped[int] = mapped_column(Integer)


class ReminderTask(Base):
    """A human step: a call of a scenario (its invoices wait for it, for a configured number
    of days), a follow-up call scheduled on a date, or a registered letter to post."""

    __tablename__ = "reminder_tasks"
    __table_args__ = (Index("ix_reminder_tasks_company_status", "company_id", "status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    # The outbox row that opened it; none for a follow-up scheduled by hand.
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("reminder_messages.id"), unique=True, nullable=True
    )
    kind: Mapped[TaskKind] = mapped_column(enum_column(TaskKind), default=TaskKind.STEP)
    due_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    tracking_number: Mapped[str | None] = mapped_column(String(64), nullable=True)
    step: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(255))
    status: Mapped[TaskStatus] = mapped_column(enum_column(TaskStatus), default=TaskStatus.OPEN)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    done_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")


class ReminderPolicy(Base):
    """The company's limits on reminding, set in the back office (one row per company;
    without a row, the settings' defaults apply)."""

    __tablename__ = "reminder_policies"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), unique=True)
    # Messages one customer may receive in any 30 days; None: PORTAL_REMINDER_MONTHLY_CAP.
    monthly_cap: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Yearly quiet periods, "MM-DD..MM-DD" separated by commas; None: the settings' ones.
    quiet_periods: Mapped[str | None] = mapped_column(String(500), nullable=True)
    frozen: Mapped[bool] = mapped_column(Boolean, default=False)
    frozen_reason: Mapped[str] = mapped_column(String(500), default="")
    frozen_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    frozen_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    updated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ReminderRun(Base):
    """A planning run, one per company and day: a missed day is caught up once."""

    __tablename__ = "reminder_runs"
    __table_args__ = (UniqueConstraint("company_id", "run_date"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    run_date: Mapped[dt.date] = mapped_column(Date)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    messages: Mapped[int] = mapped_column(Integer, default=0)


def take_write_lock(session: object) -> None:
    """SQLite only: make this transaction the writer now, not at its first write.

    Under WAL, a transaction that read and then writes after another writer committed
    fails at once ("database is locked"); one that starts with a write waits for the lock
    (busy timeout) instead. Any UPDATE takes the lock, even one that matches no row.
    """
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("UPDATE reminder_runs SET messages = messages WHERE 1 = 0"))


def prefer_indexes(session: object) -> None:
    """PostgreSQL only, for this transaction: use the indexes of the outbox tables even when
    their statistics are stale. A run fills them while it reads them; planned while they were
    nearly empty, the per-invoice lookups became sequential scans of a growing table
    (quadratic: 10x the time at twice the data in bench/reminders.py). The cost that
    disabling sequential scans puts on any plan with one (a staging table's) would also
    compile every statement with JIT, about 0.1 s each: JIT is off with it."""
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL enable_seqscan = off; SET LOCAL jit = off"))
