"""Versions of the scenario book and of message texts: rows are only ever added."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, BigId, UTCDateTime


class ScenarioVersion(Base):
    """The whole scenario book (the TOML file's shape) as one change left it; the highest
    number is the one the planning follows."""

    __tablename__ = "reminder_scenario_versions"
    __table_args__ = (UniqueConstraint("company_id", "number"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    number: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    change: Mapped[str] = mapped_column(String(32))  # editor.versions.CHANGES
    subject: Mapped[str] = mapped_column(String(200), default="")  # the scenario or step
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    # Who, as shown in the history (an email, or "command-line" / "system").
    author: Mapped[str] = mapped_column(String(254))


class MessageTextVersion(Base):
    """A message text for one template, channel and language; the latest row wins, and
    a row with ``is_default`` goes back to the template files."""

    __tablename__ = "reminder_message_text_versions"
    __table_args__ = (
        Index("ix_reminder_message_text_versions_key", "company_id", "channel", "name", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    channel: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8))
    subject: Mapped[str] = mapped_column(String(300), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    author: Mapped[str] = mapped_column(String(254))
