"""Back-office users: passwords, logins with throttling and lockout, roles.

Passwords are hashed with Argon2id (argon2-cffi's defaults) and rehashed at the
next successful login when those parameters change. A login that fails for any
reason raises a ``LoginRefused``; the web layer shows one answer for all of
them (``TooManyAttempts`` aside, which says how long to wait and depends only on what
was typed and where from), and slows it down (outside the transaction, see
``portal/web/backoffice.py``). Throttling (``portal.users.throttle``) and the lock
after ``LOCK_AFTER_FAILURES`` consecutive failures live in the database, so they hold
across processes and restarts.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from functools import cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal import clock
from portal.timeline.models import Actor
from portal.timeline.service import record
from portal.users import throttle
from portal.users.errors import (
    AccountJustLocked,
    AccountLocked,
    EmailTaken,
    InvalidCredentials,
    InvalidEmail,
    TooManyAttempts,
    UserError,
    WeakPassword,
)
from portal.users.models import Role, User
from portal.users.totp import accepted_totp_step

PASSWORD_MIN_LENGTH = 12
# Long enough for any passphrase or password manager; short enough not to be a toy for DoS.
PASSWORD_MAX_LENGTH = 1024
# Consecutive failures that lock an account (throttling makes them take hours), and for
# how long unless the user unlocks it from the emailed link or an admin does.
LOCK_AFTER_FAILURES = 50
LOCKOUT = dt.timedelta(hours=24)
EMAIL_MAX_LENGTH = 254
EMAIL_SHAPE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")

_hasher = PasswordHasher()


# --- passwords ------------------------------------------------------------------------------


def set_password_hasher(hasher: PasswordHasher) -> PasswordHasher:
    """Use ``hasher`` from now on (tests use cheap parameters); returns the previous one.

    Hashes made with other parameters keep verifying, and are replaced at the
    next successful login.
    """
    global _hasher
    previous, _hasher = _hasher, hasher
    _dummy_hash.cache_clear()
    return previous


def hash_password(password: str) -> str:
    return _hasher.hash(password)


@cache
def _dummy_hash() -> str:
    """A hash with the current parameters, checked when there is no user (same work, same time)."""
    return _hasher.hash(secrets.token_urlsafe(24))


def verify_password(password_hash: str, password: str) -> bool:
    """True if ``password`` matches; never raises (a broken hash simply does not match)."""
    if len(password) > PASSWORD_MAX_LENGTH:
        _verify(_dummy_hash(), "")  # the same work, never a match
        return False
    return _verify(password_hash, password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def check_password_policy(password: str) -> None:
    """Raise WeakPassword with a message a person can act on."""
    if len(password) < PASSWORD_MIN_LENGTH:
        raise WeakPassword(
            f"the password must be at least {PASSWORD_MIN_LENGTH} characters long "
            f"(it has {len(password)})"
        )
    if len(password) > PASSWORD_MAX_LENGTH:
        raise WeakPassword(f"the password must be at most {PASSWORD_MAX_LENGTH} characters long")
    if not password.strip():
        raise WeakPassword("the password cannot be only spaces")


# --- users ----------------------------------------------------------------------------------


def normalise_email(email: str) -> str:
    """Trimmed and lowercased: the one form stored and compared. Raises InvalidEmail."""
    normalised = email.strip().lower()
    if len(normalised) > EMAIL_MAX_LENGTH or not EMAIL_SHAPE.match(normalised):
        raise InvalidEmail(f"not an email address: {email!r}")
    return normalised


def find_user(session: Session, email: str) -> User | None:
    try:
        normalised = normalise_email(email)
    except InvalidEmail:
        return None
    return session.scalar(select(User).where(User.email == normalised))


def create_user(
    session: Session,
    email: str,
    role: Role,
    password: str,
    *,
    name: str = "",
    company_id: int | None = None,
    actor: Actor = Actor.SYSTEM,
    actor_id: str | None = None,
) -> User:
    """A new active user. Raises InvalidEmail, EmailTaken or WeakPassword.

    With ``company_id``, the creation lands on the company's timeline.
    """
    normalised = normalise_email(email)
    check_password_policy(password)
    role = Role(role)
    if session.scalar(select(User.id).where(User.email == normalised)) is not None:
        raise EmailTaken(normalised)
    user = User(
        email=normalised,
        name=name.strip()[:200],
        password_hash=hash_password(password),
        role=role,
        is_active=True,
        failed_logins=0,
        locked_until=None,
        session_version=1,
        created_at=clock.now(),
    )
    session.add(user)
    try:
        session.flush()  # the unique constraint on email has the last word under concurrency
    except IntegrityError:
        raise EmailTaken(normalised) from None
    if company_id is not None:
        record(
            session,
            company_id=company_id,
            actor=actor,
            actor_id=actor_id,
            action="user.created",
            subject_type="user",
            subject_id=user.id,
            details={"email": user.email, "role": role.value},
        )
    return user


def authenticate(
    session: Session,
    email: str,
    password: str,
    *,
    company_id: int,
    client_ip: str | None = None,
    user_agent: str | None = None,
    totp_code: str = "",
    throttle_secret: str = "",
) -> User:
    """The user whose credentials these are, or LoginRefused (InvalidCredentials,
    AccountLocked, AccountJustLocked, TooManyAttempts).

    A user with a second factor must also give the current TOTP code; a wrong code counts
    as a failed attempt like a wrong password (and gets the same answer).

    An attempt while this client or this address must wait (``throttle``) is refused
    before anything is checked. Unknown addresses cost one Argon2 verification like
    known ones. After LOCK_AFTER_FAILURES consecutive failures the account is locked for
    LOCKOUT: even the right password is refused until then. ``throttle_secret`` keys
    the digests of typed addresses. Every outcome is recorded on the timeline; the
    caller must commit even when this raises.
    """
    where = {"ip": client_ip}
    now = clock.now()
    keys = throttle.login_keys(throttle_secret, email, client_ip)
    wait = throttle.retry_after(session, keys, now)
    if wait is not None:
        if throttle.first_refusal(session, keys, now):
            _login_event(session, company_id, None, "user.login_throttled", **where)
        raise TooManyAttempts(wait)
    try:
        normalised: str | None = normalise_email(email)
    except InvalidEmail:
        normalised = None
    user = None
    if normalised is not None:
        # On PostgreSQL, concurrent attempts on one account queue here, so none is lost.
        user = session.scalar(select(User).where(User.email == normalised).with_for_update())

    if user is None:
        verify_password(_dummy_hash(), password)
        throttle.record_failure(session, keys, now)
        # Nothing derived from what was typed is kept: people type passwords in the email field.
        _login_event(
            session, company_id, None, "user.login_failed", reason="unknown_email", **where
        )
        raise InvalidCredentials()

    password_ok = verify_password(user.password_hash, password)
    totp_step = None
    if password_ok and user.totp_secret:
        totp_step = accepted_totp_step(user.totp_secret, totp_code, user.totp_last_step)
        password_ok = totp_step is not None

    if not password_ok or not user.is_active or _locked(user, now):
        throttle.record_failure(session, keys, now)
    if _locked(user, now):
        assert user.locked_until is not None
        _login_event(
            session,
            company_id,
            user,
            "user.login_refused",
            reason="locked",
            locked_until=user.locked_until.isoformat(),
            **where,
        )
        raise AccountLocked(user.locked_until)

    if not password_ok:
        user.failed_logins = (user.failed_logins or 0) + 1
        _login_event(
            session,
            company_id,
            user,
            "user.login_failed",
            reason="wrong_password",
            failures=user.failed_logins,
            **where,
        )
        if user.failed_logins >= LOCK_AFTER_FAILURES:
            user.locked_until = now + LOCKOUT
            user.failed_logins = 0
            _login_event(
                session,
                company_id,
                user,
                "user.locked",
                locked_until=user.locked_until.isoformat(),
                **where,
            )
            raise AccountJustLocked(user.id, user.email, user.locked_until)
        raise InvalidCredentials()

    if not user.is_active:
        _login_event(session, company_id, user, "user.login_failed", reason="inactive", **where)
        raise InvalidCredentials()

    user.failed_logins = 0
    user.locked_until = None
    throttle.forget(session, keys)
    if totp_step is not None:
        user.totp_last_step = totp_step
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    _login_event(
        session,
        company_id,
        user,
        "user.logged_in",
        user_agent=(user_agent or "")[:200],
        **where,
    )
    return user


def _locked(user: User, now: dt.datetime) -> bool:
    return user.locked_until is not None and user.locked_until > now


def _login_event(
    session: Session, company_id: int, user: User | None, action: str, **details: Any
) -> None:
    # Only a successful login is the user's own act; the rest is the system's answer to
    # someone who may not be the user at all.
    actor = Actor.USER if action == "user.logged_in" else Actor.SYSTEM
    record(
        session,
        company_id=company_id,
        actor=actor,
        actor_id=str(user.id) if user is not None and actor is Actor.USER else None,
        action=action,
        subject_type="user" if user is not None else None,
        subject_id=user.id if user is not None else None,
        details=details,
    )


# --- user management ----------------------------------------------------------------------


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.email)))


def update_user(
    session: Session,
    admin: User,
    user: User,
    *,
    role: Role,
    active: bool,
    company_id: int,
) -> None:
    """Change a user's role or deactivate them (which ends their sessions).

    An administrator cannot demote or deactivate themselves: the back office always
    keeps the person who is changing it.
    """
    if user.id == admin.id and (role is not user.role or not active):
        raise UserError("you cannot change your own role or deactivate yourself")
    changes: dict[str, Any] = {}
    if role is not user.role:
        changes["role"] = [user.role.value, role.value]
        user.role = role
    if active != user.is_active:
        changes["active"] = active
        user.is_active = active
        if not active:
            user.session_version += 1
    if changes:
        record(
            session,
            company_id=company_id,
            actor=Actor.USER,
            actor_id=str(admin.id),
            action="user.updated",
            subject_type="user",
            subject_id=user.id,
            details=changes,
        )
