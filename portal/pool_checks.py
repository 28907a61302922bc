"""Checking pooled PostgreSQL connections before use, without a round trip per request.

SQLAlchemy's ``pool_pre_ping`` sends ``SELECT 1`` on every checkout: one extra round
trip per page view, as costly as the page's own query. Here a connection that went
back to the pool recently and whose socket is quiet is handed out as is. One that sat
idle for a while, or whose socket has something to read while nothing was asked (the
server closed it, or it sent a termination notice on restart or idle timeout), is
pinged first; when the ping fails the pool replaces it, as with ``pool_pre_ping``.
"""

from __future__ import annotations

import select
import time
from typing import Any

from sqlalchemy import Engine, event, exc

# A connection unused for longer than this is pinged before use: a network path can
# die silently, and a quiet socket proves nothing after a while.
PING_AFTER_IDLE_SECONDS = 10.0

_IDLE_SINCE = "relance_idle_since"


def install(engine: Engine, ping_after_idle_seconds: float = PING_AFTER_IDLE_SECONDS) -> None:
    """Check ``engine``'s connections on checkout (instead of ``pool_pre_ping``)."""
    dialect = engine.dialect

    @event.listens_for(engine, "connect")
    @event.listens_for(engine, "checkin")
    def _idle_from_now(_dbapi_connection: Any, record: Any) -> None:
        # A connection just opened, or just given back, is known to work.
        if record is not None:
            record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop(_IDLE_SINCE, None)
        recently_used = (
            idle_since is not None and time.monotonic() - idle_since < ping_after_idle_seconds
        )
        if recently_used and _socket_quiet(dbapi_connection):
            return
        try:
            alive = dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            # The pool discards this connection and checks out another (or a new one).
            raise exc.DisconnectionError(str(error)) from error
        if not alive:
            raise exc.DisconnectionError("the connection did not answer a ping")


def _socket_quiet(dbapi_connection: Any) -> bool:
    """True when the connection looks usable without asking the server.

    An idle connection's socket has nothing to read; if it has, the server closed it or
    sent a notice (such as its shutdown), and only a ping tells whether it still works.
    """
    # An asyncio engine's pool holds adapters; the driver's own connection has the socket.
    dbapi_connection = getattr(dbapi_connection, "driver_connection", dbapi_connection)
    if getattr(dbapi_connection, "closed", False) or getattr(dbapi_connection, "broken", False):
        return False
    try:
        poller = select.poll()  # unlike select(), not limited to descriptors below 1024
        poller.register(dbapi_connection.fileno(), select.POLLIN | select.POLLPRI)
        events = poller.poll(0)
    except (OSError, ValueError, AttributeError):
        return False
    return not events
