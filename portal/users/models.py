from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, BigId, UTCDateTime, enum_column


class Role(enum.StrEnum):
    ADMIN = "admin"
    CREDIT_MANAGER = "credit_manager"
    VIEWER = "viewer"


class User(Base):
    """A back-office user (credit manager, admin or viewer)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(enum_column(Role))
    totp_secret: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The last 30-second TOTP step accepted: a code is good once, not for its whole window.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Bumped by "log out everywhere".
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # Set by a change or a reset: a reset link issued before it no longer works.
    password_changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class UserSession(Base):
    """A back-office session, started by logging in.

    Like a debtor's session, the cookie holds a random secret and only its
    SHA-256 digest is stored. ``session_version`` is copied from the user:
    "log out everywhere" bumps the user's, which kills every older session.
    """

    __tablename__ = "user_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    session_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    client_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(255), nullable=True)


class LoginThrottle(Base):
    """Failed attempts of one kind from one source, and when the next one is allowed.

    ``scope`` says what ``key`` counts: ``ip`` (a client, across accounts), ``account``
    (an email address typed, whoever typed it), ``client`` (that address from that
    client), ``reset`` (password reset emails asked for an address). Addresses are
    stored only as keyed digests (``portal.users.throttle.digest``): people type
    passwords in the email field. Kept in the database so every worker process shares it.
    """

    __tablename__ = "login_throttles"

    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failure_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    next_allowed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # When a refused attempt was last put on the timeline: once per wait, not once per
    # request, so a flood of refused attempts writes no more than one row each wait.
    refusal_noted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
