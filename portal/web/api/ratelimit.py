"""A rate limit per API key, shared by every web worker process: a counter row per key in
the database, for a fixed window of one minute.

The row counts the requests *granted* to the key this minute, across all processes. A
process takes them from it in small batches (``per_minute // 100``, at least one: 6 for
the default 600) with a single atomic upsert (``INSERT … ON CONFLICT DO UPDATE …
RETURNING``) that starts the count again when the minute has changed, and serves the batch
from memory: no read-then-write race, one row per key whatever the traffic, one write per
batch rather than per request. The upsert runs in autocommit, outside the request's
transaction, so the row's lock lasts one statement. A batch is clipped at the limit, so
all processes together never grant more than ``per_minute`` in a minute; what one process
took and did not use is lost at the minute's end (at most a batch per process). Past the
limit a request gets 429 with ``Retry-After``, the seconds left in the minute. (A fixed
window lets a key send up to twice its rate across the turn of a minute, never more.)
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import BigInteger, Table, bindparam, case
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from portal.api.models import ApiRateWindow

WINDOW_SECONDS = 60
BATCHES_PER_WINDOW = 100
_windows = cast(Table, ApiRateWindow.__table__)


def _take_statement(dialect: str) -> Any:
    """Add a batch to the key's count, which stops at the limit plus one batch (refused
    requests do not grow it further): the count before is always the answer minus the
    batch, and past the limit it stays there."""
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(_windows)
    same_window = _windows.c.window == statement.excluded.window
    batch = statement.excluded.count
    limit = bindparam("cap", type_=BigInteger())
    return statement.on_conflict_do_update(
        index_elements=[_windows.c.api_key_id],
        set_={
            "count": case(
                (same_window & (_windows.c.count > limit), limit + batch),
                (same_window, _windows.c.count + batch),
                else_=batch,
            ),
            "window": statement.excluded.window,
        },
    ).returning(_windows.c.count)


class RateLimiter:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.time) -> None:
        self.per_minute = max(per_minute, 1)
        self.batch = max(1, self.per_minute // BATCHES_PER_WINDOW)
        self.clock = clock
        self._statements: dict[str, Any] = {}
        self._left: dict[int, tuple[int, int]] = {}  # key id -> (window, requests held)
        self._lock = threading.Lock()
        # SQLite lets one connection write at a time, and a writer that finds the lock
        # taken sleeps in the busy handler (milliseconds): this process's threads take
        # turns here instead, so only other processes' writes ever make one wait.
        self._sqlite_turn = threading.Lock()

    def _spend(self, key_id: int, window: int, granted: int = 0) -> bool:
        """Use one request of what this process holds for the key (adding ``granted``)."""
        with self._lock:
            held_window, left = self._left.get(key_id, (window, 0))
            left = (left if held_window == window else 0) + granted
            if left <= 0:
                return False
            self._left[key_id] = (window, left - 1)
            return True

    def _take(self, session: Session, key_id: int, window: int) -> int:
        """Requests granted to this process from the shared count (0: the limit is reached)."""
        dialect = session.get_bind().dialect.name
        statement = self._statements.get(dialect)
        if statement is None:
            statement = self._statements[dialect] = _take_statement(dialect)
        values = {
            "api_key_id": key_id,
            "window": window,
            "count": self.batch,
            "cap": self.per_minute,
        }
        if dialect == "sqlite":
            with self._sqlite_turn:
                count = session.execute(statement, values).scalar_one()
        else:
            count = session.execute(statement, values).scalar_one()
        before = int(count) - self.batch
        return max(0, min(self.batch, self.per_minute - before))

    def wait(self, session: Session, key_id: int) -> int:
        """0 if this request may go (it is counted), else the seconds to wait."""
        now = self.clock()
        window = int(now // WINDOW_SECONDS)
        if self._spend(key_id, window):
            return 0
        if self._spend(key_id, window, self._take(session, key_id, window)):
            return 0
        return max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))
