from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, BigId, UTCDateTime


class EmbedOrigin(Base):
    """A website allowed to show the portal in its pages (``frame-ancestors``), and the
    only one the framed page reports its height to."""

    __tablename__ = "embed_origins"
    __table_args__ = (UniqueConstraint("company_id", "origin"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    # scheme://host[:port], as browsers write an origin: lower case, no path.
    origin: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
