"""SQLite writers take turns on a file lock beside the database, given back however the
transaction ends; SQLite's own lock stays the one that decides."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from portal.db import make_engine
from portal.sqlite_writers import WriterTurns


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    made = make_engine(f"sqlite:///{tmp_path / 'turns.db'}")
    with made.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    yield made
    made.dispose()


def _turn_is_free(database: Path) -> bool:
    """Whether another process could take the writers' turn now."""
    fd = os.open(f"{database}-writer", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing the descriptor drops a lock taken through it
    return True


def test_a_write_transaction_holds_the_turn_until_it_commits(
    engine: Engine, tmp_path: Path
) -> None:
    database = tmp_path / "turns.db"
    assert _turn_is_free(database)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
        assert not _turn_is_free(database)
    assert _turn_is_free(database)


def test_the_turn_comes_back_after_a_rollback_or_a_failure(engine: Engine, tmp_path: Path) -> None:
    database = tmp_path / "turns.db"
    with engine.connect() as conn:
        conn.begin()
        conn.execute(text("INSERT INTO t VALUES (1)"))
        assert not _turn_is_free(database)
        conn.rollback()
        assert _turn_is_free(database)

    def failing_write() -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (2)"))
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        failing_write()
    assert _turn_is_free(database)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 0


def test_a_second_writer_goes_once_the_first_has_committed(engine: Engine, tmp_path: Path) -> None:
    other = make_engine(f"sqlite:///{tmp_path / 'turns.db'}")  # its own descriptor: as a process
    order: list[str] = []
    asking = threading.Event()

    def second_writer() -> None:
        asking.set()
        with other.begin() as conn:
            order.append("second began")
            conn.execute(text("INSERT INTO t VALUES (2)"))

    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
        thread = threading.Thread(target=second_writer)
        thread.start()
        asking.wait()
        order.append("first committing")
    thread.join()
    other.dispose()
    assert order == ["first committing", "second began"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM t ORDER BY n")).scalars().all() == [1, 2]


def test_a_writer_that_cannot_get_the_turn_in_time_goes_on_without_it(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    holder, late = WriterTurns(path, 5), WriterTurns(path, 0)
    holder.take("first connection")
    late.take("second connection")  # returns at its timeout: SQLite's own wait takes over
    late.give_back("second connection")  # it held nothing: nothing to give back
    assert not _turn_is_free(tmp_path / "db")
    holder.give_back("first connection")
    assert _turn_is_free(tmp_path / "db")
