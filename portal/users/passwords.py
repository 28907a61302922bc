"""Changing and resetting a password, and unlocking a locked account.

Reset and unlock links carry a token signed with itsdangerous (``URLSafeTimedSerializer``,
one salt per purpose), short-lived, whose payload is the user id and a fingerprint of
the state it was issued for: for a reset, the password hash and when it last changed
(so the link stops working once used, or once the password changes another way); for an
unlock, the lock's end (so it works once, and not for a later lock).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Sequence
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal import clock
from portal.links.tokens import _ClockTimestampSigner
from portal.timeline.models import Actor
from portal.timeline.service import record
from portal.users import throttle
from portal.users.errors import InvalidCredentials, InvalidToken, TooManyAttempts, WeakPassword
from portal.users.models import User, UserSession
from portal.users.service import (
    check_password_policy,
    find_user,
    hash_password,
    verify_password,
)
from portal.users.sessions import CurrentUser

RESET = "password-reset"
UNLOCK = "account-unlock"
MAX_AGE = {RESET: dt.timedelta(hours=1), UNLOCK: dt.timedelta(hours=1)}
TOKEN_MAX_LENGTH = 256


class PasswordsDiffer(WeakPassword):
    """The new password and its confirmation are not the same."""


def _fingerprint(purpose: str, user: User) -> str:
    if purpose == RESET:
        changed = user.password_changed_at.isoformat() if user.password_changed_at else ""
        state = f"{user.password_hash}|{changed}"
    else:
        state = user.locked_until.isoformat() if user.locked_until else "not locked"
    return hashlib.sha256(f"{purpose}|{state}".encode()).hexdigest()[:32]


class UserTokens:
    """Signs with the newest secret, accepts any listed one (rotation), one salt per purpose."""

    def __init__(self, secret_keys: Sequence[str]) -> None:
        self._keys = list(reversed(secret_keys))  # itsdangerous signs with the last one

    def _serializer(self, purpose: str) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(
            self._keys, salt=f"relance.user.{purpose}", signer=_ClockTimestampSigner
        )

    def issue(self, purpose: str, user: User) -> str:
        return str(
            self._serializer(purpose).dumps({"u": user.id, "f": _fingerprint(purpose, user)})
        )

    def user_for(self, session: Session, purpose: str, token: str) -> User:
        """The active user the token was issued to, in the state it was issued for (the row
        is locked); InvalidToken otherwise."""
        if not token or len(token) > TOKEN_MAX_LENGTH:
            raise InvalidToken()
        try:
            payload: Any = self._serializer(purpose).loads(
                token, max_age=int(MAX_AGE[purpose].total_seconds())
            )
        except BadSignature:  # tampered, other purpose, or expired (SignatureExpired)
            raise InvalidToken() from None
        if not isinstance(payload, dict) or not isinstance(payload.get("u"), int):
            raise InvalidToken()
        user = session.scalar(select(User).where(User.id == payload["u"]).with_for_update())
        if user is None or not user.is_active:
            raise InvalidToken()
        if not hmac.compare_digest(str(payload.get("f", "")), _fingerprint(purpose, user)):
            raise InvalidToken()
        return user


def _event(
    session: Session, company_id: int, user: User, action: str, actor: Actor, **details: Any
) -> None:
    record(
        session,
        company_id=company_id,
        actor=actor,
        actor_id=str(user.id) if actor is Actor.USER else None,
        action=action,
        subject_type="user",
        subject_id=user.id,
        details=details,
    )


def _set_password(user: User, new: str, confirm: str) -> None:
    check_password_policy(new)
    if not hmac.compare_digest(new.encode(), confirm.encode()):
        raise PasswordsDiffer("the two passwords differ")
    user.password_hash = hash_password(new)
    user.password_changed_at = clock.now()


def change_password(
    session: Session,
    current: CurrentUser,
    old: str,
    new: str,
    confirm: str,
    *,
    company_id: int,
    client_ip: str | None,
    throttle_secret: str = "",
) -> None:
    """Change the user's own password; their other sessions end, this one stays.

    Raises InvalidCredentials (the current password is wrong), TooManyAttempts (wrong too
    often: throttled like logins, so a borrowed session cannot guess it) or WeakPassword."""
    user = current.user
    keys = throttle.login_keys(throttle_secret, user.email, client_ip)
    now = clock.now()
    wait = throttle.retry_after(session, keys, now)
    if wait is not None:
        raise TooManyAttempts(wait)
    if not verify_password(user.password_hash, old):
        throttle.record_failure(session, keys, now)
        _event(session, company_id, user, "user.password_change_failed", Actor.USER, ip=client_ip)
        raise InvalidCredentials()
    _set_password(user, new, confirm)
    user.session_version += 1
    now = clock.now()
    session.execute(
        update(UserSession)
        .where(
            UserSession.user_id == user.id,
            UserSession.id != current.session_id,
            UserSession.ended_at.is_(None),
        )
        .values(ended_at=now)
    )
    session.execute(
        update(UserSession)
        .where(UserSession.id == current.session_id)
        .values(session_version=user.session_version)
    )
    _event(session, company_id, user, "user.password_changed", Actor.USER, ip=client_ip)


def request_reset(
    session: Session, email: str, *, company_id: int, client_ip: str | None, throttle_secret: str
) -> User | None:
    """The active user to send a reset link to, or None (no such account, or too many links
    asked for this address lately). The caller answers the same way in every case."""
    keys = throttle.reset_keys(throttle_secret, email)
    now = clock.now()
    if throttle.retry_after(session, keys, now) is not None:
        return None
    throttle.record_failure(session, keys, now)  # every request counts, answered or not
    user = find_user(session, email)
    if user is None or not user.is_active:
        return None
    _event(session, company_id, user, "user.password_reset_sent", Actor.SYSTEM, ip=client_ip)
    return user


def reset_password(
    session: Session,
    tokens: UserTokens,
    token: str,
    new: str,
    confirm: str,
    *,
    company_id: int,
    client_ip: str | None,
) -> User:
    """Set a new password from a reset link: every session ends, a lock is lifted, and the
    link stops working. Raises InvalidToken or WeakPassword."""
    user = tokens.user_for(session, RESET, token)
    _set_password(user, new, confirm)
    user.session_version += 1
    user.failed_logins = 0
    user.locked_until = None
    session.execute(
        update(UserSession)
        .where(UserSession.user_id == user.id, UserSession.ended_at.is_(None))
        .values(ended_at=clock.now())
    )
    _event(session, company_id, user, "user.password_reset", Actor.USER, ip=client_ip)
    return user


def check_token(session: Session, tokens: UserTokens, purpose: str, token: str) -> User:
    """The token's user, or InvalidToken (shown before the form, changes nothing)."""
    return tokens.user_for(session, purpose, token)


def unlock(
    session: Session,
    user: User,
    *,
    company_id: int,
    by: User | None = None,
    throttle_secret: str = "",
) -> bool:
    """Lift the user's lock (their own link, or an admin ``by``); False if not locked.

    The account's login delay goes with it: once unlocked, the right password works at
    once instead of after the delay the failures had earned."""
    if user.locked_until is None or user.locked_until <= clock.now():
        return False
    user.locked_until = None
    user.failed_logins = 0
    throttle.forget(session, throttle.account_keys(throttle_secret, user.email))
    record(
        session,
        company_id=company_id,
        actor=Actor.USER,
        actor_id=str((by or user).id),
        action="user.unlocked",
        subject_type="user",
        subject_id=user.id,
        details={"by_admin": by is not None},
    )
    return True
