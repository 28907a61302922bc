"""Bulk writes of one transaction, sent in order by a helper thread on PostgreSQL while
the caller prepares the next ones: the server stores one table's rows on one core while
Python builds the next table's on the other (one after the other, each waits for the
other about half the time). SQLite, or ``background=False``: each write runs at once.

    with ordered_writes(session) as writes:
        writes.insert_rows(table, rows)    # returns at once on PostgreSQL
        more = build_more_rows()           # meanwhile the server stores ``rows``
        writes.update_many(other, more)
    # here every write is done; the first failure is raised

Until the block ends the session must not be used (its connection is the thread's), and
rows handed over must not be changed. A failure raises at the next write or at the end
of the block; the writes queued after it are dropped, and so are those still queued when
the block itself raises. The transaction is the caller's: nothing is committed here.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Table
from sqlalchemy.orm import Session

from portal import db

_DONE = None  # put on the queue: no more writes


class OrderedWrites:
    session: Session  # whose transaction the writes are in (not to be used till the end)

    def __init__(self, session: Session, *, background: bool = True) -> None:
        self.session = session
        connection = session.connection()
        self._raw = db.driver_connection(connection) if background else None
        if connection.dialect.name != "postgresql":
            self._raw = None
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        self._dropping = False

    def insert_rows(
        self, table: Table, rows: Sequence[Mapping[str, Any]], *, binary: bool = False
    ) -> None:
        """``db.insert_rows``: each row takes the next id of ``table``, in order."""
        if self._raw is None:
            db.insert_rows(self.session, table, rows, binary=binary)
        elif rows:
            self._submit(lambda raw: db.copy_rows(raw, table, rows, binary=binary))

    def insert_with_ids(
        self,
        table: Table,
        ids: Sequence[int],
        rows: Sequence[Mapping[str, Any]],
        *,
        binary: bool = False,
    ) -> None:
        """``db.insert_with_ids``: ``rows`` with the ids ``db.draw_ids`` gave."""
        if self._raw is None:
            db.insert_with_ids(self.session, table, ids, rows, binary=binary)
        elif rows:
            self._submit(lambda raw: db.copy_rows(raw, table, rows, ids=ids, binary=binary))

    def update_many(self, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
        """``db.update_many``: the columns of ``rows`` set on the rows with their ids."""
        if self._raw is None:
            db.update_many(self.session, table, rows)
        elif rows:
            self._submit(lambda raw: db.update_from_arrays(raw, table, rows))

    def wait(self) -> None:
        """Every write queued is done (raises the first failure): the session may be used."""
        if self._thread is None:
            return
        self._jobs.put(_DONE)
        self._thread.join()
        self._thread = None
        self._raise_failure()

    def drop(self) -> None:
        """Drop what is still queued, and wait for the write under way to end."""
        self._dropping = True
        try:
            self.wait()
        finally:
            self._dropping = False

    def _submit(self, write: Callable[[Any], None]) -> None:
        self._raise_failure()
        raw = self._raw
        self._jobs.put(lambda: write(raw))
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ordered-writes", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not _DONE:
            if self._failure is not None or self._dropping:
                continue
            try:
                job()
            except BaseException as failure:  # handed to the caller's thread, raised there
                self._failure = failure

    def _raise_failure(self) -> None:
        failure, self._failure = self._failure, None
        if failure is not None:
            self._dropping = True  # what the thread still holds is dropped, not written
            raise failure


@contextmanager
def ordered_writes(session: Session, *, background: bool = True) -> Iterator[OrderedWrites]:
    writes = OrderedWrites(session, background=background)
    try:
        yield writes
    except BaseException:
        writes.drop()
        raise
    writes.wait()
