"""Idempotency keys: a retried write returns the first answer and changes nothing more.

The first request with a key stores its answer in the **same transaction** as its change
(``claim`` then ``remember``): both commit or neither does. A retry finds it and gets the same
status and body back; the same key with a different request (method, path, query or body)
is refused. A twin sent while the first is still running waits on the unique index
(PostgreSQL) or the write lock (SQLite), then finds the stored answer. Answers that changed
nothing (validation errors) are not stored: the request can be corrected and sent again
with the same key. Keys are kept ``PORTAL_API_IDEMPOTENCY_HOURS`` (``api.retention``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import select, update
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


def claim(session: Session, api_key_id: int, key: str, print_: str) -> Stored | None:
    """Take the key for this request, first thing in its transaction; or, when a request
    with this key committed already, its stored answer.

    A twin still running holds the row: this INSERT waits for it to commit (then finds its
    answer) or roll back (then this request goes ahead)."""
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
        row = session.scalars(
            select(IdempotentRequest).where(
                IdempotentRequest.api_key_id == api_key_id, IdempotentRequest.key == key
            )
        ).one()
        return Stored(row.status_code, row.body, row.fingerprint == print_)
    return None


def remember(session: Session, api_key_id: int, key: str, status_code: int, body: str) -> None:
    """Store the answer on the row ``claim`` took, in the same transaction as the change."""
    session.execute(
        update(IdempotentRequest)
        .where(IdempotentRequest.api_key_id == api_key_id, IdempotentRequest.key == key)
        .values(status_code=status_code, body=body)
    )
