from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, BigId, UTCDateTime


class LinkScope(Base):
    """The invoices a link is limited to; kept here so the token stays short."""

    __tablename__ = "link_scopes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    invoice_ids: Mapped[list[int]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class FreshLinkRequest(Base):
    """A request to email a fresh link; counted to rate-limit by address and by client."""

    __tablename__ = "fresh_link_requests"
    __table_args__ = (
        Index("ix_fresh_link_requests_email_time", "email_digest", "requested_at"),
        Index("ix_fresh_link_requests_client_time", "client_digest", "requested_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Digests, not the values: the table is for counting, not for reading back.
    email_digest: Mapped[str] = mapped_column(String(64))
    client_digest: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
