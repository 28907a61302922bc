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

from portal.db import Base, BigId, UTCDateTime, enum_column


class PaymentMethod(enum.StrEnum):
    CARD = "card"
    TRANSFER = "transfer"
    DIRECT_DEBIT = "direct_debit"
    OTHER = "other"


class PaymentStatus(enum.StrEnum):
    SUCCEEDED = "succeeded"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"


class Payment(Base):
    """Money received from a customer. What is not allocated is the customer's credit."""

    __tablename__ = "payments"
    __table_args__ = (
        # A provider's payment is recorded once, whatever the number of deliveries.
        UniqueConstraint("provider", "provider_reference"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    method: Mapped[PaymentMethod] = mapped_column(enum_column(PaymentMethod))
    status: Mapped[PaymentStatus] = mapped_column(
        enum_column(PaymentStatus, 24),
        default=PaymentStatus.SUCCEEDED,
    )
    provider: Mapped[str] = mapped_column(String(32))  # "stripe", "bank", "manual", "import"
    provider_reference: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    allocations: Mapped[list[PaymentAllocation]] = relationship(
        back_populates="payment", cascade="all, delete-orphan"
    )

    @property
    def allocated_minor(self) -> int:
        return sum(a.amount_minor for a in self.allocations)

    @property
    def credit_minor(self) -> int:
        return self.amount_minor - self.allocated_minor


class PaymentAllocation(Base):
    """The part of a payment that settles one invoice."""

    __tablename__ = "payment_allocations"
    __table_args__ = (
        UniqueConstraint("payment_id", "invoice_id"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id", ondelete="CASCADE"))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)

    payment: Mapped[Payment] = relationship(back_populates="allocations")


class PaymentRequestStatus(enum.StrEnum):
    OPEN = "open"  # prepared, instructions shown, nothing declared yet
    DECLARED = "declared"  # the debtor says the transfer is on its way
    CONFIRMED = "confirmed"  # the money arrived (back office or bank import)
    EXPIRED = "expired"


class PaymentRequest(Base):
    """What a debtor chose to pay, and how: the invoices, the amount, the method.

    Shared by the payment methods: a bank transfer now, a card payment (Stripe) later.
    """

    __tablename__ = "payment_requests"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint(
            "declared_amount_minor IS NULL OR declared_amount_minor > 0",
            name="declared_amount_positive",
        ),
        Index("ix_payment_requests_customer_status", "customer_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    method: Mapped[PaymentMethod] = mapped_column(enum_column(PaymentMethod))
    status: Mapped[PaymentRequestStatus] = mapped_column(
        enum_column(PaymentRequestStatus), default=PaymentRequestStatus.OPEN
    )
    # The invoices the debtor chose to settle, sorted.
    invoice_ids: Mapped[list[int]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    declared_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    declared_amount_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    declared_paid_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    # Until this date the invoices count as "payment pending" (reminders skip them).
    grace_until: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
