from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base, BigId, UTCDateTime, enum_column


class PaymentMethod(enum.StrEnum):
    CARD = "card"
    TRANSFER = "transfer"
    DIRECT_DEBIT = "direct_debit"
    CHEQUE = "cheque"
    OFFSET = "offset"  # set against what the company owes the customer
    CREDIT_NOTE = "credit_note"  # a credit note applied to invoices (not money received)
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
    # What the debtor chose to pay with this money, when it came through the portal.
    payment_request_id: Mapped[int | None] = mapped_column(
        ForeignKey("payment_requests.id"), nullable=True, index=True
    )
    # Refunds and lost chargebacks, summed; their detail is in payment_reversals.
    reversed_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    # A receipt email is owed (payments made through the portal): the worker claims it,
    # clears the flag and sets receipt_sent_at, in one statement, before sending.
    receipt_pending: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    receipt_sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    allocations: Mapped[list[PaymentAllocation]] = relationship(
        back_populates="payment", cascade="all, delete-orphan"
    )

    @property
    def allocated_minor(self) -> int:
        return sum(a.amount_minor for a in self.allocations)

    @property
    def credit_minor(self) -> int:
        """What the customer still has from this payment, allocated to nothing."""
        return self.amount_minor - self.reversed_minor - self.allocated_minor


class ReversalKind(enum.StrEnum):
    REFUND = "refund"
    CHARGEBACK = "chargeback"  # a card dispute the company lost
    CANCELLATION = "cancellation"  # recorded by mistake, or a credit note cancelled


class PaymentReversal(Base):
    """Money given back (refund) or taken back (lost chargeback) from a recorded payment."""

    __tablename__ = "payment_reversals"
    __table_args__ = (
        UniqueConstraint("kind", "provider_reference"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), index=True)
    kind: Mapped[ReversalKind] = mapped_column(enum_column(ReversalKind))
    provider_reference: Mapped[str] = mapped_column(String(128))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class WebhookEvent(Base):
    """A provider's event that was applied; the unique id makes replays harmless."""

    __tablename__ = "webhook_events"
    __table_args__ = (UniqueConstraint("provider", "event_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(128))
    event_type: Mapped[str] = mapped_column(String(64))
    # What applying it did: "applied", "ignored" (a type we do not handle), "unmatched".
    outcome: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


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
    # Card payments: the provider's object for the current attempt (a Stripe PaymentIntent)
    # and the secret the browser needs to confirm it. A retry after a failure is a new
    # attempt, hence a new idempotency key and a new PaymentIntent.
    provider_reference: Mapped[str | None] = mapped_column(String(128), nullable=True, unique=True)
    client_secret: Mapped[str | None] = mapped_column(String(255), nullable=True)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    # Why the last card attempt failed (the provider's code), until the next attempt.
    failure_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
