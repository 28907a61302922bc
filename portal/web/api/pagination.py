"""Cursor pagination over (changed time, id), for lists an integrator syncs every night.

Rows are ordered by when they last changed (``updated_at``, else ``created_at``), then by
id; a cursor is the position of a page's last row, as opaque base64. The next page starts
strictly after it, so a row inserted meanwhile, which sorts after every row that existed
(its time is now, its id larger), never shifts a page: nothing is skipped or repeated
(``tests/web/test_api_pagination.py``). A row that *changes* while a client pages moves to
the end and is seen again there: a sync wants the newer version.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, func, or_
from sqlalchemy.orm import Session

from portal.db import UTCDateTime

T = TypeVar("T")


class BadCursor(ValueError):
    pass


def changed_at(updated: Any, created: Any) -> ColumnElement[dt.datetime]:
    return func.coalesce(updated, created, type_=UTCDateTime())


def encode(at: dt.datetime, row_id: int) -> str:
    raw = json.dumps([at.astimezone(dt.UTC).isoformat(), row_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(cursor: str) -> tuple[dt.datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, row_id = json.loads(raw)
        when = dt.datetime.fromisoformat(at)
        if when.tzinfo is None or not isinstance(row_id, int) or isinstance(row_id, bool):
            raise BadCursor(cursor)
        return when, row_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise BadCursor(cursor) from None


def page(
    session: Session,
    query: Select[Any],
    *,
    changed: Any,  # a column or expression of timestamps
    row_id: Any,
    cursor: str | None,
    updated_since: dt.datetime | None,
    limit: int,
    position: Callable[[Any], tuple[dt.datetime, int]] | None = None,
    scalars: bool = True,
) -> tuple[Sequence[Any], str | None]:
    """One page of ``query`` (already filtered) and the cursor of the next, or None.

    ``scalars``: the query selects one entity (ORM objects); else rows of columns."""
    if updated_since is not None:
        query = query.where(changed >= updated_since)
    if cursor:
        at, last_id = decode(cursor)
        query = query.where(or_(changed > at, and_(changed == at, row_id > last_id)))
    ordered = query.order_by(changed, row_id).limit(limit + 1)
    rows = session.scalars(ordered).all() if scalars else session.execute(ordered).all()
    more = len(rows) > limit
    rows = rows[:limit]
    if not more or not rows:
        return rows, None
    last = rows[-1]
    at, last_id = position(last) if position else (last.updated_at or last.created_at, last.id)
    return rows, encode(at, last_id)


def listed(
    session: Session,
    query: Select[Any],
    params: Any,
    *,
    changed: Any,
    row_id: Any,
    position: Callable[[Any], tuple[dt.datetime, int]] | None = None,
    scalars: bool = True,
) -> tuple[Sequence[Any], str | None]:
    """``page`` with a list's query parameters (``cursor``, ``limit``, ``updated_since``);
    an unreadable cursor is a 422 problem on the ``cursor`` parameter."""
    from portal.api.schemas import FieldProblem
    from portal.i18n import gettext_ as _
    from portal.web.api import problems
    from portal.web.api.framework import ApiProblem

    try:
        return page(
            session,
            query,
            changed=changed,
            row_id=row_id,
            cursor=params.cursor,
            updated_since=getattr(params, "updated_since", None),
            limit=params.limit,
            position=position,
            scalars=scalars,
        )
    except BadCursor:
        detail = _("This cursor is not valid: start again without it.")
        raise ApiProblem(
            problems.invalid([FieldProblem(detail=detail, parameter="cursor")])
        ) from None
