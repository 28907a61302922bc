"""What the nightly pass learned about each customer's payment behaviour."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, UTCDateTime


class CustomerBehaviour(Base):
    """One row per customer, rewritten by ``cockpit.behaviour.recompute`` (the worker, nightly).

    ``reasons`` lists why ``suggested_segment`` was suggested, as codes with their figures
    (``[["avg_late", 34], ...]``), so the page can say it in the reader's language.
    """

    __tablename__ = "customer_behaviour"
    __table_args__ = (Index("ix_customer_behaviour_company", "company_id"),)

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    paid_invoices: Mapped[int] = mapped_column(Integer, default=0)
    late_invoices: Mapped[int] = mapped_column(Integer, default=0)
    # Whole days, averaged over the paid invoices (0 for one paid on time).
    avg_days_late: Mapped[int] = mapped_column(Integer, default=0)
    broken_promises: Mapped[int] = mapped_column(Integer, default=0)
    disputes: Mapped[int] = mapped_column(Integer, default=0)
    suggested_segment: Mapped[str] = mapped_column(String(8))
    reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    computed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    @property
    def late_share_percent(self) -> int:
        if not self.paid_invoices:
            return 0
        return round(100 * self.late_invoices / self.paid_invoices)


class DashboardSnapshot(Base):
    """The whole-company dashboard (no segment, currency or owner chosen) as computed at
    ``computed_at`` for the day ``as_of``: the page reads this one row instead of most of
    the book. Rewritten by ``cockpit.snapshot.refresh`` (the worker, every few minutes);
    the page says how old its figures are (see docs/cockpit.md)."""

    __tablename__ = "dashboard_snapshots"

    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True
    )
    as_of: Mapped[dt.date] = mapped_column(Date)
    computed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # How long computing the panels took, in milliseconds (for the page's footnote).
    took_ms: Mapped[int] = mapped_column(Integer, default=0)
    # panel name -> the panel's figures (portal.cockpit.snapshot encodes and decodes them)
    panels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
