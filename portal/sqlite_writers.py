"""SQLite writers take turns promptly: the next one starts as soon as the last one commits.

SQLite lets one writer in at a time and makes the others wait in its busy handler, which
sleeps 1, 2, 5, 10… up to 100 ms between tries. A write transaction here lasts a
millisecond or two, so two worker processes sharing a database spent more time asleep
than writing. A writer first takes its turn here instead:
- within a process, a lock that wakes the next thread at once;
- across processes, an advisory lock (``flock``) on a file beside the database, tried
  every ``POLL_SECONDS``.

SQLite's own lock still decides: the turn only orders writers that would otherwise wait.
A writer that cannot get its turn within the busy timeout goes on without it, and SQLite's
busy handler takes over as before, so nothing can wait forever here. A process that dies
loses its ``flock``, as it loses its SQLite lock.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from typing import Any

POLL_SECONDS = 0.0002


class WriterTurns:
    """The turns of one SQLite database file, for the connections of one engine."""

    def __init__(self, database_path: str, timeout_seconds: float) -> None:
        self._path = database_path + "-writer"
        self._timeout = timeout_seconds
        self._in_process = threading.Lock()
        self._fd: int | None = None
        self._holder: Any = None  # the DB-API connection whose transaction has the turn

    def take(self, dbapi_connection: Any) -> None:
        """Wait for the turn before ``BEGIN IMMEDIATE`` (or give up waiting at the timeout)."""
        deadline = time.monotonic() + self._timeout
        if not self._in_process.acquire(timeout=self._timeout):
            return
        # A descriptor per turn, closed when the turn is given back (which drops the lock):
        # an engine keeps nothing open between transactions, however many engines come and go.
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while not _try_lock(fd):
                if time.monotonic() >= deadline:
                    os.close(fd)
                    self._in_process.release()
                    return
                time.sleep(POLL_SECONDS)
        except BaseException:
            os.close(fd)
            self._in_process.release()
            raise
        self._fd = fd
        self._holder = dbapi_connection

    def give_back(self, dbapi_connection: Any) -> None:
        """After COMMIT or ROLLBACK (or the connection's end): the next writer may go."""
        raw = getattr(dbapi_connection, "dbapi_connection", dbapi_connection)
        if self._holder is None or self._holder is not raw:
            return
        fd, self._fd, self._holder = self._fd, None, None
        assert fd is not None
        os.close(fd)  # drops the flock
        self._in_process.release()


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
