"""Idempotency keys: a retried write returns the first answer and changes nothing more.

The first request with a key stores its answer in the **same transaction** as its change
(``claim`` then ``remember``): both commit or neither does. A retry finds it and gets the same
status and body back; the same key with a different request (method, path, query or body)
is refused. A twin sent while the first is still running gets 409 (PostgreSQL), or waits
for the first to commit and gets its answer (SQLite, whose writes run one at a time).
Answers that changed nothing (validation errors) are not stored: the request can be
corrected and sent again with the same key. Answers are kept
``PORTAL_API_IDEMPOTENCY_HOURS`` (``api.retention``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal import clock
from portal.api.models import IdempotentRequest

KEY_MAX = 255


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    h = hashlib.sha256()
    for part in (method.encode(), path.encode(), query.encode(), body):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


@dataclass(frozen=True)
class Stored:
    status_code: int
    body: str
    matches: bool  # False: the key was used for another request


class InFlight(Exception):
    """A request with this key is still running (PostgreSQL): the caller should retry."""


def _lock_id(api_key_id: int, key: str) -> int:
    digest = hashlib.sha256(f"{api_key_id}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _stored(session: Session, api_key_id: int, key: str, print_: str) -> Stored | None:
    row = session.scalars(
        select(IdempotentRequest).where(
            IdempotentRequest.api_key_id == api_key_id, IdempotentRequest.key == key
        )
    ).one_or_none()
    return None if row is None else Stored(row.status_code, row.body, row.fingerprint == print_)


def claim(session: Session, api_key_id: int, key: str, print_: str) -> Stored | None:
    """Take the key for this request, first thing in its transaction; or, when a request
    with this key committed already, its stored answer.

    PostgreSQL: a transaction-level advisory lock on (key id, key), taken without waiting,
    says whether a twin is running: if so, ``InFlight`` (409, as the IETF draft on the
    Idempotency-Key header asks). Once the lock is ours, a twin either committed (its row is
    read here) or has not started (it will find the lock taken). SQLite: write
    transactions run one at a time (``BEGIN IMMEDIATE``), so a twin waits for the first to
    commit and then reads its answer. Either way the unique index is the last guard."""
    if session.get_bind().dialect.name == "postgresql":
        taken = session.scalar(select(func.pg_try_advisory_xact_lock(_lock_id(api_key_id, key))))
        if not taken:
            raise InFlight(key)
    stored = _stored(session, api_key_id, key, print_)
    if stored is not None:
        return stored
    try:
        with session.begin_nested():
            session.add(
                IdempotentRequest(
                    api_key_id=api_key_id,
                    key=key,
                    fingerprint=print_,
                    status_code=0,
                    body="",
                    created_at=clock.now(),
                )
            )
    except IntegrityError:
        return _stored(session, api_key_id, key, print_)
    return None


def remember(session: Session, api_key_id: int, key: str, status_code: int, body: str) -> None:
    """Store the answer on the row ``claim`` took, in the same transaction as the change."""
    session.execute(
        update(IdempotentRequest)
        .where(IdempotentRequest.api_key_id == api_key_id, IdempotentRequest.key == key)
        .values(status_code=status_code, body=body)
    )
