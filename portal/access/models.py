from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, UTCDateTime


class DebtorSession(Base):
    """A portal session started by opening a signed link.

    The cookie holds a random secret; only its SHA-256 digest is stored, so a
    database read does not hand out live sessions.
    """

    __tablename__ = "debtor_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    link_version: Mapped[int] = mapped_column(Integer)
    scope_id: Mapped[int | None] = mapped_column(ForeignKey("link_scopes.id"), nullable=True)
    language: Mapped[str | None] = mapped_column(String(8), nullable=True)
    # The host site's origin when the session lives in the widget on the company's website
    # (portal/embed): the page is compact and reports its height to that origin only.
    embed_origin: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    client_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(255), nullable=True)
