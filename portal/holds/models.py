from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, BigId, UTCDateTime, enum_column


class HoldKind(enum.StrEnum):
    DISPUTE = "dispute"  # an open dispute covers the invoice
    PAYMENT_PLAN = "payment_plan"  # an accepted plan, or one under review, covers it
    PROMISE = "promise"  # a promise to pay, until its date plus a grace period


class ReminderHold(Base):
    """One reason not to remind about an invoice, placed by a case and released by it.

    Active while ``released_at`` is null and ``until`` (when set) is today or later.
    Declared transfers (``invoices.transfer_pending_until``) and manual pauses
    (``reminders_paused_until`` on invoices and customers) are columns, not holds.
    """

    __tablename__ = "reminder_holds"
    __table_args__ = (
        Index("ix_reminder_holds_invoice_released", "invoice_id", "released_at"),
        Index("ix_reminder_holds_subject", "subject_type", "subject_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"))
    kind: Mapped[HoldKind] = mapped_column(enum_column(HoldKind))
    # The case that placed it, e.g. ("dispute", "12").
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(64))
    until: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    released_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
