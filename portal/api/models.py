from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, BigId, UTCDateTime, enum_column


class KeyScope(enum.StrEnum):
    READ = "read"  # GET only
    WRITE = "write"  # read and write


class ApiKey(Base):
    """A key an integrator's system presents as ``Authorization: Bearer <key>``.

    Only the SHA-256 digest of the secret is stored (see ``portal.api.keys``); ``prefix``
    is the part shown in the back office to tell keys apart.
    """

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_digest: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[KeyScope] = mapped_column(enum_column(KeyScope))
    # The admin who created it: what the key does is done in their name on the timeline.
    created_by_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class IdempotentRequest(Base):
    """The first answer to a request sent with an ``Idempotency-Key``, stored in the same
    transaction as what the request changed: a retry gets this answer back."""

    __tablename__ = "api_idempotency"
    __table_args__ = (UniqueConstraint("api_key_id", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    # SHA-256 of the method, path, query and body: the same key with another request is refused.
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class ApiRateWindow(Base):
    """How many requests a key was granted in its current minute (``window``: minutes since
    the epoch), by atomic upserts (``web.api.ratelimit``): every web worker shares it."""

    __tablename__ = "api_rate_windows"

    api_key_id: Mapped[int] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    window: Mapped[int] = mapped_column(BigInteger)
    count: Mapped[int] = mapped_column(BigInteger)  # requests granted this minute
