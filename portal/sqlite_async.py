"""aiosqlite connections whose statements cost one trip to the connection's thread.

aiosqlite runs each call (create a cursor, execute, fetch, close) in the connection's own
thread and wakes the event loop for its answer. A page view's query made four such trips;
each costs a thread switch, a wake-up of the loop and, while the loop renders a page, a
wait for the GIL. Here a statement runs, fetches its rows and closes its cursor in one trip,
and the rows are then read from memory. Page views fetch every row anyway: SQLAlchemy's
aiosqlite adapter buffers them too.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import aiosqlite

Row = tuple[Any, ...]


class OneTripCursor:
    """The part of aiosqlite.Cursor that SQLAlchemy's aiosqlite adapter uses."""

    def __init__(self, connection: OneTripConnection) -> None:
        self._connection = connection
        self._rows: list[Row] = []
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self.arraysize = 1

    async def __aenter__(self) -> OneTripCursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> OneTripCursor:
        await self._trip(lambda cursor: cursor.execute(sql, parameters or ()))
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> OneTripCursor:
        await self._trip(lambda cursor: cursor.executemany(sql, parameters))
        return self

    async def _trip(self, statement: Callable[[sqlite3.Cursor], object]) -> None:
        def run(connection: sqlite3.Connection) -> tuple[list[Row], Any, int, int | None]:
            cursor = connection.cursor()
            try:
                statement(cursor)
                rows = cursor.fetchall() if cursor.description else []
                return rows, cursor.description, cursor.rowcount, cursor.lastrowid
            finally:
                cursor.close()

        (
            self._rows,
            self.description,
            self.rowcount,
            self.lastrowid,
        ) = await self._connection.run_in_thread(run)

    async def fetchone(self) -> Row | None:
        return self._rows.pop(0) if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Row]:
        count = self.arraysize if size is None else size
        taken, self._rows = self._rows[:count], self._rows[count:]
        return taken

    async def fetchall(self) -> list[Row]:
        taken, self._rows = self._rows, []
        return taken

    async def close(self) -> None:
        self._rows = []


class OneTripConnection(aiosqlite.Connection):
    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(connect, iter_chunk_size=64)
        # As SQLAlchemy does for aiosqlite's own connections: a connection left open must
        # not keep the process alive.
        self._thread.daemon = True

    def cursor(self) -> OneTripCursor:  # type: ignore[override]
        return OneTripCursor(self)

    async def run_in_thread(self, function: Callable[[sqlite3.Connection], Any]) -> Any:
        """``function(sqlite3 connection)``, in the connection's thread."""
        return await self._execute(lambda: function(self._conn))  # type: ignore[no-untyped-call]


def connector(path: str, timeout: float) -> Callable[[], Any]:
    """An ``async_creator`` for create_async_engine: one-trip connections to ``path``."""

    async def connect() -> OneTripConnection:
        connection = OneTripConnection(lambda: sqlite3.connect(path, timeout=timeout))
        await connection
        return connection

    return connect
