"""Cases opened by a debtor (dispute, payment plan, promise to pay) and what hangs off them."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base, BigId, UTCDateTime, enum_column
from portal.timeline.models import Actor


class CaseKind(enum.StrEnum):
    DISPUTE = "dispute"
    PLAN = "plan"
    PROMISE = "promise"


class CaseStatus(enum.StrEnum):
    OPEN = "open"  # a dispute waiting for a decision
    REVIEW = "review"  # a plan outside policy, waiting for a credit manager
    COUNTERED = "countered"  # a credit manager proposed other terms; the debtor may accept
    ACTIVE = "active"  # an accepted plan or a promise running
    COMPLETED = "completed"  # a plan paid in full, a promise kept
    BROKEN = "broken"  # a missed instalment or an unkept promise: for a human
    RESOLVED = "resolved"  # a dispute settled (invoice cancelled, credited or adjusted)
    REJECTED = "rejected"  # a dispute or a plan turned down
    CLOSED = "closed"  # a broken plan or promise a credit manager has dealt with


# A case in one of these still covers its invoices: no reminder, not ticked for payment.
LIVE_CASE_STATUSES = (CaseStatus.OPEN, CaseStatus.REVIEW, CaseStatus.COUNTERED, CaseStatus.ACTIVE)


class DisputeReason(enum.StrEnum):
    NOT_RECEIVED = "not_received"
    WRONG_AMOUNT = "wrong_amount"
    NOT_AS_AGREED = "not_as_agreed"
    ALREADY_PAID = "already_paid"
    OTHER = "other"


class Case(Base):
    """One dispute, payment plan or promise to pay, on some invoices of one customer."""

    __tablename__ = "cases"
    __table_args__ = (
        CheckConstraint("total_minor >= 0", name="total_not_negative"),
        Index("ix_cases_company_kind_status", "company_id", "kind", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[CaseKind] = mapped_column(enum_column(CaseKind))
    status: Mapped[CaseStatus] = mapped_column(enum_column(CaseStatus))
    currency: Mapped[str] = mapped_column(String(3))
    # What remained on the invoices when the case opened.
    total_minor: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[DisputeReason | None] = mapped_column(
        enum_column(DisputeReason, 24), nullable=True
    )
    promised_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    # When a human should answer (plans under review); the queues sort on it.
    answer_by: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    # When the plan or promise started to run: payments recorded from then on count.
    accepted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # How it ended: cancelled/credited/adjusted/rejected, completed, broken...
    resolution: Mapped[str | None] = mapped_column(String(32), nullable=True)
    resolution_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # The assignee has been told of the debtor's messages up to this one, last at this time
    # (portal.cases.digest: one email per case per digest window).
    staff_notified_message_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    staff_notified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    invoices: Mapped[list[CaseInvoice]] = relationship(
        order_by="CaseInvoice.invoice_id", cascade="all, delete-orphan"
    )
    instalments: Mapped[list[Instalment]] = relationship(
        order_by="Instalment.seq", cascade="all, delete-orphan"
    )

    @property
    def invoice_ids(self) -> list[int]:
        return [link.invoice_id for link in self.invoices]


class CaseInvoice(Base):
    __tablename__ = "case_invoices"

    case_id: Mapped[int] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), primary_key=True, index=True)


class Instalment(Base):
    """One due item of a plan. Coverage is derived from payment allocations, not stored."""

    __tablename__ = "instalments"
    __table_args__ = (
        UniqueConstraint("case_id", "seq"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    due_date: Mapped[dt.date] = mapped_column(Date)
    amount_minor: Mapped[int] = mapped_column(BigInteger)


class Agreement(Base):
    """The debtor agreed to a plan, a counter-proposal or a promise: when, from where, how."""

    __tablename__ = "case_agreements"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    agreed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    client_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # The terms as agreed (instalments or promised date), frozen.
    terms: Mapped[dict[str, Any]] = mapped_column(JSON)


class CaseMessage(Base):
    """One message of a case's thread, from the debtor or a back-office user."""

    __tablename__ = "case_messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    author: Mapped[Actor] = mapped_column(enum_column(Actor))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    attachments: Mapped[list[Attachment]] = relationship(order_by="Attachment.id")


class Attachment(Base):
    """A file joined to a message; stored under PORTAL_ATTACHMENTS_DIR by a random name."""

    __tablename__ = "case_attachments"
    __table_args__ = (CheckConstraint("size_bytes > 0", name="size_positive"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("case_messages.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    storage_name: Mapped[str] = mapped_column(String(80), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class InstalmentReminder(Base):
    """A reminder sent about one instalment of a plan: at most one of each kind."""

    __tablename__ = "instalment_reminders"
    __table_args__ = (UniqueConstraint("case_id", "seq", "kind"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # "due" (a few days before) or "overdue"
    sent_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
