from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, UTCDateTime


class Branding(Base):
    """What admins changed from the configured look; an empty field keeps the default
    (the ``PORTAL_COMPANY_*`` and ``PORTAL_SMTP_SENDER`` settings)."""

    __tablename__ = "brandings"

    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), primary_key=True)
    primary_colour: Mapped[str] = mapped_column(String(7), default="")
    accent_colour: Mapped[str] = mapped_column(String(7), default="")
    logo: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    logo_type: Mapped[str] = mapped_column(String(20), default="")
    sender_name: Mapped[str] = mapped_column(String(100), default="")
    sender_email: Mapped[str] = mapped_column(String(254), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)


class BrandingText(Base):
    """The company's own words in one language (empty: the portal's own text)."""

    __tablename__ = "branding_texts"

    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), primary_key=True)
    language: Mapped[str] = mapped_column(String(8), primary_key=True)
    welcome: Mapped[str] = mapped_column(Text, default="")
    footer: Mapped[str] = mapped_column(Text, default="")
    legal: Mapped[str] = mapped_column(Text, default="")
    support: Mapped[str] = mapped_column(Text, default="")
