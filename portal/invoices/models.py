from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.customers.models import Customer
from portal.db import Base, BigId, UTCDateTime, enum_column, stamp_updates


class InvoiceStatus(enum.StrEnum):
    OPEN = "open"  # something remains to be paid (possibly partially paid)
    PAID = "paid"
    CANCELLED = "cancelled"


class Invoice(Base):
    """An invoice issued to a customer; money in minor units of ``currency``."""

    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("company_id", "number"),
        CheckConstraint("amount_minor >= 0", name="amount_not_negative"),
        CheckConstraint("paid_minor >= 0", name="paid_not_negative"),
        Index("ix_invoices_customer_status_due", "customer_id", "status", "due_date"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    number: Mapped[str] = mapped_column(String(64))
    issue_date: Mapped[dt.date] = mapped_column(Date)
    due_date: Mapped[dt.date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    # Sum of allocations, kept in step by the payments service in the same transaction.
    paid_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[InvoiceStatus] = mapped_column(
        enum_column(InvoiceStatus),
        default=InvoiceStatus.OPEN,
    )
    # Path of the stored PDF, relative to the documents directory.
    pdf_path: Mapped[str | None] = mapped_column(String(255), nullable=True)
    reminders_paused_until: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    # Set by a declared bank transfer: "payment pending" through this date (its grace period),
    # which the portal shows and the reminder engine skips.
    transfer_pending_until: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The fingerprint of the import line that last wrote or confirmed this invoice
    # (``portal.imports.fingerprints``): a re-import skips the lines it finds here. On
    # PostgreSQL a trigger clears it whenever a compared column changes by any other path.
    import_digest: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    customer: Mapped[Customer] = relationship()

    @property
    def remaining_minor(self) -> int:
        if self.status is InvoiceStatus.CANCELLED:
            return 0
        return max(self.amount_minor - self.paid_minor, 0)

    def payment_pending(self, today: dt.date) -> bool:
        return self.transfer_pending_until is not None and self.transfer_pending_until >= today

    def days_overdue(self, today: dt.date) -> int:
        if self.remaining_minor == 0:
            return 0
        return max((today - self.due_date).days, 0)


class CreditNoteStatus(enum.StrEnum):
    ISSUED = "issued"
    CANCELLED = "cancelled"


class CreditNote(Base):
    """A credit note (avoir): it reduces what the customer owes on the invoices it names.

    Kept apart from invoices so that nothing that lists, reminds or totals invoices can
    take it for a debt. It is applied as a payment of method ``credit_note`` (provider
    ``credit_note``, reference its id) through ``payments.service.record_payment``: the
    invoices' ``paid_minor``, the debtor's totals and the timeline follow the one path
    every payment takes; what the named invoices cannot absorb stays as the customer's
    credit. Cancelling it reverses that payment.
    """

    __tablename__ = "credit_notes"
    __table_args__ = (
        UniqueConstraint("company_id", "number"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    number: Mapped[str] = mapped_column(String(64))
    issue_date: Mapped[dt.date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[CreditNoteStatus] = mapped_column(
        enum_column(CreditNoteStatus), default=CreditNoteStatus.ISSUED
    )
    # The invoice numbers it names, as given.
    applies_to: Mapped[list[str]] = mapped_column(JSON, default=list)
    reason: Mapped[str] = mapped_column(String(500), default="")
    # The payment (method credit_note) that applies it to the invoices.
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"), nullable=True)
    pdf_path: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    customer: Mapped[Customer] = relationship()


stamp_updates(Invoice)
stamp_updates(CreditNote)
