from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, BigId, UTCDateTime, enum_column


class Actor(enum.StrEnum):
    DEBTOR = "debtor"  # someone holding the customer's signed link
    USER = "user"  # a back-office user
    SYSTEM = "system"  # the application itself (reminder engine, worker, command line)
    PROVIDER = "provider"  # Stripe, the bank, the SMTP server...


class TimelineEvent(Base):
    """One thing that happened. Append-only: the audit trail and the customer's history."""

    __tablename__ = "timeline_events"
    __table_args__ = (Index("ix_timeline_events_customer_time", "customer_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), nullable=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    actor: Mapped[Actor] = mapped_column(enum_column(Actor))
    actor_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    action: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    subject_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
