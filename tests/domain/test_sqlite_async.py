"""The event loop's SQLite engine: one trip to the connection's thread per statement."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from portal.db import make_async_read_engine, make_engine
from portal.sqlite_async import OneTripConnection


def test_a_statement_costs_one_trip_and_reads_back_every_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'pages.db'}")
    async_engine = make_async_read_engine(engine)
    assert async_engine is not None
    trips: list[object] = []
    original = OneTripConnection.run_in_thread

    async def counting(self: OneTripConnection, function: Any) -> Any:
        trips.append(function)
        return await original(self, function)

    monkeypatch.setattr(OneTripConnection, "run_in_thread", counting)

    async def scenario() -> tuple[list[tuple[int, str]], str | None, int, int]:
        async with async_engine.connect() as connection:
            await connection.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
            await connection.execute(
                text("INSERT INTO notes (id, body) VALUES (:id, :body)"),
                [{"id": n, "body": f"note {n}"} for n in range(1, 6)],
            )
            before = len(trips)
            rows = (await connection.execute(text("SELECT id, body FROM notes ORDER BY id"))).all()
            one = (await connection.execute(text("SELECT body FROM notes WHERE id = 3"))).scalar()
            selects = len(trips) - before
            deleted = await connection.execute(text("DELETE FROM notes WHERE id > 3"))
            return [(row[0], row[1]) for row in rows], one, deleted.rowcount, selects

    try:
        rows, one, deleted, selects = asyncio.run(scenario())
    finally:
        asyncio.run(async_engine.dispose())
        engine.dispose()
    assert rows == [(n, f"note {n}") for n in range(1, 6)]
    assert one == "note 3"
    assert deleted == 2
    # Two SELECTs, two trips: no separate cursor, fetch, close, COMMIT or ROLLBACK.
    assert selects == 2
