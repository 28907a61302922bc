"""Server-side back-office sessions: started at login, loaded per request, ended.

The cookie carries a random secret; only its SHA-256 digest is stored, so a copy of the
table opens no session.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal import clock
from portal.timeline.models import Actor
from portal.timeline.service import record
from portal.users.models import Role, User, UserSession

# A session ends after this long whatever its activity (the idle timeout comes from settings).
MAX_SESSION_AGE = dt.timedelta(hours=12)
# Writing last_seen_at on every page view would turn each read into a write.
TOUCH_INTERVAL = dt.timedelta(seconds=60)


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class CurrentUser:
    """The user behind a live back-office session."""

    session_id: str
    user: User

    def has_role(self, *roles: Role) -> bool:
        return not roles or self.user.role in roles


def start_session(
    session: Session, user: User, client_ip: str | None, user_agent: str | None
) -> str:
    """Create a session row; returns the cookie secret (only its digest is stored)."""
    secret = secrets.token_urlsafe(32)
    now = clock.now()
    session.add(
        UserSession(
            id=_sha256(secret),
            user_id=user.id,
            session_version=user.session_version,
            created_at=now,
            last_seen_at=now,
            client_ip=client_ip,
            user_agent=(user_agent or "")[:255] or None,
        )
    )
    return secret


def load_session(session: Session, secret: str | None, idle: dt.timedelta) -> CurrentUser | None:
    """The live session behind a cookie secret, or None.

    None for an unknown, ended, idle, too old or outdated session (the user
    logged out everywhere), or a deactivated user.
    """
    if not secret or len(secret) > 128:
        return None
    row = session.execute(
        select(UserSession, User)
        .join(User, User.id == UserSession.user_id)
        .where(UserSession.id == _sha256(secret))
    ).first()
    if row is None:
        return None
    user_session, user = row[0], row[1]
    if user_session.ended_at is not None:
        return None
    if user_session.session_version != user.session_version or not user.is_active:
        return None
    now = clock.now()
    if now - user_session.last_seen_at > idle or now - user_session.created_at > MAX_SESSION_AGE:
        user_session.ended_at = now
        return None
    if now - user_session.last_seen_at > TOUCH_INTERVAL:
        user_session.last_seen_at = now
    return CurrentUser(user_session.id, user)


def end_session(session: Session, session_id: str) -> None:
    session.execute(
        update(UserSession)
        .where(UserSession.id == session_id, UserSession.ended_at.is_(None))
        .values(ended_at=clock.now())
    )


def log_out(
    session: Session, current: CurrentUser, *, company_id: int, client_ip: str | None
) -> None:
    end_session(session, current.session_id)
    record(
        session,
        company_id=company_id,
        actor=Actor.USER,
        actor_id=str(current.user.id),
        action="user.logged_out",
        subject_type="user",
        subject_id=current.user.id,
        details={"ip": client_ip},
    )


def log_out_everywhere(
    session: Session, user: User, *, company_id: int, client_ip: str | None
) -> int:
    """End every session of ``user``, on every device; returns how many were open."""
    user.session_version += 1
    result = session.execute(
        update(UserSession)
        .where(UserSession.user_id == user.id, UserSession.ended_at.is_(None))
        .values(ended_at=clock.now())
    )
    ended = int(getattr(result, "rowcount", 0) or 0)
    record(
        session,
        company_id=company_id,
        actor=Actor.USER,
        actor_id=str(user.id),
        action="user.logged_out_everywhere",
        subject_type="user",
        subject_id=user.id,
        details={"sessions_ended": ended, "ip": client_ip},
    )
    return ended


def open_sessions(session: Session, user: User, idle: dt.timedelta) -> list[UserSession]:
    """The user's sessions that are still live, most recently used first."""
    now = clock.now()
    query = (
        select(UserSession)
        .where(
            UserSession.user_id == user.id,
            UserSession.ended_at.is_(None),
            UserSession.session_version == user.session_version,
            UserSession.last_seen_at >= now - idle,
            UserSession.created_at >= now - MAX_SESSION_AGE,
        )
        .order_by(UserSession.last_seen_at.desc())
    )
    return list(session.scalars(query))
