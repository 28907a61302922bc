"""API keys: created by admins, shown once, stored as a digest, scoped, revocable.

A key is ``rk_<prefix>_<secret>``: the prefix (8 random characters) identifies it in the
back office; the secret is 32 random bytes (256 bits). Only ``sha256(key)`` is stored.
A slow password hash (Argon2) protects *low-entropy* secrets that people choose; against a
256-bit random secret an attacker holding the digests can do no better than guess 2^256
values, so SHA-256 is as safe here, costs microseconds instead of tens of milliseconds on
every request, and allows looking the key up by its digest through a unique index.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from portal import clock
from portal.api.models import ApiKey, KeyScope
from portal.changes import Problems
from portal.i18n import gettext_ as _
from portal.timeline.models import Actor
from portal.timeline.service import record

NAME_MAX = 100
PREFIX_LENGTH = 8
# last_used_at is written at most this often, so reads stay reads.
LAST_USE_PRECISION = dt.timedelta(minutes=1)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class NewKey:
    key: ApiKey
    secret: str  # the whole key, shown once


def create_key(session: Session, company_id: int, *, name: str, scope: str, user_id: int) -> NewKey:
    """A new key (timeline ``api_key.created``). Raises ``FieldErrors``."""
    problems = Problems()
    name = name.strip()
    if not name:
        problems.add("name", _("Enter a name that says which system uses the key."))
    elif len(name) > NAME_MAX:
        problems.add("name", _("Keep it to %(max)d characters at most.", max=NAME_MAX))
    try:
        chosen = KeyScope(scope)
    except ValueError:
        problems.add("scope", _("Choose what the key may do."))
    problems.check()
    prefix = secrets.token_hex(PREFIX_LENGTH // 2)
    secret = f"rk_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        company_id=company_id,
        name=name,
        prefix=prefix,
        secret_digest=digest(secret),
        scope=chosen,
        created_by_user_id=user_id,
        created_at=clock.now(),
    )
    session.add(key)
    session.flush()
    _event(session, key, "api_key.created", user_id)
    return NewKey(key, secret)


def _event(session: Session, key: ApiKey, action: str, user_id: int) -> None:
    record(
        session,
        company_id=key.company_id,
        actor=Actor.USER,
        actor_id=str(user_id),
        action=action,
        subject_type="api_key",
        subject_id=key.id,
        details={"name": key.name, "prefix": key.prefix, "scope": key.scope.value},
    )


def revoke_key(session: Session, key: ApiKey, user_id: int) -> bool:
    """Revoke at once: the next request with it gets 401. False if it was revoked already."""
    if key.revoked_at is not None:
        return False
    key.revoked_at = clock.now()
    _event(session, key, "api_key.revoked", user_id)
    return True


@dataclass(frozen=True)
class Caller:
    """Who is calling the API: the key, its company and scope, the admin behind it."""

    key_id: int
    company_id: int
    scope: KeyScope
    user_id: int
    name: str

    @property
    def can_write(self) -> bool:
        return self.scope is KeyScope.WRITE

    @property
    def actor_id(self) -> str:
        return f"api:{self.key_id}"


_BY_DIGEST = select(
    ApiKey.id,
    ApiKey.company_id,
    ApiKey.scope,
    ApiKey.created_by_user_id,
    ApiKey.name,
    ApiKey.secret_digest,
    ApiKey.last_used_at,
).where(ApiKey.secret_digest == bindparam("digest"), ApiKey.revoked_at.is_(None))


def authenticate(session: Session, presented: str) -> Caller | None:
    """The caller this key belongs to, or None (unknown, malformed or revoked key).

    Notes the time of use, at most once a minute per key."""
    if not presented.startswith("rk_") or len(presented) > 200:
        return None
    wanted = digest(presented)
    row = session.execute(_BY_DIGEST, {"digest": wanted}).one_or_none()
    if row is None or not hmac.compare_digest(row.secret_digest, wanted):
        return None
    now = clock.now()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USE_PRECISION:
        session.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now))
    return Caller(row.id, row.company_id, KeyScope(row.scope), row.created_by_user_id, row.name)


def list_keys(session: Session, company_id: int) -> list[ApiKey]:
    return list(
        session.scalars(
            select(ApiKey).where(ApiKey.company_id == company_id).order_by(ApiKey.id.desc())
        )
    )


def get_key(session: Session, company_id: int, key_id: int) -> ApiKey | None:
    key = session.get(ApiKey, key_id)
    return key if key is not None and key.company_id == company_id else None
