"""A rate limit per API key, shared by every web worker process: a counter row per key in
the database, for a fixed window of one minute.

Each request adds one to its key's row with a single atomic upsert (``INSERT … ON CONFLICT
DO UPDATE … RETURNING``), which starts the count again when the minute has changed: no
read-then-write race, no row per request, one row per key whatever the traffic. It runs
in autocommit, outside the request's transaction, so the row's lock lasts one statement
and a key's requests never wait on each other's work. Past ``per_minute`` in a minute a
request gets 429 with ``Retry-After``, the seconds left in that minute. (A fixed window
lets a key send up to twice its rate across the turn of a minute, never more.)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import Table, case
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from portal.api.models import ApiRateWindow

WINDOW_SECONDS = 60
_windows = cast(Table, ApiRateWindow.__table__)


def _count_statement(dialect: str) -> Any:
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(_windows)
    same_window = _windows.c.window == statement.excluded.window
    return statement.on_conflict_do_update(
        index_elements=[_windows.c.api_key_id],
        set_={
            "count": case((same_window, _windows.c.count + 1), else_=1),
            "window": statement.excluded.window,
        },
    ).returning(_windows.c.count)


class RateLimiter:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.time) -> None:
        self.per_minute = max(per_minute, 1)
        self.clock = clock
        self._statements: dict[str, Any] = {}

    def wait(self, session: Session, key_id: int) -> int:
        """0 if this request may go (it is counted), else the seconds to wait."""
        now = self.clock()
        window = int(now // WINDOW_SECONDS)
        dialect = session.get_bind().dialect.name
        statement = self._statements.get(dialect)
        if statement is None:
            statement = self._statements[dialect] = _count_statement(dialect)
        count = session.execute(
            statement, {"api_key_id": key_id, "window": window, "count": 1}
        ).scalar_one()
        if count <= self.per_minute:
            return 0
        return max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))
