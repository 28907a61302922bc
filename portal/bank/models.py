"""Imported statements, their lines (one per booked entry), and what each line paid."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

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
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, BigId, UTCDateTime, enum_column


class LineStatus(enum.StrEnum):
    MATCHED = "matched"  # recorded as one or more payments
    REVIEW = "review"  # waiting in "Bank lines to match"
    DEBIT = "debit"  # money out: not a customer payment, ignored
    NOT_CUSTOMER = "not_customer"  # a credit marked "not a customer payment"


class BankStatement(Base):
    """One imported file: its account, format, and how many of its lines were new."""

    __tablename__ = "bank_statements"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    account_iban: Mapped[str] = mapped_column(String(34))
    format: Mapped[str] = mapped_column(String(16))
    statement_ref: Mapped[str] = mapped_column(String(128), default="")
    filename: Mapped[str] = mapped_column(String(255))
    file_sha256: Mapped[str] = mapped_column(String(64))
    lines_total: Mapped[int] = mapped_column(Integer)
    lines_new: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class BankLine(Base):
    """A booked entry; the same entry in a second file is the same row (account + ref)."""

    __tablename__ = "bank_lines"
    __table_args__ = (
        UniqueConstraint("account_iban", "entry_reference"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        Index("ix_bank_lines_company_status", "company_id", "status", "booked_on"),
        Index("ix_bank_lines_debtor_iban", "debtor_iban"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    statement_id: Mapped[int] = mapped_column(ForeignKey("bank_statements.id"), index=True)
    account_iban: Mapped[str] = mapped_column(String(34))
    entry_reference: Mapped[str] = mapped_column(String(128))
    booked_on: Mapped[dt.date] = mapped_column(Date)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    credit: Mapped[bool] = mapped_column(Boolean)
    debtor_name: Mapped[str] = mapped_column(String(140), default="")
    debtor_iban: Mapped[str] = mapped_column(String(34), default="")
    remittance: Mapped[str] = mapped_column(Text, default="")
    structured_reference: Mapped[str] = mapped_column(String(64), default="")
    end_to_end_id: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[LineStatus] = mapped_column(enum_column(LineStatus))
    # Which rule matched it (rf, invoice_number, amount_name, amount_iban, manual, split).
    matched_by: Mapped[str | None] = mapped_column(String(16), nullable=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), nullable=True)
    # Ranked suggestions for the review queue, as the matcher found them.
    suggestions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    decided_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class BankLinePayment(Base):
    """A payment a line was recorded as (several when the line was split)."""

    __tablename__ = "bank_line_payments"
    __table_args__ = (
        UniqueConstraint("line_id", "payment_id"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("bank_lines.id"), index=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
